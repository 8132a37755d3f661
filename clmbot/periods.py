"""Reading the dates and periods people type: `30d`, `12w`, `3mo`, `1y`, `2024-05-01`, `today`,
`this month`, `last quarter`.

Shared by every front door (`/clm funnel since 30d`, `clmbot funnel --since 2024-05-01`,
segment filters), so the same words mean the same thing everywhere. Calendar words count in
the team's time zone: "this month" begins at midnight on the first, there.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, tzinfo

_DURATION = re.compile(r"^(\d{1,5})\s*(d|w|mo|y)$")
_UNITS = {"d": "days", "w": "weeks", "mo": "months", "y": "years"}
_CALENDAR = re.compile(r"^(this|last)\s+(week|month|quarter|year)$")
ACCEPTED = "e.g. 2024-05-01, 30d, 12w, 3mo, 1y, today, this month or last quarter"


class PeriodError(ValueError):
    """Not a date or duration; the message shows what is accepted."""


def parse_duration(text: str) -> timedelta:
    """A length of days or weeks (`30d`, `12w`): for "inactive for 30d" and the like."""
    match = _DURATION.match(text.strip().lower())
    if not match or match[2] not in ("d", "w"):
        raise PeriodError(f"{text!r} is not a duration; use days or weeks, e.g. 30d or 12w")
    count, unit = int(match[1]), match[2]
    return timedelta(days=count * (7 if unit == "w" else 1))


def parse_since(text: str, now: datetime, zone: tzinfo) -> datetime:
    """The start of a period that ends `now`.

    `30d` and `12w` are that long before `now`; `3mo` and `1y` the same moment that many
    calendar months or years before; `0d` and `today` the last midnight in `zone`;
    `yesterday` the one before; `this week|month|quarter|year` the start of the current
    one and `last …` the start of the one before; a date, its midnight in `zone`.
    """
    words = " ".join(text.lower().split())
    local = now.astimezone(zone)
    duration = _DURATION.match(words)
    if words == "today" or (duration and int(duration[1]) == 0):
        return midnight(local.date(), zone)
    if words == "yesterday":
        return midnight(local.date() - timedelta(days=1), zone)
    if duration:
        count, unit = int(duration[1]), duration[2]
        if unit in ("d", "w"):
            return now - timedelta(days=count * (7 if unit == "w" else 1))
        months = count * (12 if unit == "y" else 1)
        return _months_before(local, months).astimezone(UTC)
    calendar = _CALENDAR.match(words)
    if calendar:
        return midnight(_period_start(local.date(), calendar[2], calendar[1] == "last"), zone)
    try:
        day = date.fromisoformat(words)
    except ValueError:
        raise PeriodError(f"{text.strip()!r} is not a date or a period; use {ACCEPTED}") from None
    try:
        start = midnight(day, zone)
    except OverflowError:  # 0001-01-01 east of UTC: before year 1 there
        raise PeriodError(f"{day.isoformat()} is before any date there is") from None
    if start > now:
        raise PeriodError(f"{day.isoformat()} is in the future; the period must start before now")
    return start


def midnight(day: date, zone: tzinfo) -> datetime:
    """The start of `day` in `zone`, in UTC."""
    return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)


def _months_before(moment: datetime, months: int) -> datetime:
    total = moment.year * 12 + (moment.month - 1) - months
    if total < 12:  # before year 1
        raise PeriodError(f"{months} months back is before any date there is")
    year, month = divmod(total, 12)
    last_day = (date(year + (month + 1) // 12, (month + 1) % 12 + 1, 1) - timedelta(days=1)).day
    return moment.replace(year=year, month=month + 1, day=min(moment.day, last_day))


def _period_start(day: date, unit: str, previous: bool) -> date:
    if unit == "week":
        start = day - timedelta(days=day.weekday())  # Monday
        return start - timedelta(weeks=1) if previous else start
    if unit == "year":
        return date(day.year - 1 if previous else day.year, 1, 1)
    length = 3 if unit == "quarter" else 1
    first_month = (day.month - 1) // length * length  # 0-based
    total = day.year * 12 + first_month - (length if previous else 0)
    return date(total // 12, total % 12 + 1, 1)
