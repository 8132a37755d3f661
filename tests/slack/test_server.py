import json
import time

from clmbot.config import Settings
from tests.fakeslack import SECRET, get, slash_command_body
from tests.slack.conftest import start_bot


def test_a_bad_signature_is_401_and_nothing_runs(bot, slack):
    body = slash_command_body("help", response_url=slack.response_url())
    reply = bot.post(body, "application/x-www-form-urlencoded", secret="0" * 32)
    assert reply.status == 401
    time.sleep(0.2)  # nothing may arrive late either
    assert slack.calls_to("response_url") == []


def test_a_timestamp_older_than_5_minutes_is_401(bot, slack):
    body = slash_command_body("help", response_url=slack.response_url())
    reply = bot.post(body, "application/x-www-form-urlencoded", timestamp=int(time.time()) - 6 * 60)
    assert reply.status == 401
    assert slack.calls_to("response_url") == []


def test_healthz_is_200_when_the_database_answers(bot):
    reply = get(bot.url + "/healthz")
    assert reply.status == 200
    assert json.loads(reply.body) == {"ok": True, "database": "ok"}


def test_healthz_is_503_when_the_database_does_not(engine, clock, slack, tmp_path):
    from clmbot.store.db import make_engine

    broken = make_engine(f"sqlite:///{tmp_path}/missing-dir/none.db")
    settings = Settings(
        database_url="sqlite://",
        slack_bot_token="xoxb-t",
        slack_signing_secret=SECRET,
        slack_api_url=slack.url,
    )
    under_test, stop = start_bot(broken, settings, clock, slack)
    try:
        reply = get(under_test.url + "/healthz")
    finally:
        stop()
    assert reply.status == 503
    assert json.loads(reply.body)["ok"] is False


def test_other_paths_are_404(bot):
    assert get(bot.url + "/").status == 404
