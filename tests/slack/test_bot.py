import threading
import time

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


def test_at_most_so_many_answers_are_worked_out_at_once_and_all_are_given(
    bot, customers, monkeypatch
):
    """More work threads than answers at once: the rest wait their turn asleep, rather than
    each return from the database waiting behind all the others for the interpreter."""
    running, most = [0], [0]
    lock = threading.Lock()
    real = bot_module.conversation.is_customer

    def slow_is_customer(session, user_id):  # the first query of every answer
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        try:
            time.sleep(0.15)
            return real(session, user_id)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(bot_module.conversation, "is_customer", slow_is_customer)
    assert bot.bot.work._max_workers > bot_module.ANSWERING_AT_ONCE
    started = time.monotonic()
    for _ in range(12):
        bot.command("customer A1", wait=False)
    answers = bot.slack.wait_for("response_url", count=12, timeout=20)
    took = time.monotonic() - started
    assert all("Acme Corp" in text_of(a.body) for a in answers)
    assert most[0] == bot_module.ANSWERING_AT_ONCE
    assert took < 12 * 0.15  # several at once all the same
