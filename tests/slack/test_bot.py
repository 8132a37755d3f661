import threading

from clmbot.slack import bot as bot_module
from tests.slack.test_commands import text_of


def test_commands_beyond_what_the_bot_can_queue_are_told_to_try_again(
    bot, customers, monkeypatch, caplog
):
    monkeypatch.setattr(bot_module, "MAX_WAITING", 5)
    release = threading.Event()
    try:
        # every work thread busy, and five jobs waiting behind them
        for _ in range(bot.bot.work._max_workers + 5):
            bot.bot.later(release.wait, "a slow job")
        answer = bot.command("customer A1")
        seen = text_of(answer)
        assert "Many requests are arriving at once" in seen and "try again in a minute" in seen
        assert answer["response_type"] == "ephemeral"
        assert "Acme" not in seen
        bot.command("customer A1")
    finally:
        release.set()
    assert "Acme Corp" in text_of(bot.command("customer A1"))  # taken again once it drains
    busy = [r.getMessage() for r in caplog.records if "too busy" in r.getMessage()]
    assert busy == [
        "too busy: more than 5 commands waiting; answered 'try again' since the last line: 1"
    ]
