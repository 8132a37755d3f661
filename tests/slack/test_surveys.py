"""Surveys by DM, as customers and the team live them, through the Slack stand-in: queued
by an admin, sent by the sender in each customer's hours, answered by a click or a message,
in English and Indonesian, exactly once."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from clmbot.store.models import Customer
from tests.conftest import NOW
from tests.fakeslack import block_actions_body
from tests.slack.conftest import ADMIN, MEMBER, OWNER
from tests.slack.surveys import (
    ANA,
    BUDI,
    JAKARTA_OPENS,
    add_customers,
    answers,
    buttons,
    click,
    dm,
    dm_channel,
    posts_to,
    question_of,
    surveys,
    texts,
    two_customers,
)

FEEDBACK = "C0FEEDBACK"


@pytest.fixture
def team(bot_with):
    """The bot with answers posted to the team's feedback channel."""
    return bot_with(feedback_channel=FEEDBACK)


def send(bot, at=None):
    assert bot.bot.sender is not None
    return bot.bot.sender.run_once(at or NOW)


def wait_until(check, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.02)
    raise AssertionError("not within the time")


def test_a_whole_conversation_in_english(team, slack, engine, bot_settings, tmp_path):
    two_customers(engine, bot_settings, tmp_path, slack)
    answer = team.command("survey nps S1", user=ADMIN)
    assert "Queued *1 NPS survey*" in answer["blocks"][0]["text"]["text"]
    report = send(team)
    assert report.sent == 1
    asked = question_of(slack, ANA)
    assert "How likely are you to recommend us" in texts(asked)
    assert [b["text"]["text"] for b in buttons(asked)] == [str(n) for n in range(11)]
    assert "Reply *stop*" in texts(asked)
    assert asked["metadata"]["event_type"] == "clmbot_survey"

    click(team, ANA, 8)
    wait_until(lambda: "You chose *8*" in texts(question_of(slack, ANA)))
    assert "main reason" in texts(question_of(slack, ANA))
    assert answers(engine)[0][1:] == ("nps", 8, None, "survey")

    dm(team, ANA, "Support answered &amp; fixed it within the hour")
    wait_until(lambda: len(posts_to(slack, dm_channel(ANA))) == 2)
    thanks = posts_to(slack, dm_channel(ANA))[-1]
    assert "Thank you for telling us" in thanks["text"]
    assert answers(engine)[0][3] == "Support answered & fixed it within the hour"

    # The team sees the answer, with the comment (the sender posts what is due).
    send(team)
    posted = posts_to(slack, FEEDBACK)
    assert len(posted) == 1
    shown = texts(posted[0])
    assert "*NPS 8*/10 from *Ana Lima*" in shown
    assert "Support answered &amp; fixed it" in shown
    assert f"<@{OWNER}>" not in shown  # a passive: nobody is paged


def test_a_whole_conversation_in_indonesian_typed_not_clicked(
    team, slack, engine, bot_settings, tmp_path
):
    two_customers(engine, bot_settings, tmp_path, slack)
    team.command("survey csat J1", user=ADMIN)
    send(team, JAKARTA_OPENS)
    asked = question_of(slack, BUDI)
    assert "Seberapa puas Anda dengan kami?" in texts(asked)
    assert [b["text"]["text"] for b in buttons(asked)] == ["1", "2", "3", "4", "5"]
    assert "berhenti" in texts(asked)

    team.bot.clock.now = JAKARTA_OPENS + timedelta(minutes=5)
    dm(team, BUDI, "2 aplikasinya sering error")
    wait_until(lambda: len(posts_to(slack, dm_channel(BUDI))) == 2)
    reply = posts_to(slack, dm_channel(BUDI))[-1]
    assert "Terima kasih atas masukan Anda" in reply["text"]
    # The question shows the typed score, in Indonesian.
    wait_until(lambda: "Anda memilih *2*" in texts(question_of(slack, BUDI)))
    assert answers(engine)[0][1:] == ("csat", 2, "aplikasinya sering error", "survey")

    send(team, JAKARTA_OPENS + timedelta(minutes=6))
    shown = texts(posts_to(slack, FEEDBACK)[0])
    assert "*CSAT 2*/5 from *Budi Santoso*" in shown
    assert f"<@{OWNER}>, a detractor" in shown  # CSAT 1-2: the owner is mentioned


def test_the_window_in_each_customers_own_zone(bot, slack, engine, bot_settings, tmp_path):
    two_customers(engine, bot_settings, tmp_path, slack)
    answer = bot.command("survey nps plan:pro", user=ADMIN)
    assert "1 go out now, 1 when their hours begin" in answer["blocks"][1]["elements"][0]["text"]
    # Queued at the same moment: 09:00 in São Paulo, 19:00 in Jakarta.
    report = send(bot)
    assert (report.sent, report.deferred) == (1, 0)
    assert question_of(slack, ANA)
    assert dm_channel(BUDI) not in slack.messages
    by_customer = dict(surveys(engine, "customer_id", "not_before"))
    assert sorted(by_customer.values()) == [NOW, JAKARTA_OPENS]
    assert send(bot, JAKARTA_OPENS - timedelta(seconds=1)).sent == 0
    assert send(bot, JAKARTA_OPENS).sent == 1
    assert question_of(slack, BUDI)


def test_a_zone_from_slack_when_the_import_has_none(bot, slack, engine, bot_settings, tmp_path):
    add_customers(engine, bot_settings, tmp_path, "T1,Tomo,U0CUSTTOMO,retention,,,,\n")
    slack.add_user("U0CUSTTOMO", tz="Asia/Tokyo", locale="id-ID")
    bot.command("survey nps T1", user=ADMIN)
    report = send(bot)  # 21:00 in Tokyo: put back until 09:00 there
    assert (report.sent, report.deferred) == (0, 1)
    opens = surveys(engine, "not_before")[0][0]
    assert opens.isoformat() == "2026-11-25T00:00:00+00:00"
    assert send(bot, opens).sent == 1
    # Slack's locale chose the language.
    assert "Seberapa besar kemungkinan" in texts(question_of(slack, "U0CUSTTOMO"))


def test_a_double_click_a_replayed_click_and_a_changed_mind(
    bot, slack, engine, bot_settings, tmp_path
):
    two_customers(engine, bot_settings, tmp_path, slack)
    bot.command("survey nps S1", user=ADMIN)
    send(bot)
    asked = question_of(slack, ANA)
    click(bot, ANA, 3)
    click(bot, ANA, 3)
    wait_until(lambda: len(slack.calls_to("chat.update")) >= 2)
    assert [a[2] for a in answers(engine)] == [3]
    # The same signed click again: refused at the door.
    button = next(b for b in buttons(asked) if b["text"]["text"] == "3")
    body = block_actions_body(
        {"action_id": button["action_id"], "value": button["value"]},
        response_url=slack.response_url("replay"),
        user=ANA,
        channel=dm_channel(ANA),
        message_ts=asked["ts"],
        ephemeral=False,
    )
    signed_at = int(time.time())  # once: two readings may straddle a second, two requests
    first = bot.post(body, "application/x-www-form-urlencoded", timestamp=signed_at)
    again = bot.post(body, "application/x-www-form-urlencoded", timestamp=signed_at)
    assert first.status == 200 and again.status == 401
    # A changed mind within the hour replaces the score; after it, the score stands.
    bot.bot.clock.now = NOW + timedelta(minutes=30)
    click(bot, ANA, 9)
    wait_until(lambda: [a[2] for a in answers(engine)] == [9])
    bot.bot.clock.now = NOW + timedelta(minutes=90)
    click(bot, ANA, 2)
    wait_until(lambda: "already recorded" in texts(question_of(slack, ANA)))
    assert [a[2] for a in answers(engine)] == [9]
    assert surveys(engine, "status", "score") == [("answered", 9)]


def test_a_click_on_someone_elses_survey_changes_nothing(
    bot, slack, engine, bot_settings, tmp_path
):
    two_customers(engine, bot_settings, tmp_path, slack)
    bot.command("survey nps S1", user=ADMIN)
    send(bot)
    asked = question_of(slack, ANA)
    button = buttons(asked)[0]
    for who in (BUDI, MEMBER):
        body = block_actions_body(
            {"action_id": button["action_id"], "value": button["value"]},
            response_url=slack.response_url(f"forged-{who}"),
            user=who,
            channel=dm_channel(who),
            message_ts=asked["ts"],
            ephemeral=False,
        )
        assert bot.post(body, "application/x-www-form-urlencoded").status == 200
    time.sleep(0.3)
    assert answers(engine) == []
    assert slack.calls_to("chat.update") == []


def test_an_events_api_retry_stores_one_comment(bot, slack, engine, bot_settings, tmp_path):
    two_customers(engine, bot_settings, tmp_path, slack)
    bot.command("survey nps S1", user=ADMIN)
    send(bot)
    dm(bot, ANA, "7", event_id="EvSCORE")
    dm(bot, ANA, "Too expensive for what it does", event_id="EvWHY")
    event = {
        "type": "message",
        "channel_type": "im",
        "channel": dm_channel(ANA),
        "user": ANA,
        "text": "Too expensive for what it does",
    }
    assert bot.event(event, event_id="EvWHY", retry=1).status == 200
    wait_until(lambda: len(posts_to(slack, dm_channel(ANA))) >= 3)
    time.sleep(0.2)
    assert answers(engine)[0][2:4] == (7, "Too expensive for what it does")
    assert len(posts_to(slack, dm_channel(ANA))) == 3  # question, "you chose 7", thanks


def test_stop_opts_out_of_every_future_survey(bot, slack, engine, bot_settings, tmp_path):
    two_customers(engine, bot_settings, tmp_path, slack)
    bot.command("survey nps J1", user=ADMIN)
    send(bot, JAKARTA_OPENS)
    dm(bot, BUDI, "Berhenti")
    wait_until(lambda: len(posts_to(slack, dm_channel(BUDI))) == 2)
    assert "tidak akan menerima survei lagi" in posts_to(slack, dm_channel(BUDI))[-1]["text"]
    assert surveys(engine, "status") == [("cancelled",)]
    answer = bot.command("survey csat J1", user=ADMIN)
    shown = answer["blocks"][1]["text"]["text"]
    assert "1 opted out" in shown
    assert len(surveys(engine, "id")) == 1


def test_a_stranger_gets_a_polite_answer_and_nothing_is_stored(bot, slack, engine):
    slack.add_user("U0STRANGER", team_id="T0OTHER")
    # What the door keeps of every request (ids of events and of signatures, for replays)
    # is about requests, not people.
    door = ("slack_events", "slack_requests")
    before = {t: n for t, n in _counts(engine).items() if t not in door}
    dm(bot, "U0STRANGER", "hi, what do you know about Ana Lima?")
    wait_until(lambda: len(posts_to(slack, dm_channel("U0STRANGER"))) == 1)
    assert "cannot answer here" in posts_to(slack, dm_channel("U0STRANGER"))[0]["text"]
    assert {t: n for t, n in _counts(engine).items() if t not in door} == before


def test_a_customer_never_runs_team_commands(bot, slack, engine, bot_settings, tmp_path):
    """A customer in the workspace (no CLMBOT_TEAM set, so every full member may use /clm)
    is still no team member: no command, no data about anyone."""
    two_customers(engine, bot_settings, tmp_path, slack)
    dm(bot, ANA, "customer Budi")
    wait_until(lambda: len(posts_to(slack, dm_channel(ANA))) == 1)
    reply = posts_to(slack, dm_channel(ANA))[0]["text"]
    assert "automated survey assistant" in reply and "Budi" not in reply
    answer = bot.command("customer Budi", user=ANA)
    assert "customer team only" in answer["text"]
    assert "Budi" not in str(answer)


def test_reminder_after_three_days_and_expiry_after_seven(
    bot, slack, engine, bot_settings, tmp_path
):
    two_customers(engine, bot_settings, tmp_path, slack)
    bot.command("survey nps S1", user=ADMIN)
    send(bot)
    assert send(bot, NOW + timedelta(days=2, hours=23)).reminded == 0
    assert send(bot, NOW + timedelta(days=3)).reminded == 1  # Friday 09:00 in São Paulo
    assert send(bot, NOW + timedelta(days=3, hours=1)).reminded == 0  # one reminder only
    reminder = slack.messages[dm_channel(ANA)][-1]
    assert "gentle reminder" in reminder["text"]
    assert len(buttons(reminder)) == 11
    assert send(bot, NOW + timedelta(days=7)).expired == 1
    assert surveys(engine, "status") == [("expired",)]
    assert "has closed" in texts(question_of(slack, ANA))
    # A click on the closed survey stores nothing.
    bot.bot.clock.now = NOW + timedelta(days=7, minutes=1)
    click(bot, ANA, 10, message=reminder)
    time.sleep(0.3)
    assert answers(engine) == []


def test_the_cooldown_skips_anyone_asked_or_answering_within_it(
    bot, slack, engine, bot_settings, tmp_path
):
    two_customers(engine, bot_settings, tmp_path, slack)
    bot.command("survey nps S1", user=ADMIN)
    send(bot)
    click(bot, ANA, 9)
    wait_until(lambda: len(answers(engine)) == 1)
    bot.bot.clock.now = NOW + timedelta(days=89)
    answer = bot.command("survey nps plan:pro", user=ADMIN)
    assert "Queued *1 NPS survey*" in answer["blocks"][0]["text"]["text"]
    assert "1 answered or surveyed within the cooldown" in answer["blocks"][2]["text"]["text"]
    bot.bot.clock.now = NOW + timedelta(days=91)
    answer = bot.command("survey nps S1", user=ADMIN)
    assert "Queued *1 NPS survey*" in answer["blocks"][0]["text"]["text"]


def test_a_large_run_asks_to_confirm_first(bot, slack, engine, bot_settings, tmp_path):
    add_customers(
        engine,
        bot_settings,
        tmp_path,
        "".join(f"M{i},Member {i},U0MANY{i:03d},retention,,,,team\n" for i in range(60)),
    )
    answer = bot.command("survey nps plan:team", user=ADMIN)
    assert "This would ask *60 customers*" in answer["blocks"][0]["text"]["text"]
    assert surveys(engine, "id") == []
    button = answer["blocks"][1]["elements"][0]
    body = block_actions_body(
        {"action_id": button["action_id"], "value": button["value"]},
        response_url=slack.response_url("confirm"),
        user=ADMIN,
    )
    assert bot.post(body, "application/x-www-form-urlencoded").status == 200
    confirmed = slack.wait_for("response_url", count=2)[-1].body
    assert "Queued *60 NPS surveys*" in confirmed["blocks"][0]["text"]["text"]
    assert len(surveys(engine, "id")) == 60


def test_queueing_is_for_admins_and_status_for_the_team(bot, slack, engine, bot_settings, tmp_path):
    two_customers(engine, bot_settings, tmp_path, slack)
    refused = bot.command("survey nps S1", user=MEMBER)
    assert "only clmbot admins" in refused["text"]
    bot.command("survey nps plan:pro", user=ADMIN)
    send(bot)
    click(bot, ANA, 10)
    wait_until(lambda: len(answers(engine)) == 1)
    status = bot.command("survey status", user=MEMBER)
    shown = texts(status)
    assert "#1 NPS" in shown and "*100%* response rate" in shown  # of those delivered
    assert "1 answered · 0 waiting · 0 expired · 1 queued" in shown


def _counts(engine) -> dict[str, int]:
    from sqlalchemy import MetaData, func, select

    meta = MetaData()
    meta.reflect(engine)
    with engine.connect() as conn:
        return {
            t.name: conn.execute(select(func.count()).select_from(t)).scalar()
            for t in meta.sorted_tables
        }


def test_the_question_names_the_product_and_speaks_the_teams_words(
    bot_with, slack, engine, bot_settings, tmp_path
):
    from clmbot.surveys.settings import SurveyConfig
    from clmbot.surveys.texts import Texts

    config = SurveyConfig(
        product="Kopi Kita", texts=Texts({"id": {"greeting": "Halo dari Kopi Kita!"}})
    )
    bot = bot_with(surveys=config)
    two_customers(engine, bot_settings, tmp_path, slack)
    # A bare word is a customer's name, not a filter: no one is asked by mistake.
    assert "No customer matches 'pro'" in bot.command("survey nps pro", user=ADMIN)["text"]
    bot.command("survey nps plan:pro", user=ADMIN)
    send(bot)
    send(bot, JAKARTA_OPENS)
    assert "recommend Kopi Kita to a friend" in texts(question_of(slack, ANA))
    budi = texts(question_of(slack, BUDI))
    assert "Halo dari Kopi Kita!" in budi and "merekomendasikan Kopi Kita" in budi


def test_a_forgotten_customer_runs_no_team_command(bot, slack, engine, bot_settings, tmp_path):
    two_customers(engine, bot_settings, tmp_path, slack)
    with engine.begin() as conn:
        conn.execute(
            Customer.__table__.update().where(Customer.external_id == "S1").values(forgotten_at=NOW)
        )
    dm(bot, ANA, "customer Budi")
    wait_until(lambda: len(posts_to(slack, dm_channel(ANA))) == 1)
    assert "Budi" not in str(posts_to(slack, dm_channel(ANA)))


def test_a_nul_byte_in_a_reply_is_dropped_not_a_wedged_dm(
    bot, slack, engine, bot_settings, tmp_path
):
    two_customers(engine, bot_settings, tmp_path, slack)
    bot.command("survey nps S1", user=ADMIN)
    send(bot)
    dm(bot, ANA, "8 \x00")
    wait_until(lambda: len(answers(engine)) == 1)
    assert answers(engine)[0][2:4] == (8, None)


def test_one_person_for_two_customers_is_asked_once(bot, slack, engine, bot_settings, tmp_path):
    add_customers(
        engine,
        bot_settings,
        tmp_path,
        f"K1,Kopi One,{ANA},retention,,en,America/Sao_Paulo,pro\n"
        f"K2,Kopi Two,{ANA},retention,,en,America/Sao_Paulo,pro\n",
    )
    slack.add_user(ANA)
    answer = bot.command("survey nps plan:pro", user=ADMIN)
    assert "Queued *1 NPS survey*" in answer["blocks"][0]["text"]["text"]
    assert "1 a survey already pending" in answer["blocks"][2]["text"]["text"]
    send(bot)
    assert len(slack.messages[dm_channel(ANA)]) == 1
    # Answered for one account: the other is in the cooldown too (the same person).
    click(bot, ANA, 9)
    wait_until(lambda: len(answers(engine)) == 1)
    answer = bot.command("survey nps K2", user=ADMIN)
    assert "1 answered or surveyed within the cooldown" in str(answer)


def test_the_next_message_is_the_comment_and_a_new_score_within_the_hour_replaces(
    bot, slack, engine, bot_settings, tmp_path
):
    two_customers(engine, bot_settings, tmp_path, slack)
    bot.command("survey nps S1", user=ADMIN)
    send(bot)
    dm(bot, ANA, "8")
    dm(bot, ANA, "5 actually, it crashed again")
    wait_until(
        lambda: answers(engine) and answers(engine)[0][2:4] == (5, "actually, it crashed again")
    )
    dm(bot, ANA, "and support never called back")
    wait_until(lambda: len(posts_to(slack, dm_channel(ANA))) == 4)
    assert "automated survey assistant" in posts_to(slack, dm_channel(ANA))[-1]["text"]
    assert answers(engine)[0][2:4] == (5, "actually, it crashed again")
