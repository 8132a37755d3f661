import time

from tests.slack.conftest import MEMBER
from tests.slack.test_commands import text_of


def dm(user: str, text: str) -> dict:
    return {
        "type": "message",
        "channel_type": "im",
        "channel": f"D{user}",
        "user": user,
        "text": text,
        "ts": f"{time.time():.6f}",
    }


def test_a_team_member_can_dm_a_command(bot, slack, customers):
    assert bot.event(dm(MEMBER, "customer A1"), event_id="Ev1").status == 200
    (post,) = slack.wait_for("chat.postMessage")
    assert post.body["channel"] == f"D{MEMBER}"
    assert "Acme Corp" in text_of(post.body)


def test_a_retried_event_is_answered_once(bot, slack, customers):
    assert bot.event(dm(MEMBER, "help"), event_id="Ev2").status == 200
    slack.wait_for("chat.postMessage")
    for retry in (1, 2):
        assert bot.event(dm(MEMBER, "help"), event_id="Ev2", retry=retry).status == 200
    time.sleep(0.5)  # give a wrong second answer the time to show up
    assert len(slack.calls_to("chat.postMessage")) == 1


def test_someone_else_gets_a_polite_answer_and_nothing_about_customers(bot, slack, customers):
    slack.add_user("U0CUSTOMER", team_id="T0THEIRS")
    assert bot.event(dm("U0CUSTOMER", "customer A1"), event_id="Ev3").status == 200
    (post,) = slack.wait_for("chat.postMessage")
    assert "Thanks for your message" in post.body["text"]
    assert "Acme" not in str(post.body)


def test_a_rate_limit_on_chat_post_message_is_ridden_out(bot, slack, customers):
    slack.fail("chat.postMessage", 429, retry_after=1)
    assert bot.event(dm(MEMBER, "funnel"), event_id="Ev4").status == 200
    calls = slack.wait_for("chat.postMessage", count=2)
    assert len(calls) == 2 and calls[0].body == calls[1].body  # the same message, again
    assert calls[1].at - calls[0].at >= 1.0  # after the Retry-After Slack asked for


def test_a_server_error_is_retried_too(bot, slack):
    slack.fail("chat.postMessage", 500)
    bot.event(dm(MEMBER, "help"), event_id="Ev5")
    assert len(slack.wait_for("chat.postMessage", count=2)) == 2


def test_an_answer_that_could_not_be_sent_is_sent_on_slacks_retry(bot, slack, engine):
    from tests.helpers import rows

    slack.fail("chat.postMessage", 500, times=3)  # the first try and both of its retries
    bot.event(dm(MEMBER, "help"), event_id="Ev8")
    slack.wait_for("chat.postMessage", count=3)
    deadline = time.monotonic() + 10
    while rows(engine, "slack_events", "event_id") and time.monotonic() < deadline:
        time.sleep(0.05)  # the claim is released once the third try has failed
    bot.event(dm(MEMBER, "help"), event_id="Ev8", retry=1)
    calls = slack.wait_for("chat.postMessage", count=4)
    assert "Example: `customer Acme`" in text_of(calls[-1].body)


def test_a_dm_whose_sender_cannot_be_looked_up_is_answered_on_slacks_retry(bot, slack):
    slack.fail("users.info", 500, times=3)  # the look-up and both of its retries
    bot.event(dm(MEMBER, "help"), event_id="Ev9")
    slack.wait_for("users.info", count=3)
    deadline = time.monotonic() + 10
    reply = None
    while time.monotonic() < deadline:  # the claim is released once the look-up failed
        bot.event(dm(MEMBER, "help"), event_id="Ev9", retry=1)
        if slack.calls_to("chat.postMessage"):
            reply = slack.calls_to("chat.postMessage")[0]
            break
        time.sleep(0.2)
    assert reply is not None and "Example: `customer Acme`" in text_of(reply.body)


def test_a_member_off_the_team_who_dms_is_told_why(bot_with, slack):
    bot = bot_with(team=("U0SOMEONE",))
    bot.event(dm(MEMBER, "help"), event_id="Ev10")
    (post,) = slack.wait_for("chat.postMessage")
    assert "You are not on the clmbot team" in post.body["text"]


def test_a_dm_during_a_database_outage_is_not_acknowledged_and_is_answered_later(
    bot, slack, engine, tmp_path
):
    """Nothing is taken while the database is down: the request fails, Slack sends the
    event again, and it is answered once the database is back."""
    from clmbot.store.db import make_engine

    working = bot.bot.engine
    bot.bot.engine = make_engine(f"sqlite:///{tmp_path}/gone/clmbot.db")  # does not answer
    try:
        first = bot.event(dm(MEMBER, "funnel"), event_id="EvOut")
    finally:
        bot.bot.engine = working
    assert first.status >= 500  # not acknowledged: Slack will try again
    time.sleep(0.3)
    assert slack.calls_to("chat.postMessage") == []
    again = bot.event(dm(MEMBER, "funnel"), event_id="EvOut", retry=1)
    assert again.status == 200
    (post,) = slack.wait_for("chat.postMessage")
    assert "Funnel" in text_of(post.body)
    bot.event(dm(MEMBER, "funnel"), event_id="EvOut", retry=2)
    time.sleep(0.3)
    assert len(slack.calls_to("chat.postMessage")) == 1


def test_a_greeting_gets_a_greeting_and_how_to_ask(bot, slack):
    bot.event(dm(MEMBER, "hi"), event_id="EvHi")
    (post,) = slack.wait_for("chat.postMessage")
    seen = text_of(post.body)
    assert seen.startswith(":wave: Hello!") and "`customer Acme`" in seen
    assert "I don't know" not in seen and "/clm customer Acme" not in seen
    assert len(post.body["blocks"]) == 1  # short: not the whole help


def test_in_a_dm_the_help_uses_bare_words_and_a_leading_clm_is_fine(bot, slack, customers):
    for n, typed in enumerate(("help", "clm customer A1", "/clm customer A1", "fnnel")):
        bot.event(dm(MEMBER, typed), event_id=f"EvW{n}")
        slack.wait_for("chat.postMessage", count=n + 1)
    help_, card, slash_card, unknown = (text_of(c.body) for c in slack.calls_to("chat.postMessage"))
    assert "*`customer &lt;external id | e-mail | name&gt;`*" in help_
    assert "/clm " not in help_.split("Coming later")[0]
    assert "Acme Corp" in card and "Acme Corp" in slash_card
    assert "I don't know `fnnel`. Did you mean `funnel`?" in unknown
