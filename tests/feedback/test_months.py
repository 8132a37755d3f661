"""Calendar months in the team's zone, as UTC instants."""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from clmbot.feedback.months import months

NEW_YORK = ZoneInfo("America/New_York")
JAKARTA = ZoneInfo("Asia/Jakarta")


def test_each_month_clipped_to_the_period():
    since = datetime(2026, 1, 15, 9, tzinfo=UTC)
    now = datetime(2026, 3, 2, 8, tzinfo=UTC)
    spans = months(since, now, UTC)
    assert [(s.month, s.start, s.end, s.last) for s in spans] == [
        (date(2026, 1, 1), since, datetime(2026, 2, 1, tzinfo=UTC), False),
        (
            date(2026, 2, 1),
            datetime(2026, 2, 1, tzinfo=UTC),
            datetime(2026, 3, 1, tzinfo=UTC),
            False,
        ),
        (date(2026, 3, 1), datetime(2026, 3, 1, tzinfo=UTC), now, True),
    ]


def test_months_follow_daylight_saving():
    """November starts at midnight EDT (UTC-4), December at midnight EST (UTC-5)."""
    spans = months(datetime(2026, 10, 20, tzinfo=UTC), datetime(2026, 12, 5, tzinfo=UTC), NEW_YORK)
    assert [s.start for s in spans[1:]] == [
        datetime(2026, 11, 1, 4, tzinfo=UTC),
        datetime(2026, 12, 1, 5, tzinfo=UTC),
    ]


def test_a_month_in_the_zone_that_is_another_in_utc():
    # 31 Dec 2026 20:00 UTC is 1 Jan 2027 03:00 in Jakarta: the period is January's there.
    since = datetime(2026, 12, 31, 20, tzinfo=UTC)
    spans = months(since, datetime(2027, 1, 3, tzinfo=UTC), JAKARTA)
    assert [s.month for s in spans] == [date(2027, 1, 1)]
    assert spans[0].start == since and spans[0].last


def test_a_period_across_a_year_end_and_an_empty_one():
    spans = months(datetime(2025, 11, 3, tzinfo=UTC), datetime(2026, 2, 3, tzinfo=UTC), UTC)
    assert [s.month for s in spans] == [
        date(2025, 11, 1),
        date(2025, 12, 1),
        date(2026, 1, 1),
        date(2026, 2, 1),
    ]
    assert months(datetime(2026, 2, 3, tzinfo=UTC), datetime(2026, 2, 2, tzinfo=UTC), UTC) == []
