"""Reading the dates and durations people type: `30d`, `12w`, `2024-05-01`.

Shared by every front door (`/clm funnel since 30d`, `clmbot funnel --since 2024-05-01`,
segment filters), so the same words mean the same thing everywhere.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, tzinfo

_DURATION = re.compile(r"^(\d{1,5})([dw])$")


class PeriodError(ValueError):
    """Not a date or duration; the message shows what is accepted."""


def parse_duration(text: str) -> timedelta:
    match = _DURATION.match(text.strip().lower())
    if not match:
        raise PeriodError(f"{text!r} is not a duration; use days or weeks, e.g. 30d or 12w")
    count, unit = int(match[1]), match[2]
    return timedelta(days=count * (7 if unit == "w" else 1))


def parse_since(text: str, now: datetime, zone: tzinfo) -> datetime:
    """A start of period: `30d` (30 days before `now`) or a date (its midnight in `zone`)."""
    text = text.strip()
    if _DURATION.match(text.lower()):
        return now - parse_duration(text)
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise PeriodError(
            f"{text!r} is not a date or a duration; use e.g. 2024-05-01, 30d or 12w"
        ) from None
    start = datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)
    if start > now:
        raise PeriodError(f"{text} is in the future; the period must start before today")
    return start
