"""The hours a customer may be asked in, in their own zone, across weekends and clock
changes."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

from clmbot.surveys.window import Window

JAKARTA, SAO_PAULO, BERLIN = (
    ZoneInfo("Asia/Jakarta"),
    ZoneInfo("America/Sao_Paulo"),
    ZoneInfo("Europe/Berlin"),
)
TUESDAY_NOON = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def test_the_same_moment_is_inside_for_one_and_outside_for_another():
    window = Window()
    assert window.is_open(TUESDAY_NOON, SAO_PAULO)  # 09:00
    assert not window.is_open(TUESDAY_NOON, JAKARTA)  # 19:00
    assert window.next_opening(TUESDAY_NOON, SAO_PAULO) == TUESDAY_NOON
    assert window.next_opening(TUESDAY_NOON, JAKARTA) == datetime(2026, 11, 25, 2, tzinfo=UTC)


def test_the_end_is_not_inside_and_the_weekend_waits_for_monday():
    window = Window()
    friday_six_pm = datetime(2026, 11, 27, 18, 0, tzinfo=JAKARTA)
    assert not window.is_open(friday_six_pm, JAKARTA)
    assert window.next_opening(friday_six_pm, JAKARTA) == datetime(
        2026, 11, 30, 9, 0, tzinfo=JAKARTA
    )


def test_a_clock_change_night_opens_at_the_local_start():
    window = Window(start=time(2, 30), end=time(9, 0), days=frozenset(range(7)))
    # Berlin skips 02:00-03:00 on 2027-03-28: the opening is the first moment after the gap.
    before = datetime(2027, 3, 28, 0, 0, tzinfo=UTC)
    opens = window.next_opening(before, BERLIN)
    assert opens > before and window.is_open(opens, BERLIN)


def test_described_for_people():
    assert Window().describe() == "09:00-18:00, Monday to Friday"
    assert Window(days=frozenset({5, 6})).describe() == "09:00-18:00, Sat, Sun"
