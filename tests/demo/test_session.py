"""The demo's verbs against the real bot, on the sample business, with the demo's clock."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from clmbot.demo.session import Demo, DemoError, demo_day, parse_span
from clmbot.store.db import session_scope
from clmbot.store.models import ASSIGNED, SNOOZED, Alert, Customer, Digest, Feedback, Survey
from tests.demo.conftest import SATURDAY


def rows(demo: Demo, model, *where):
    with session_scope(demo.engine) as session:
        return list(session.execute(select(model).where(*where)).scalars())


def test_the_sample_is_loaded_with_every_stage_and_both_languages(demo: Demo):
    stages = {c.stage for c in rows(demo, Customer)}
    assert stages == {"awareness", "consideration", "purchase", "retention", "advocacy", "churned"}
    assert len(rows(demo, Customer)) == 500
    comments = {f.comment for f in rows(demo, Feedback) if f.comment}
    assert "Love the reporting" in comments and "Laporannya sangat membantu" in comments
    assert {f.kind for f in rows(demo, Feedback)} == {"nps", "csat"}


def test_the_clock_starts_before_the_morning_and_moves_only_when_told(demo: Demo, typed):
    assert demo.local().strftime("%a %H:%M") == "Fri 08:30"
    typed("/clm funnel", "/clm nps")
    assert demo.local().strftime("%a %H:%M") == "Fri 08:30"
    typed(":advance 90m")
    assert demo.local().strftime("%a %H:%M") == "Fri 10:00"


def test_a_weekend_starts_on_friday_so_a_survey_can_go_out():
    assert demo_day(date(2026, 12, 5)) == date(2026, 12, 4)  # Saturday
    assert demo_day(date(2026, 12, 6)) == date(2026, 12, 4)  # Sunday
    assert demo_day(date(2026, 12, 7)) == date(2026, 12, 7)  # Monday


@pytest.mark.parametrize("text", ["", "1", "d", "0d", "32d", "5y", "-1d", "1.5d"])
def test_a_span_that_is_no_span_is_explained(text: str):
    with pytest.raises(DemoError, match=r"1d|31 days"):
        parse_span(text)


def test_commands_answer_with_the_plain_text_and_names_for_ids(typed):
    out = typed("/clm funnel")
    assert "only sari sees this" in out
    assert "stage                 now  entered" in out  # the plain renderer's aligned table
    assert "awareness → consideration" in out
    out = typed("at-risk")  # the words without /clm work too
    assert "At risk:" in out and "@U0" not in out  # owners as names, as Slack shows them


def test_the_morning_digest_posts_once_at_nine_with_buttons(demo: Demo, typed):
    out = typed(":advance 1d")
    assert "── clmbot in #customer-alerts · Fri 04 Dec 09:00" in out
    assert "DRIFTING TOWARD CHURN" in out and "[1] Assign to me" in out
    assert "The morning pass of Fri 04 Dec" in out
    assert len(rows(demo, Digest)) == 1
    out = typed(":advance 12h")  # Sat 20:30: no morning in between
    assert "#customer-alerts" not in out
    out = typed(":advance 1d")  # Sunday 09:00 has its own pass
    assert "The morning pass of Sun 06 Dec" in out


def test_a_survey_goes_out_in_hours_and_a_dm_answers_it(demo: Demo, typed):
    customer = demo.example_contact()
    ref = customer.external_id
    out = typed(f"/clm survey nps {ref}")
    assert f"Queued 1 NPS survey for {ref}" in out
    assert "DM with" not in out  # 08:30 on the customer's clock: not yet
    out = typed(":advance 1d")
    assert f"── clmbot in DM with {customer.name} ({ref}) · Fri 04 Dec 09:00" in out
    assert "[11] 10" in out  # 0 to 10
    out = typed(f":dm {ref} 9 the reports save us hours")
    assert f"{customer.name} ({ref}) in their DM with clmbot" in out
    assert "#customer-voice" in out and "NPS 9/10" in out
    answers = rows(demo, Feedback, Feedback.comment == "the reports save us hours")
    assert [(a.kind, a.score) for a in answers] == [("nps", 9)]
    survey = rows(demo, Survey)[0]
    assert survey.answered_at is not None


def test_a_customer_presses_a_score_in_their_dm(demo: Demo, typed):
    ref = demo.example_contact().external_id
    typed(f"/clm survey nps {ref}", ":advance 1d")
    out = typed(f":click {ref} 4")  # the fourth button: a 3
    assert "✓" in out and "#customer-voice" in out and "NPS 3/10" in out
    survey = rows(demo, Survey)[0]
    assert survey.score == 3 and rows(demo, Feedback, Feedback.id == survey.feedback_id)


def test_a_digest_button_is_stored_and_redraws_the_message(demo: Demo, typed):
    typed(":advance 1d")
    out = typed(":click 1")
    assert "(pressed [1] Assign to me)" in out
    assert "clmbot edited its message in #customer-alerts" in out
    assert "Assigned to @sari" in out
    acted = rows(demo, Alert, Alert.updated_by.is_not(None))
    assert [(a.status, a.updated_by) for a in acted] == [(ASSIGNED, "U0SARI001")]


def test_who_is_typing_decides_what_they_may_do(demo: Demo, typed):
    typed(":advance 1d")
    out = typed(":as gina", "/clm funnel", ":click 2")
    assert out.count("Guest accounts cannot use clmbot") == 2
    out = typed(":as rudi", "/clm funnel")
    assert "You are not on the clmbot team" in out and "Ask @sari to add you" in out
    out = typed(":as budi", "/clm stage C0001 churned")
    assert "admins" in out.lower()
    out = typed(":as budi", ":click 2")
    assert "Snoozed by @budi" in out
    assert [(a.status, a.updated_by) for a in rows(demo, Alert, Alert.updated_by.is_not(None))] == [
        (SNOOZED, "U0BUDI002")
    ]


def test_an_answer_only_its_asker_sees_is_not_pressed_by_another(demo: Demo, typed):
    typed("/clm at-risk")  # sari's answer, with Open card buttons
    out = typed(":as budi", ":click 1")
    assert "no message with buttons yet" in out


def test_a_button_that_runs_words_runs_them_for_whoever_presses(typed):
    out = typed("/clm feedback", ":click 1")
    assert "(pressed [1] Next 10)" in out and "11-20 of" in out


def test_a_chart_is_written_to_a_file_and_its_path_printed(demo: Demo, typed):
    out = typed("/clm nps chart")
    path = demo.files / "nps-trend.png"
    assert f"written to {path}" in out
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_mode & 0o777 == 0o600


def test_bad_lines_say_what_to_type(typed):
    out = typed(":dm", ":dm C9999 hello", ":click 1", ":as nobody", ":advance", ":fly")
    assert "say who writes and what" in out
    assert "no customer `C9999` in the sample" in out
    assert "no message with buttons yet" in out
    assert "no one called `nobody` here" in out
    assert "`:advance` needs more, e.g. :advance 1d" in out
    assert "no verb `:fly`" in out


def test_a_customer_without_slack_cannot_write(demo: Demo, typed):
    silent = next(c for c in demo.business.customers if not c.slack_user_id)
    out = typed(f":dm {silent.external_id} hello")
    assert "has no Slack account in the sample" in out


def test_the_same_seed_and_day_give_the_same_shop(tmp_path):
    def names(folder):
        folder.mkdir()
        from clmbot.demo.terminal import Style

        made = Demo(folder, say=lambda _: None, style=Style(False), today=SATURDAY, seed=3)
        try:
            return [(c.external_id, c.name, c.stage) for c in rows(made, Customer)]
        finally:
            made.close()

    assert names(tmp_path / "a") == names(tmp_path / "b")


def test_reminders_and_expiry_run_as_the_clock_moves(demo: Demo, typed):
    ref = demo.example_contact().external_id
    typed(f"/clm survey nps {ref}", ":advance 1d")
    out = typed(":advance 1w")
    assert "reminded 1" in out and "expired 1" in out
    survey = rows(demo, Survey)[0]
    assert survey.answered_at is None
    assert demo.now - datetime(2026, 12, 4, 1, 30, tzinfo=UTC) == timedelta(days=8)


def test_the_home_tab_is_the_one_slack_would_publish_for_whoever_types(typed):
    out = typed(":advance 1d", ":home")
    assert "── clmbot's Home tab, as sari sees it" in out
    assert "YOUR CUSTOMERS AT RISK" in out and "FUNNEL" in out
    out = typed(":as gina", ":home")
    assert "Guest accounts cannot use clmbot" in out and "FUNNEL" not in out


def test_typed_text_reaches_the_bot_as_slack_delivers_it(demo: Demo, typed):
    out = typed("/clm segment mrr<100 nps>8")
    assert "not a filter" not in out and "customers" in out
    out = typed("/CLM funnel", "/clmfunnel", "/remind me")
    assert out.count("Funnel on") == 1
    assert "the only slash command here is /clm" in out
    ref = demo.example_contact().external_id
    typed(f"/clm survey nps {ref}", ":advance 1d")
    typed(f":dm {ref} 9 <3 love it, <b>x</b> & more")
    assert rows(demo, Feedback, Feedback.comment == "<3 love it, <b>x</b> & more")


def test_control_characters_typed_are_not_echoed_to_the_terminal(demo: Demo, typed):
    ref = demo.example_contact().external_id
    out = typed(f":dm {ref} \x1b[2Jhello", ":as \x1b[31mnobody")
    assert "\x1b" not in out and "[2Jhello" in out


def test_spans_read_as_people_write_them():
    assert parse_span("2 days") == timedelta(days=2)
    assert parse_span("90 minutes") == parse_span("90m") == timedelta(minutes=90)
    assert parse_span("1 week") == timedelta(weeks=1)


def test_the_sender_runs_on_the_quarter_hours_whatever_the_start():
    from datetime import time

    from clmbot.demo.session import _steps

    start = datetime(2026, 12, 4, 1, 37, tzinfo=UTC)  # 08:37 in Jakarta
    steps = _steps(start, start + timedelta(hours=1), time(9, 0))
    assert [f"{at:%H:%M}" for at, _ in steps] == ["01:45", "02:00", "02:15", "02:30", "02:37"]
    assert [day for _, day in steps if day] == [date(2026, 12, 4)]  # 09:00 WIB is 02:00 UTC
