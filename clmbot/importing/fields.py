"""Parsers for one CSV cell each. They raise `FieldError` with a message a person can act on:
what the value was, what was expected, an example."""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,31}$")  # the columns hold 32
_LOCALE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")
FUTURE_SLACK = timedelta(days=1)
# Events and answers before this are placeholders (0001-01-01, 1900-01-01), not history.
EARLIEST_YEAR = 1970
_CHECK_DATE = "check the year and the day/month order"


class FieldError(ValueError):
    pass


def show(value: str) -> str:
    """A value quoted for a message, cut to 40 characters."""
    return repr(value if len(value) <= 40 else value[:37] + "...")


def text(column: str, value: str, max_len: int) -> str:
    if len(value) > max_len:
        raise FieldError(f"{column} is {len(value)} characters long; at most {max_len} fit")
    return value


def timestamp(column: str, value: str, zone: tzinfo, now: datetime) -> datetime:
    """ISO 8601 date or date-time; a time without offset is in the team's time zone.

    A time more than a day after `now` is refused: it is nearly always a wrong year or a
    day/month swap, and it would sit at the top of every "latest" list for years.
    """
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise FieldError(
            f"{column} {show(value)} is not an ISO 8601 date or time; "
            "use e.g. 2024-05-01 or 2024-05-01T14:30:00Z"
        ) from None
    if parsed.year < EARLIEST_YEAR:
        raise FieldError(
            f"{column} {value} is before {EARLIEST_YEAR}: a placeholder date? leave the row out "
            "or give the real date"
        )
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    try:
        parsed = parsed.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:00-05:00 is past the last representable time
        raise FieldError(f"{column} {value} is in the future; {_CHECK_DATE}") from None
    if parsed > now + FUTURE_SLACK:
        raise FieldError(f"{column} {value} is in the future; {_CHECK_DATE}")
    return parsed


def day(column: str, value: str, now: datetime) -> date:
    try:
        parsed = date.fromisoformat(value)
    except ValueError:
        try:
            parsed = datetime.fromisoformat(value).date()
        except ValueError:
            raise FieldError(
                f"{column} {show(value)} is not an ISO 8601 date; use e.g. 2024-05-01"
            ) from None
    if parsed > (now + FUTURE_SLACK).date():
        raise FieldError(f"{column} {value} is in the future; {_CHECK_DATE}")
    if parsed.year < EARLIEST_YEAR:
        raise FieldError(
            f"{column} {value} is before {EARLIEST_YEAR}: a placeholder date? leave the cell "
            "empty or give the real date"
        )
    return parsed


def number(column: str, value: str, *, minimum: float | None = None) -> float:
    try:
        parsed = float(value)
    except ValueError:
        raise FieldError(
            f"{column} {show(value)} is not a number; use digits with a dot for decimals, "
            "no currency sign or thousands separator, e.g. 1250.50"
        ) from None
    if not math.isfinite(parsed):
        raise FieldError(f"{column} {show(value)} is not a finite number")
    if minimum is not None and parsed < minimum:
        raise FieldError(f"{column} {value} is below {minimum:g}")
    return parsed


def score(column: str, value: str, low: int, high: int, kind: str) -> int:
    try:
        parsed = int(value)
    except ValueError:
        raise FieldError(
            f"{column} {show(value)} is not a whole number; {kind} scores are {low} to {high}"
        ) from None
    if not low <= parsed <= high:
        raise FieldError(f"{column} {parsed} is out of range; {kind} scores are {low} to {high}")
    return parsed


def email(column: str, value: str) -> str:
    if not _EMAIL.match(value) or len(value) > 320:
        raise FieldError(f"{column} {show(value)} is not an e-mail address")
    return value


def slack_user(column: str, value: str) -> str:
    if not _SLACK_USER.match(value):
        raise FieldError(
            f"{column} {show(value)} is not a Slack user ID; use the ID (e.g. U0123ABCD) from "
            "the person's Slack profile, not their name"
        )
    return value


def locale(column: str, value: str) -> str:
    if not _LOCALE.match(value):
        raise FieldError(f"{column} {show(value)} is not a language code; use e.g. en, id, pt-BR")
    return value


def zone_name(column: str, value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise FieldError(
            f"{column} {show(value)} is not a known time zone; use an IANA name such as "
            "Asia/Jakarta"
        ) from None
    return value


def tags(value: str) -> list[str]:
    """`a; b;a` -> ["a", "b"]: trimmed, de-duplicated, in first-seen order."""
    return list(dict.fromkeys(t.strip() for t in value.split(";") if t.strip()))
