"""The daily digest through the Slack stand-in: posted once per day whatever runs it, the
first ten in the message and the rest in its thread, no repeats, and every button."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import timedelta

import pytest

from clmbot.slack.app import make_client
from clmbot.slack.digest import run_day
from clmbot.slack.scheduler import Jobs
from clmbot.store.db import make_engine
from tests.fakeslack import block_actions_body, post, signed_headers
from tests.helpers import rows
from tests.risk.test_backtest import TODAY, shop  # noqa: F401  (the fixture)
from tests.slack.conftest import ADMIN, MEMBER

ALERTS = "C0ALERTS"


def headlines(slack) -> list[dict]:
    return [
        c.body
        for c in slack.calls_to("chat.postMessage")
        if c.body.get("channel") == ALERTS and not c.body.get("thread_ts")
    ]


def morning(engine, settings, day_offset: int = 0):
    at = TODAY + timedelta(days=day_offset)
    return run_day(
        engine, make_client(settings), settings, day=at.date(), as_of=at, now=at, by="test"
    )


def test_the_digest_heads_with_the_count_and_threads_the_rest(
    engine,
    slack,
    bot_settings,
    shop,  # noqa: F811
):
    settings = replace(bot_settings, alert_channel=ALERTS)
    report = morning(engine, settings)
    assert report.ran and report.posted["default"] > 10
    (head,) = headlines(slack)
    raised = report.posted["default"]
    assert head["blocks"][0]["text"]["text"] == f"{raised} customers drifting toward churn"
    assert "they hold MRR" in head["blocks"][1]["elements"][0]["text"]
    actions = [b for b in head["blocks"] if b["type"] == "actions"]
    assert len(actions) == 10
    assert [e["text"]["text"] for e in actions[0]["elements"]] == [
        "Assign to me",
        "Snooze 14 days",
        "Contacted",
        "Open profile",
    ]
    first = next(b for b in head["blocks"] if b["type"] == "section")["text"]["text"]
    assert "risk *" in first and "(new)" in first and "• no purchase" in first
    thread = [c.body for c in slack.calls_to("chat.postMessage") if c.body.get("thread_ts")]
    shown_in_thread = sum(1 for part in thread for b in part["blocks"] if b["type"] == "actions")
    # At most five replies of ten; the digest says how many more /clm at-risk shows.
    assert shown_in_thread == min(raised - 10, 50)
    if raised > 60:
        assert f"{raised - 60} more not listed here" in str(head["blocks"])
    assert all(len(part["blocks"]) <= 50 for part in [head, *thread])


def test_two_bots_one_digest(db_url, engine, slack, bot_settings, shop):  # noqa: F811
    settings = replace(bot_settings, alert_channel=ALERTS)
    reports = []

    def bot_morning() -> None:
        own = make_engine(db_url)
        reports.append(morning(own, settings))
        own.dispose()

    threads = [threading.Thread(target=bot_morning) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.ran for r in reports) == [False, True]
    assert len(headlines(slack)) == 1
    assert len(rows(engine, "digests", "route")) == 1


def test_no_repeat_alert_unless_the_risk_rose(engine, slack, bot_settings, shop):  # noqa: F811
    settings = replace(bot_settings, alert_channel=ALERTS)
    first = morning(engine, settings)
    shown = dict(rows(engine, "alerts", "customer_id", "message_ts"))
    second = morning(engine, settings, day_offset=1)
    # Those the digest showed are not raised again; those beyond what it could show are.
    unshown = sum(ts is None for ts in shown.values())
    assert second.ran and second.posted["default"] == unshown
    again = [c for c, ts in rows(engine, "alerts", "customer_id", "message_ts") if ts]
    assert len(again) == len(set(again))  # nobody shown twice
    morning(engine, settings, day_offset=2)  # everyone shown now: nothing to post
    quiet = replace(settings, alerts=replace(settings.alerts, all_quiet=True))
    morning(engine, quiet, day_offset=3)
    assert "All quiet" in headlines(slack)[-1]["text"]
    assert first.posted["default"] > 0


def start_jobs(bot, engine, clock):
    jobs = Jobs(
        bot.bot.sender,
        clock,
        daily=lambda now, day: run_day(
            engine,
            make_client(bot.settings),
            bot.settings,
            day=day,
            as_of=now,
            now=now,
            by="bot",
        ),
        at=bot.settings.alert_time,
        zone=bot.settings.timezone,
    )
    jobs.start()
    return jobs


def wait_for_headline(slack, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not headlines(slack) and time.monotonic() < deadline:
        time.sleep(0.05)


def test_the_missed_morning_runs_at_start(bot_with, slack, engine, clock, shop):  # noqa: F811
    bot = bot_with(alert_channel=ALERTS)
    clock.now = TODAY.replace(hour=10)  # the digest was due at 09:00
    jobs = start_jobs(bot, engine, clock)
    try:
        wait_for_headline(slack)
    finally:
        jobs.stop()
    assert len(headlines(slack)) == 1
    assert rows(engine, "risk_runs", "day") == [(TODAY.date(),)]


def test_before_this_mornings_time_yesterdays_missed_one_runs(
    bot_with,
    slack,
    engine,
    clock,
    shop,  # noqa: F811
):
    bot = bot_with(alert_channel=ALERTS)
    clock.now = TODAY.replace(hour=7)  # before 09:00: yesterday's is the latest missed
    jobs = start_jobs(bot, engine, clock)
    try:
        wait_for_headline(slack)
    finally:
        jobs.stop()
    assert rows(engine, "risk_runs", "day") == [((TODAY - timedelta(days=1)).date(),)]
    # A second copy starting then finds the day taken: still one digest.
    again = start_jobs(bot_with(alert_channel=ALERTS), engine, clock)
    time.sleep(1)
    again.stop()
    assert len(headlines(slack)) == 1


@pytest.fixture
def digest_bot(bot_with, engine, clock, shop):  # noqa: F811
    """A bot whose alert channel holds this morning's digest; and that digest."""
    bot = bot_with(alert_channel=ALERTS)
    clock.now = TODAY
    morning(engine, bot.settings)
    return bot, bot.slack.messages[ALERTS][0]


def press(bot, slack, message: dict, verb: str, *, user: str, index: int = 0):
    """Press a digest button (`assign`, `snooze`, `contacted`, or `open_profile`) as Slack
    would send it; returns the reply, and the signed request to replay."""
    actions = [b for b in message["blocks"] if b["type"] == "actions"][index]
    button = next(
        e
        for e in actions["elements"]
        if e["action_id"] in (f"alert:{verb}", verb) or e["action_id"].startswith(f"{verb}:")
    )
    body = block_actions_body(
        {
            "action_id": button["action_id"],
            "value": button["value"],
            "block_id": actions["block_id"],
        },
        response_url=slack.response_url(f"alert-{verb}-{user}-{time.monotonic()}"),
        user=user,
        channel=ALERTS,
        message_ts=message["ts"],
        ephemeral=False,
    )
    headers = signed_headers(body, content_type="application/x-www-form-urlencoded")
    return post(bot.url + "/slack/events", body, headers), (body, headers)


def test_every_button_updates_the_same_message_and_is_stored(digest_bot, slack, engine):
    bot, head = digest_bot
    reply, (body, headers) = press(bot, slack, head, "assign", user=MEMBER)
    assert reply.status == 200
    slack.wait_for("chat.update")
    shown = slack.messages[ALERTS][0]
    assert f"Assigned to <@{MEMBER}>" in str(shown["blocks"])
    # The same signed click again is refused at the door, and changes nothing.
    assert post(bot.url + "/slack/events", body, headers).status == 401
    # Two people at once on the second customer: one state, and the message says it.
    done = []
    for who, verb in ((MEMBER, "contacted"), (ADMIN, "snooze")):
        done.append(
            threading.Thread(
                target=press, args=(bot, slack, shown, verb), kwargs={"user": who, "index": 1}
            )
        )
    for t in done:
        t.start()
    for t in done:
        t.join()
    slack.wait_for("chat.update", count=3)
    time.sleep(0.3)
    statuses = dict(rows(engine, "alerts", "id", "status"))
    assert sorted(statuses.values()).count("assigned") == 1
    assert len([s for s in statuses.values() if s in ("contacted", "snoozed")]) == 1
    final = str(slack.messages[ALERTS][0]["blocks"])
    assert ("Contacted by" in final) or ("Snoozed by" in final)


def test_a_guest_cannot_act_on_an_alert(digest_bot, slack, engine):
    bot, head = digest_bot
    slack.add_user("U0GUEST", is_restricted=True)
    press(bot, slack, head, "assign", user="U0GUEST")
    refusal = slack.wait_for("response_url")[-1].body
    assert "Guest accounts cannot use clmbot" in refusal["text"]
    assert "assigned" not in {s for (s,) in rows(engine, "alerts", "status")}


def test_a_stage_move_or_a_good_answer_resolves_an_alert(
    engine,
    slack,
    bot_settings,
    tmp_path,
    shop,  # noqa: F811
):
    from clmbot.config import Settings
    from clmbot.importing.runner import import_file

    settings = replace(bot_settings, alert_channel=ALERTS)
    morning(engine, settings)
    raised = rows(engine, "alerts", "customer_id", "status")
    (first_id, _), (second_id, _) = raised[0], raised[1]
    names = dict(rows(engine, "customers", "id", "external_id"))
    later = (TODAY + timedelta(hours=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    (tmp_path / "s.csv").write_text(
        f"customer_external_id,stage,moved_at,by,reason\n{names[first_id]},advocacy,{later},crm,\n"
    )
    (tmp_path / "f.csv").write_text(
        f"customer_external_id,kind,score,comment,responded_at\n{names[second_id]},nps,10,,{later}\n"
    )
    plain = Settings(database_url=str(engine.url))
    import_file(engine, "stages", tmp_path / "s.csv", plain, now=TODAY + timedelta(hours=6))
    import_file(engine, "feedback", tmp_path / "f.csv", plain, now=TODAY + timedelta(hours=6))
    morning(engine, settings, day_offset=1)
    status = dict(rows(engine, "alerts", "customer_id", "status"))
    assert status[first_id] == status[second_id] == "resolved"
    assert list(status.values()).count("resolved") == 2


def test_each_route_gets_its_own_digest(engine, slack, bot_settings, shop):  # noqa: F811
    from clmbot.alerts.settings import Route

    routes = (Route("everyone-else", "C0SECOND"),)
    settings = replace(
        bot_settings,
        alert_channel=ALERTS,
        alerts=replace(bot_settings.alerts, routes=routes),
    )
    report = morning(engine, settings)
    assert report.posted["default"] == report.posted["everyone-else"] > 0


def test_open_profile_on_the_digest_leaves_the_digest_alone(digest_bot, slack):
    bot, head = digest_bot
    reply, _ = press(bot, slack, head, "open_profile", user=MEMBER)
    assert reply.status == 200
    card = slack.wait_for("response_url")[-1].body
    assert card["response_type"] == "ephemeral"
    assert card["replace_original"] in (False, "false")
