"""The survey sender when things go wrong: killed between sending and marking, two of
them on one queue, Slack limiting or failing. In every case each customer gets their survey
exactly once."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from clmbot.slack.app import make_client
from clmbot.slack.scheduler import Jobs
from clmbot.slack.survey_sender import SurveySender
from clmbot.slack.views import survey_dm
from clmbot.store.db import session_scope
from clmbot.store.models import Customer, Survey
from clmbot.surveys import outbox, queue
from tests.conftest import NOW
from tests.helpers import rows, until
from tests.slack.conftest import ADMIN
from tests.slack.surveys import (
    ANA,
    JAKARTA_OPENS,
    add_customers,
    click,
    dm,
    dm_channel,
    posts_to,
    surveys,
    texts,
    two_customers,
)

REPO = Path(__file__).parents[2]


def queue_all(engine, settings, kind: str = "nps") -> int:
    with session_scope(engine) as session:
        where = Customer.id.is_not(None)
        plan = queue.plan(session, where, now=NOW, config=settings.surveys, terminal=("churned",))
        done = queue.queue(
            session,
            where,
            kind=kind,
            target="everyone",
            by="test",
            now=NOW,
            config=settings.surveys,
            terminal=("churned",),
            skipped=plan.skipped,
        )
    return done.queued


def sender_process(db_url: str, slack, now, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.slack.sender_process",
            db_url,
            slack.url,
            now.isoformat(),
            *extra,
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def killed_while_posting_one(db_url, engine, slack, bot_settings, tmp_path) -> None:
    """One survey queued (to Ana), and its sender, in a process of its own, killed while Slack
    takes the message and answers late."""
    two_customers(engine, bot_settings, tmp_path, slack)
    with session_scope(engine) as session:
        session.execute(Customer.__table__.delete().where(Customer.external_id == "J1"))
    assert queue_all(engine, bot_settings) == 1
    slack.delay("chat.postMessage", 30)
    proc = sender_process(db_url, slack, NOW)
    try:
        slack.wait_for("chat.postMessage", timeout=30)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_killed_between_sending_and_marking_then_restarted_one_message(
    db_url, engine, slack, bot_settings, tmp_path
):
    killed_while_posting_one(db_url, engine, slack, bot_settings, tmp_path)
    assert surveys(engine, "status", "message_ts") == [("sending", None)]
    slack.delay("chat.postMessage", 0)
    sender = SurveySender(engine, make_client(bot_settings), bot_settings)
    # Within the lease the claim is still the dead sender's: nothing is done.
    assert sender.run_once(NOW + timedelta(seconds=30)).sent == 0
    report = sender.run_once(NOW + outbox.LEASE + timedelta(seconds=1))
    assert (report.sent, report.found) == (0, 1)
    (posted,) = slack.messages[dm_channel(ANA)]
    assert surveys(engine, "status", "message_ts") == [("sent", posted["ts"])]
    assert len(posts_to(slack, dm_channel(ANA))) == 1


def test_two_senders_share_500_surveys_and_send_each_once(
    db_url, engine, slack, bot_settings, tmp_path
):
    if not db_url.startswith("postgresql"):
        pytest.skip("several copies of the bot share one PostgreSQL (FOR UPDATE SKIP LOCKED)")
    add_customers(
        engine,
        bot_settings,
        tmp_path,
        "".join(
            f"P{i},Person {i},U0P{i:04d},retention,,en,America/Sao_Paulo,pro\n" for i in range(500)
        ),
    )
    assert queue_all(engine, bot_settings) == 500
    slack.delay("chat.postMessage", 0.002)
    go = tmp_path / "go"
    procs = [
        sender_process(db_url, slack, NOW, "--go", str(go), "--per-second", "1000")
        for _ in range(2)
    ]
    time.sleep(1.5)  # both started and waiting
    go.touch()
    reports = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        reports.append(json.loads(out.strip().splitlines()[-1]))
    assert sum(r["sent"] for r in reports) == 500
    assert all(r["sent"] > 0 for r in reports), reports  # both took a share
    ids = [
        c.body["metadata"]["event_payload"]["survey_id"] for c in slack.calls_to("chat.postMessage")
    ]
    assert len(ids) == len(set(ids)) == 500
    with engine.connect() as conn:
        sent = conn.execute(
            select(func.count()).select_from(Survey).where(Survey.status == "sent")
        ).scalar()
    assert sent == 500


def test_rate_limits_are_ridden_out(engine, slack, bot_settings, tmp_path):
    two_customers(engine, bot_settings, tmp_path, slack)
    queue_all(engine, bot_settings)
    sender = SurveySender(engine, make_client(bot_settings), bot_settings)
    # One 429: slack_sdk waits Retry-After and tries again.
    slack.fail("chat.postMessage", 429, retry_after=0, times=1)
    report = sender.run_once(NOW)
    assert report.sent == 1
    # Then a limit that lasts: the survey waits in the queue, and goes once it lifts.
    slack.add_user("U0CUSTCARLA")
    add_customers(
        engine, bot_settings, tmp_path, "S2,Carla,U0CUSTCARLA,retention,,en,America/Sao_Paulo,pro\n"
    )
    queue_all(engine, bot_settings)
    slack.fail("chat.postMessage", 429, retry_after=0, times=10)
    report = sender.run_once(NOW)
    assert (report.sent, report.deferred) == (0, 1)
    assert ("queued", "rate limited") in surveys(engine, "status", "error")
    slack._failures.clear()
    assert sender.run_once(NOW + timedelta(seconds=30)).sent == 1
    assert len(slack.messages[dm_channel("U0CUSTCARLA")]) == 1  # tries refused are no messages


def test_slack_failing_is_looked_into_before_sending_again(engine, slack, bot_settings, tmp_path):
    two_customers(engine, bot_settings, tmp_path, slack)
    queue_all(engine, bot_settings)
    sender = SurveySender(engine, make_client(bot_settings), bot_settings)
    slack.fail("chat.postMessage", 500, times=1)  # the post is not retried blindly
    report = sender.run_once(NOW)
    assert report.uncertain == 1 and report.sent == 0
    report = sender.run_once(NOW + outbox.LEASE + timedelta(seconds=1))
    assert report.sent == 1
    assert slack.calls_to("conversations.history")  # looked before sending again
    assert len(slack.messages[dm_channel(ANA)]) == 1


def test_a_user_slack_does_not_know_fails_for_good(engine, slack, bot_settings, tmp_path):
    add_customers(engine, bot_settings, tmp_path, "G1,Gone,U0GONE,retention,,en,UTC,pro\n")
    queue_all(engine, bot_settings)
    slack.refusals["chat.postMessage"] = "channel_not_found"  # as Slack answers a post to them
    report = SurveySender(engine, make_client(bot_settings), bot_settings).run_once(NOW)
    assert report.failed == 1
    assert surveys(engine, "status", "error") == [("failed", "channel_not_found")]


def test_a_customer_who_churned_or_opted_out_after_queueing_is_not_asked(
    engine, slack, bot_settings, tmp_path
):
    two_customers(engine, bot_settings, tmp_path, slack)
    queue_all(engine, bot_settings)
    with session_scope(engine) as session:
        session.execute(
            Customer.__table__.update().where(Customer.external_id == "S1").values(stage="churned")
        )
    report = SurveySender(engine, make_client(bot_settings), bot_settings).run_once(
        NOW + timedelta(days=1)
    )
    assert report.cancelled == 1
    assert ("cancelled", "moved to churned") in surveys(engine, "status", "error")


def test_the_running_bot_sends_within_seconds_of_queueing(
    bot_with, slack, engine, bot_settings, tmp_path, clock
):
    two_customers(engine, bot_settings, tmp_path, slack)
    bot = bot_with()
    assert bot.bot.sender is not None
    jobs = Jobs(bot.bot.sender, clock)
    bot.bot.wake_sender = jobs.wake
    jobs.start()
    try:
        started = time.monotonic()
        bot.command("survey nps S1", user=ADMIN)
        slack.wait_for("chat.postMessage", timeout=10)
        assert time.monotonic() - started < 10
    finally:
        jobs.stop()
    assert len(posts_to(slack, dm_channel(ANA))) == 1


def test_a_sender_that_lost_its_claim_does_not_send(engine, slack, bot_settings, tmp_path):
    """Stalled past the lease, its survey was taken over (or cancelled by a `stop`): the
    renewal before the post fails, and it does not post."""
    two_customers(engine, bot_settings, tmp_path, slack)
    queue_all(engine, bot_settings)
    first = outbox.claim(engine, now=JAKARTA_OPENS, worker="slow")
    assert {c.id for c in first} == {1, 2}
    later = JAKARTA_OPENS + outbox.LEASE + timedelta(seconds=1)
    taken = outbox.claim(engine, now=later, worker="quick")
    assert {c.maybe_sent for c in taken} == {True}
    assert not outbox.renew(engine, 1, worker="slow", now=later)
    assert outbox.renew(engine, 1, worker="quick", now=later)
    with session_scope(engine) as session:  # a `stop` cancels what is being sent
        session.execute(Survey.__table__.update().where(Survey.id == 2).values(status="cancelled"))
    assert not outbox.renew(engine, 2, worker="quick", now=later)


def test_a_server_error_is_not_retried_blindly(engine, slack, bot_settings, tmp_path):
    """slack_sdk would post again after a 500, and Slack may have kept the first: the sender
    posts once, and looks in the DM before any second try."""
    two_customers(engine, bot_settings, tmp_path, slack)
    queue_all(engine, bot_settings)
    slack.fail("chat.postMessage", 500, times=1)
    SurveySender(engine, make_client(bot_settings), bot_settings).run_once(NOW)
    assert len(slack.calls_to("chat.postMessage")) == 1


def test_reminders_wait_for_the_customers_hours(engine, slack, bot_settings, tmp_path):
    two_customers(engine, bot_settings, tmp_path, slack)
    queue_all(engine, bot_settings)
    sender = SurveySender(engine, make_client(bot_settings), bot_settings)
    sender.run_once(NOW)
    sender.run_once(JAKARTA_OPENS)  # Budi is asked on Wednesday 09:00 in Jakarta
    # Saturday 12:00 UTC: Ana's reminder goes (09:00 in São Paulo); Budi's waits for Monday.
    saturday = NOW + timedelta(days=4)
    assert sender.run_once(saturday).reminded == 0  # the weekend: nobody
    monday_morning_jakarta = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
    assert sender.run_once(monday_morning_jakarta).reminded == 1
    waiting = dict(surveys(engine, "customer_id", "not_before"))
    assert max(waiting.values()) == datetime(2026, 11, 30, 12, 0, tzinfo=UTC)  # São Paulo


# --- the reminder and the team's post: in doubt until Slack says where they landed --------

REMIND_AT = NOW + timedelta(days=3)  # Ana's reminder: Friday 09:00 in São Paulo
FEEDBACK = "C0FEEDBACK"


def _run(bot, at):
    assert bot.bot.sender is not None
    return bot.bot.sender.run_once(at)


def _kept(slack, channel: str, event: str) -> list[dict]:
    """The messages of `event` Slack kept in `channel` (not the calls: a 500 may keep one)."""
    return [
        m
        for m in slack.messages.get(channel, [])
        if (m.get("metadata") or {}).get("event_type") == event
    ]


def _ana_asked(bot, engine, bot_settings, tmp_path, slack) -> None:
    two_customers(engine, bot_settings, tmp_path, slack)
    bot.command("survey nps S1", user=ADMIN)
    assert _run(bot, NOW).sent == 1


@pytest.mark.parametrize("slack_posted_it", [True, False], ids=["posted", "not-posted"])
def test_a_reminder_answered_500_reaches_the_customer_once(
    bot, slack, engine, bot_settings, tmp_path, slack_posted_it
):
    """A 5xx after which Slack had not posted used to lose the reminder for good (it was
    marked taken first); one after which it had, now and then, must not post a second."""
    _ana_asked(bot, engine, bot_settings, tmp_path, slack)
    slack.fail("chat.postMessage", 500, done=slack_posted_it)
    assert _run(bot, REMIND_AT).reminded == 0
    kept = _kept(slack, dm_channel(ANA), survey_dm.REMINDER_EVENT)
    assert len(kept) == (1 if slack_posted_it else 0)
    assert _run(bot, REMIND_AT + timedelta(minutes=1)).reminded == 0  # within the lease
    later = _run(bot, REMIND_AT + timedelta(minutes=3))
    kept = _kept(slack, dm_channel(ANA), survey_dm.REMINDER_EVENT)
    assert len(kept) == 1
    assert (later.found, later.reminded) == ((1, 0) if slack_posted_it else (0, 1))
    assert surveys(engine, "reminder_ts", "reminder_tries") == [(kept[0]["ts"], 0)]
    assert _run(bot, REMIND_AT + timedelta(hours=2)).reminded == 0
    assert len(_kept(slack, dm_channel(ANA), survey_dm.REMINDER_EVENT)) == 1


def test_a_reminder_taken_by_a_sender_that_died_goes_after_the_lease(
    bot, slack, engine, bot_settings, tmp_path
):
    _ana_asked(bot, engine, bot_settings, tmp_path, slack)
    (due,) = outbox.reminders_due(engine, now=REMIND_AT, config=bot_settings.surveys)
    assert outbox.take_reminder(engine, due, now=REMIND_AT)  # and then its sender died
    assert _run(bot, REMIND_AT + timedelta(minutes=1)).reminded == 0
    assert _run(bot, REMIND_AT + timedelta(minutes=3)).reminded == 1
    assert len(_kept(slack, dm_channel(ANA), survey_dm.REMINDER_EVENT)) == 1


def test_a_reminder_slack_would_not_take_goes_when_slack_said(
    bot, slack, engine, bot_settings, tmp_path
):
    _ana_asked(bot, engine, bot_settings, tmp_path, slack)
    slack.fail("chat.postMessage", 429, retry_after=90)  # longer than the sender waits
    assert _run(bot, REMIND_AT).reminded == 0
    assert _run(bot, REMIND_AT + timedelta(seconds=60)).reminded == 0
    assert _run(bot, REMIND_AT + timedelta(seconds=95)).reminded == 1
    assert len(_kept(slack, dm_channel(ANA), survey_dm.REMINDER_EVENT)) == 1
    # Slack said it took nothing: nobody looked in the DM for it.
    assert slack.calls_to("conversations.history") == []


def _answered(bot_with, engine, bot_settings, tmp_path, slack):
    team = bot_with(feedback_channel=FEEDBACK)
    _ana_asked(team, engine, bot_settings, tmp_path, slack)
    click(team, ANA, 3)
    until("the answer stored", lambda: rows(engine, "feedback", "score"))
    return team


@pytest.mark.parametrize("slack_posted_it", [True, False], ids=["posted", "not-posted"])
def test_an_answer_answered_500_is_posted_for_the_team_once(
    bot_with, slack, engine, bot_settings, tmp_path, slack_posted_it
):
    """A 5xx after which Slack had posted used to post the answer a second time."""
    team = _answered(bot_with, engine, bot_settings, tmp_path, slack)
    slack.fail("chat.postMessage", 500, done=slack_posted_it)
    assert _run(team, NOW + timedelta(minutes=1)).posted == 0
    assert len(_kept(slack, FEEDBACK, survey_dm.ANSWER_EVENT)) == (1 if slack_posted_it else 0)
    assert _run(team, NOW + timedelta(minutes=2)).posted == 0  # within the lease
    assert _run(team, NOW + timedelta(minutes=4)).posted == 1
    (post,) = _kept(slack, FEEDBACK, survey_dm.ANSWER_EVENT)
    assert "NPS 3" in texts(post)
    assert surveys(engine, "team_post_ts", "team_post_taken_at") == [(post["ts"], None)]
    # Her comment edits that post; nothing more is posted.
    team.bot.clock.now = NOW + timedelta(minutes=5)
    dm(team, ANA, "Delivery took three weeks")
    until("the comment stored", lambda: rows(engine, "feedback", "comment")[0][0])
    assert _run(team, NOW + timedelta(minutes=6)).posted == 1
    (post,) = _kept(slack, FEEDBACK, survey_dm.ANSWER_EVENT)
    assert "Delivery took three weeks" in texts(post)
    assert len(slack.messages[FEEDBACK]) == 1


def test_an_answer_the_channel_keeps_refusing_is_given_up_after_five_tries(
    bot_with, slack, engine, bot_settings, tmp_path, caplog
):
    team = _answered(bot_with, engine, bot_settings, tmp_path, slack)
    slack.refusals["chat.postMessage"] = "not_in_channel"
    for minutes in range(1, 30, 3):
        _run(team, NOW + timedelta(minutes=minutes))
    tries = [c for c in slack.calls_to("chat.postMessage") if c.body.get("channel") == FEEDBACK]
    assert len(tries) == outbox.MOST_ATTEMPTS
    assert "not posted for the team after 5 tries; given up" in caplog.text
    assert surveys(engine, "team_post_taken_at", "team_post_tries") == [(None, 0)]
