from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from clmbot.periods import PeriodError, parse_duration, parse_since

NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)


def test_durations_in_days_and_weeks():
    assert parse_duration("30d") == timedelta(days=30)
    assert parse_duration(" 2W ") == timedelta(days=14)


def test_since_a_duration_or_a_date_in_the_team_zone():
    assert parse_since("7d", NOW, UTC) == NOW - timedelta(days=7)
    jakarta = ZoneInfo("Asia/Jakarta")
    assert parse_since("2026-11-01", NOW, jakarta) == datetime(2026, 10, 31, 17, tzinfo=UTC)


@pytest.mark.parametrize("text", ["last week", "30 days", "2026-13-01", "7m"])
def test_anything_else_says_what_is_accepted(text):
    with pytest.raises(PeriodError, match=r"e\.g\. (2024-05-01, )?30d or 12w"):
        parse_since(text, NOW, UTC)


def test_a_start_in_the_future_is_refused():
    with pytest.raises(PeriodError, match="in the future"):
        parse_since("2027-01-01", NOW, UTC)
