import threading
import time

from clmbot.feedback import reports
from clmbot.slack import bot as bot_module
from clmbot.slack.warm import warm_reports
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
    inside, most = [0], [0]
    lock = threading.Lock()
    release = threading.Event()
    real = bot_module.conversation.is_customer

    def held_is_customer(session, user_id):  # the first query of every answer
        with lock:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        try:
            release.wait(10)
            return real(session, user_id)
        finally:
            with lock:
                inside[0] -= 1

    monkeypatch.setattr(bot_module.conversation, "is_customer", held_is_customer)
    assert bot.bot.work._max_workers > bot_module.ANSWERING_AT_ONCE + 2
    try:
        for _ in range(bot_module.ANSWERING_AT_ONCE + 2):
            bot.command("customer A1", wait=False)
        deadline = time.monotonic() + 10
        while inside[0] < bot_module.ANSWERING_AT_ONCE and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)  # time enough for one more to come in, were it let
        assert most[0] == bot_module.ANSWERING_AT_ONCE
    finally:
        release.set()
    answers = bot.slack.wait_for("response_url", count=bot_module.ANSWERING_AT_ONCE + 2)
    assert all("Acme Corp" in text_of(a.body) for a in answers)


def test_answers_waiting_for_a_report_under_way_leave_their_turn_to_others(
    bot, customers, monkeypatch
):
    """The bot works the team-wide reports out as it starts, on a thread of its own with no
    turn. Asks of the same report wait for it; they must not hold every turn meanwhile."""
    started, release = threading.Event(), threading.Event()
    real = reports._report

    def slow_report(*args, **kwargs):
        started.set()
        release.wait(20)
        return real(*args, **kwargs)

    monkeypatch.setattr(reports, "_report", slow_report)
    waiting = bot_module.ANSWERING_AT_ONCE + 1  # more than there are turns
    warming = warm_reports(bot.bot.engine, bot.settings, bot.bot.clock)
    try:
        assert started.wait(10)  # the warm-up is working NPS out
        for _ in range(waiting):
            bot.command("nps", wait=False)  # each waits for the warm-up's
        time.sleep(0.5)
        asked = time.monotonic()
        bot.command("customer A1", wait=False)
        card = []
        while not card and time.monotonic() - asked < 5:
            time.sleep(0.05)
            card = [c for c in bot.slack.calls_to("response_url") if "Acme" in text_of(c.body)]
        assert card, "the card waited for the report that others were waiting for"
    finally:
        release.set()
    warming.join(20)
    said = [text_of(c.body) for c in bot.slack.wait_for("response_url", count=waiting + 1)]
    assert sum("NPS" in t and "Acme" not in t for t in said) == waiting
