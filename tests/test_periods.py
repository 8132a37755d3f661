from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from clmbot.periods import PeriodError, parse_duration, parse_since

NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)  # a Tuesday
JAKARTA = ZoneInfo("Asia/Jakarta")


def test_durations_in_days_and_weeks():
    assert parse_duration("30d") == timedelta(days=30)
    assert parse_duration(" 2W ") == timedelta(days=14)
    with pytest.raises(PeriodError, match=r"e\.g\. 30d or 12w"):
        parse_duration("3mo")


def test_since_a_duration_or_a_date_in_the_team_zone():
    assert parse_since("7d", NOW, UTC) == NOW - timedelta(days=7)
    assert parse_since("2026-11-01", NOW, JAKARTA) == datetime(2026, 10, 31, 17, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "start"),
    [
        ("0d", datetime(2026, 11, 24, tzinfo=UTC)),
        ("today", datetime(2026, 11, 24, tzinfo=UTC)),
        ("yesterday", datetime(2026, 11, 23, tzinfo=UTC)),
        ("3mo", datetime(2026, 8, 24, 12, tzinfo=UTC)),
        ("1y", datetime(2025, 11, 24, 12, tzinfo=UTC)),
        ("this week", datetime(2026, 11, 23, tzinfo=UTC)),
        ("last  Week", datetime(2026, 11, 16, tzinfo=UTC)),
        ("this month", datetime(2026, 11, 1, tzinfo=UTC)),
        ("last month", datetime(2026, 10, 1, tzinfo=UTC)),
        ("this quarter", datetime(2026, 10, 1, tzinfo=UTC)),
        ("last quarter", datetime(2026, 7, 1, tzinfo=UTC)),
        ("last year", datetime(2025, 1, 1, tzinfo=UTC)),
    ],
)
def test_calendar_words_and_months(text, start):
    assert parse_since(text, NOW, UTC) == start


def test_months_clamp_to_the_end_of_a_shorter_month_and_count_in_the_team_zone():
    end_of_may = datetime(2026, 5, 31, 12, tzinfo=UTC)
    assert parse_since("3mo", end_of_may, UTC) == datetime(2026, 2, 28, 12, tzinfo=UTC)
    assert parse_since("1mo", datetime(2026, 1, 15, tzinfo=UTC), UTC) == datetime(
        2025, 12, 15, tzinfo=UTC
    )
    # 2026-11-24 12:00 UTC is 19:00 in Jakarta: "today" began there at 17:00 UTC the day before
    assert parse_since("today", NOW, JAKARTA) == datetime(2026, 11, 23, 17, tzinfo=UTC)


@pytest.mark.parametrize("text", ["30 days", "2026-13-01", "7m", "next month", "last"])
def test_anything_else_says_what_is_accepted(text):
    with pytest.raises(PeriodError, match=r"e\.g\. 2024-05-01, 30d, 12w, 3mo, 1y, today"):
        parse_since(text, NOW, UTC)


def test_a_start_in_the_future_is_refused():
    with pytest.raises(PeriodError, match="in the future"):
        parse_since("2027-01-01", NOW, UTC)


def test_the_first_day_there_is_east_of_utc_is_refused_not_a_crash():
    """Its midnight in Jakarta is the day before in UTC, before year 1 (found by the
    commands' fuzz test: `/clm funnel 0001-01-01` was an error instead of an answer)."""
    with pytest.raises(PeriodError, match="0001-01-01 is before any date there is"):
        parse_since("0001-01-01", NOW, JAKARTA)
    assert parse_since("0001-01-01", NOW, UTC) == datetime(1, 1, 1, tzinfo=UTC)
