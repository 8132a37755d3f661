"""Calendar months in the team's zone, as UTC instants the database can compare with.

A trend's months are the team's months: an answer given at 01:00 on 1 November in Jakarta
is November's, even though it is still 31 October in UTC. The boundaries are computed here,
in Python, with the zone's real rules (daylight saving included), and the database only
compares stored UTC times with them: exact on every backend, no SQL time-zone functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo


@dataclass(frozen=True)
class MonthSpan:
    """The part of one calendar month inside a period: [start, end) in UTC, except that the
    period's last month ends at `now` inclusive (`last`). `month` is its first day there."""

    month: date
    start: datetime
    end: datetime
    last: bool


def month_start(day: date, zone: tzinfo) -> datetime:
    """Midnight on the first of `day`'s month in `zone`, in UTC. When that midnight does not
    exist (a zone that springs forward at 00:00), the month starts at the jump: `fold=0`
    reads the wall time with the offset in force before it, which is that instant."""
    return datetime(day.year, day.month, 1, tzinfo=zone).astimezone(UTC)


def next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def months(since: datetime, now: datetime, zone: tzinfo) -> list[MonthSpan]:
    """Every calendar month (in `zone`) from the one holding `since` to the one holding
    `now`, each clipped to [since, now]. Empty when `since` is after `now`."""
    if since > now:
        return []
    first = since.astimezone(zone).date().replace(day=1)
    final = now.astimezone(zone).date().replace(day=1)
    spans: list[MonthSpan] = []
    day = first
    while day <= final:
        following = next_month(day)
        last = following > final
        start = max(since, month_start(day, zone))
        end = now if last else month_start(following, zone)
        spans.append(MonthSpan(day, start.astimezone(UTC), end.astimezone(UTC), last))
        day = following
    return spans
