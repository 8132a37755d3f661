"""When a customer may be asked: a time of day and days of the week, in their own zone.

Surveys are stored with `not_before`, the first moment the window is open for that customer;
the sender takes only what is due. Times are UTC in and out; the zone only decides the hours.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class Window:
    start: time = time(9, 0)
    end: time = time(18, 0)
    days: frozenset[int] = frozenset(range(5))  # Monday is 0

    def is_open(self, at: datetime, zone: tzinfo) -> bool:
        local = at.astimezone(zone)
        return local.weekday() in self.days and self.start <= local.time() < self.end

    def next_opening(self, at: datetime, zone: tzinfo) -> datetime:
        """`at` itself when the window is open then, else the next moment it opens (UTC)."""
        if self.is_open(at, zone):
            return at.astimezone(UTC)
        local = at.astimezone(zone)
        for ahead in range(8):
            day = local.date() + timedelta(days=ahead)
            if day.weekday() not in self.days:
                continue
            opening = datetime.combine(day, self.start, tzinfo=zone)
            # A start that a clock change skips (02:30 on a spring-forward night) is read
            # as the moment after the gap; round-tripping through UTC settles it.
            opening = opening.astimezone(UTC).astimezone(zone)
            if opening > local:
                return opening.astimezone(UTC)
        raise ValueError("a window with no days never opens")  # config refuses this

    def describe(self) -> str:
        days = sorted(self.days)
        if days == list(range(5)):
            which = "Monday to Friday"
        elif days == list(range(7)):
            which = "every day"
        else:
            which = ", ".join(DAY_NAMES[d].capitalize() for d in days)
        end = "24:00" if self.end == time.max else f"{self.end:%H:%M}"
        return f"{self.start:%H:%M}-{end}, {which}"
