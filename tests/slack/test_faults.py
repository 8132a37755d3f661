"""Faults: PostgreSQL that stops answering (through a TCP proxy the test switches off, never
the real server), and Slack answering 429 or 5xx on every kind of send. Nothing lost,
nothing sent twice, across restarts."""

# ruff: noqa: F811  (pytest fixtures imported from other test modules)

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from clmbot.risk import runs
from clmbot.slack import server
from clmbot.slack.app import make_client
from clmbot.slack.digest import run_day
from clmbot.slack.scheduler import Backoff, Jobs
from clmbot.slack.server import DB_WAIT_SECONDS, DOWN_FOR, ReplayGuard
from clmbot.store.db import make_engine
from clmbot.store.models import SeenRequest
from tests.helpers import rows
from tests.risk.test_backtest import TODAY, shop  # noqa: F401  (the fixture)
from tests.slack.conftest import MEMBER, start_bot
from tests.slack.test_commands import text_of
from tests.slack.test_digest import ALERTS, digest_bot, headlines, press  # noqa: F401
from tests.slack.test_events import dm

SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
POSTGRES_ONLY = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)


# --- a switchable TCP proxy in front of PostgreSQL ----------------------------------------


class Proxy:
    """127.0.0.1:<free port> -> PostgreSQL. `mode`: "up" (forwards), "refuse" (a new
    connection is reset at once), "blackhole" (a new connection is accepted and never
    answered); `drop()` cuts every open connection."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.mode = "up"
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            if self.mode == "refuse":
                _reset(conn)
                continue
            with self._lock:
                self._open.append(conn)
            if self.mode == "blackhole":
                continue  # held open, never read, never answered
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _reset(conn)
                continue
            upstream.settimeout(None)
            with self._lock:
                self._open.append(upstream)
            for a, b in ((conn, upstream), (upstream, conn)):
                threading.Thread(target=_pump, args=(a, b), daemon=True).start()

    def drop(self) -> None:
        with self._lock:
            gone, self._open = self._open, []
        for s in gone:
            _reset(s)

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        self.drop()


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    for s in (src, dst):
        with contextlib.suppress(OSError):
            s.shutdown(socket.SHUT_RDWR)


def _reset(s: socket.socket) -> None:
    """Close with a RST, as a server that went away."""
    with contextlib.suppress(OSError):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    with contextlib.suppress(OSError):
        s.close()


@pytest.fixture
def proxy(db_url):
    url = make_url(db_url)
    p = Proxy(url.host or "127.0.0.1", url.port or 5432)
    yield p
    p.close()


@pytest.fixture
def proxied(db_url, proxy, engine):
    """An engine on the test's schema through the proxy, made as `clmbot run` makes it."""
    url = make_url(db_url).set(host="127.0.0.1", port=proxy.port)
    eng = make_engine(url.render_as_string(hide_password=False), pool_size=2)
    yield eng
    eng.dispose()


# --- PostgreSQL unreachable during a command --------------------------------------------


@POSTGRES_ONLY
def test_the_replay_check_before_the_ack_does_not_wait_for_a_silent_database(proxied, proxy):
    clock_at = datetime(2026, 12, 1, 9, tzinfo=UTC)
    guard = ReplayGuard(proxied, lambda: clock_at)
    assert guard.first_time("v0=before")
    proxy.mode = "blackhole"
    proxy.drop()
    started = time.monotonic()
    assert guard.first_time("v0=during")  # taken, on this process's word
    assert time.monotonic() - started < DB_WAIT_SECONDS + 0.5
    started = time.monotonic()
    assert not guard.first_time("v0=during")  # a replay to this copy is still refused
    assert guard.first_time("v0=another")
    assert time.monotonic() - started < 0.2  # the database is left alone for a while
    proxy.mode = "up"
    clock_at += DOWN_FOR * 2
    assert guard.first_time("v0=after")
    assert not guard.first_time("v0=after")
    with proxied.connect() as conn:  # asked again once back: a replay to another copy fails
        stored = conn.execute(select(func.count()).select_from(SeenRequest)).scalar()
    assert stored == 2  # before and after; the two taken while it was silent are not there


@POSTGRES_ONLY
def test_the_replay_check_outlives_its_connections_dying_with_a_server_restart(
    proxied, proxy, caplog, monkeypatch
):
    """The guard's own pool pings nothing at checkout: when its connections died, the one
    that failed empties the pool and the check is made again on a new one, so the database
    still holds every request taken, and a prune that fails takes nothing back."""
    monkeypatch.setattr(server, "DB_WAIT_SECONDS", 30)  # a slow machine is no outage here
    clock_at = datetime(2026, 12, 1, 9, tzinfo=UTC)
    guard = ReplayGuard(proxied, lambda: clock_at)
    try:
        assert guard.first_time("v0=before")
        pool = guard._engine  # several connections idle in it, as after a burst
        held = [pool.raw_connection() for _ in range(4)]
        for conn in held:
            conn.close()
        assert pool.pool.checkedin() == 4
        proxy.drop()  # every open connection reset, as by a restart; the server is back
        for n in range(6):
            assert guard.first_time(f"v0=after{n}")
        monkeypatch.setattr(server, "_PG_PRUNE", "DELETE FROM no_such_table WHERE %s")
        clock_at += server.PRUNE_EVERY * 2  # a prune is due, and fails
        assert guard.first_time("v0=with-a-failed-prune")
    finally:
        guard.close()
    with proxied.connect() as conn:
        stored = conn.execute(select(func.count()).select_from(SeenRequest)).scalar()
    assert stored == 8
    assert "replay check without the database" not in caplog.text


@POSTGRES_ONLY
def test_a_request_whose_answer_was_lost_after_its_commit_is_taken_not_refused(
    proxied, monkeypatch
):
    """The INSERT committed, then the connection was lost before its answer came: the retry
    finds the request there with this very time, and it is taken, once; a replay of it is
    still refused."""
    clock_at = datetime(2026, 12, 1, 9, tzinfo=UTC)
    guard = ReplayGuard(proxied, lambda: clock_at)
    real, lost = guard._send, [False]

    def send(statement, values):
        count = real(statement, values)
        if statement == server._PG_TAKE and not lost[0]:
            lost[0] = True
            raise OSError("connection lost after the commit")
        return count

    monkeypatch.setattr(guard, "_send", send)
    try:
        assert guard.first_time("v0=lost-answer")
        assert lost[0]
        other = ReplayGuard(proxied, lambda: clock_at)  # another copy of the bot
        try:
            assert not other.first_time("v0=lost-answer")
        finally:
            other.close()
    finally:
        guard.close()
    with proxied.connect() as conn:
        stored = conn.execute(select(func.count()).select_from(SeenRequest)).scalar()
    assert stored == 1


@POSTGRES_ONLY
def test_a_command_while_postgres_is_down_says_try_again_and_the_bot_recovers(
    proxied, proxy, bot_settings, clock, slack, customers, caplog
):
    bot, stop = start_bot(proxied, bot_settings, clock, slack)
    try:
        assert "Acme Corp" in text_of(bot.command("customer A1"))
        for mode in ("refuse", "blackhole"):
            proxy.mode = mode
            proxy.drop()  # the pooled connections die with the server
            started = time.monotonic()
            answer = bot.command("customer A1")
            took = time.monotonic() - started
            seen = text_of(answer)
            assert "The database is not answering just now" in seen, seen
            assert "Try again in a minute" in seen and "error id `" in seen
            assert "Traceback" not in seen and "Acme" not in seen
            assert answer["response_type"] == "ephemeral"
            # the HTTP server's replay check gives up after DB_WAIT_SECONDS, then the
            # command's own connect timeout of 5 s
            assert took < 9, f"{mode}: {took:.1f}s"
        # the Home tab says the same, rather than a generic apology
        bot.event(
            {"type": "app_home_opened", "user": MEMBER, "channel": "D0HOME", "tab": "home"},
            event_id="EvHome",
        )
        (home,) = slack.wait_for("views.publish", timeout=15)
        assert "The database is not answering just now" in str(home.body)
        proxy.mode = "up"
        proxy.drop()  # the black-holed ones
        assert "Acme Corp" in text_of(bot.command("customer A1"))  # by itself
    finally:
        stop()
    down = [r for r in caplog.records if "the database did not answer" in r.getMessage()]
    assert down and all(r.exc_info is None for r in down)  # one line each, no traceback


@POSTGRES_ONLY
def test_a_digest_button_while_postgres_is_down_says_try_again(
    engine, proxied, proxy, bot_settings, clock, slack, shop
):
    settings = replace(bot_settings, alert_channel=ALERTS)
    morning(engine, settings)
    head = slack.messages[ALERTS][0]
    bot, stop = start_bot(proxied, settings, clock, slack)
    try:
        proxy.mode = "refuse"
        proxy.drop()
        press(bot, slack, head, "assign", user=MEMBER)
        (said,) = slack.wait_for("response_url", timeout=20)
        assert "The database is not answering just now" in text_of(said.body)
        assert not slack.calls_to("chat.update")
        proxy.mode = "up"
        press(bot, slack, head, "assign", user=MEMBER)  # a minute later: it works
        slack.wait_for("chat.update", timeout=20)
    finally:
        stop()
    assert f"Assigned to <@{MEMBER}>" in str(slack.messages[ALERTS][0]["blocks"])


# --- PostgreSQL unreachable during the daily job -----------------------------------------


class CountingSender:
    """Counts the survey sender's runs: the daily job's retries must not hold it up."""

    def __init__(self) -> None:
        self.runs = 0

    def run_once(self, now: Any) -> SimpleNamespace:
        self.runs += 1
        return SimpleNamespace()


@POSTGRES_ONLY
def test_the_daily_job_waits_for_postgres_and_posts_the_digest_once(
    proxied,
    proxy,
    bot_settings,
    slack,
    shop,
):
    settings = replace(bot_settings, alert_channel=ALERTS)
    client = make_client(settings)
    tries: list[str] = []

    def daily(now, day):
        tries.append("try")
        run_day(proxied, client, settings, day=day, as_of=now, now=now, by="bot:1", retake_own=True)

    sender = CountingSender()
    proxy.mode = "refuse"
    proxy.drop()
    jobs = Jobs(
        sender,  # type: ignore[arg-type]
        lambda: TODAY.replace(hour=10),
        daily=daily,
        backoff=Backoff(first=0.2, most=0.5, give_up_after=60),
    )
    jobs.start()
    try:
        deadline = time.monotonic() + 20
        while len(tries) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(tries) >= 3  # tried, and tried again
        before = sender.runs
        jobs.wake()
        deadline = time.monotonic() + 5
        while sender.runs == before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sender.runs > before  # the sender was not held up by the waiting daily job
        assert not headlines(slack)
        proxy.mode = "up"
        deadline = time.monotonic() + 30
        while not headlines(slack) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1)  # a second digest would show up now
    finally:
        jobs.stop()
    assert len(headlines(slack)) == 1
    (digest,) = rows(proxied, "digests", "message_ts", "posted_at")
    assert digest[0] == slack.messages[ALERTS][0]["ts"] and digest[1] is not None


def test_a_pass_this_process_lost_mid_way_is_taken_again_at_once(
    engine,
    slack,
    bot_settings,
    shop,
):
    settings = replace(bot_settings, alert_channel=ALERTS)
    # claimed, then the database went away before it finished: nobody else may take it
    # for an hour, but this process knows it is its own lost try
    assert runs.claim(engine, TODAY.date(), as_of=TODAY, now=TODAY, by="bot:1") is not None
    other = run_day(
        engine, make_client(settings), settings, day=TODAY.date(), as_of=TODAY, now=TODAY, by="x"
    )
    assert not other.ran and not headlines(slack)
    own = run_day(
        engine,
        make_client(settings),
        settings,
        day=TODAY.date(),
        as_of=TODAY,
        now=TODAY,
        by="bot:1",
        retake_own=True,
    )
    assert own.ran and len(headlines(slack)) == 1


# --- a digest Slack does not take, or takes and loses the answer ------------------------


def morning(engine, settings, by: str = "test", client=None):
    return run_day(
        engine,
        client or make_client(settings),
        settings,
        day=TODAY.date(),
        as_of=TODAY,
        now=TODAY,
        by=by,
        sleep=lambda _s: None,
    )


def test_a_digest_slack_posted_but_answered_500_is_not_posted_twice(
    engine,
    slack,
    bot_settings,
    shop,
):
    settings = replace(bot_settings, alert_channel=ALERTS)
    slack.fail("chat.postMessage", 500, done=True)  # posted, and the answer lost
    slack.fail("chat.postMessage", 503, done=True)  # and the first thread reply's
    report = morning(engine, settings)
    assert report.posted and not report.pending
    posted = slack.messages[ALERTS]
    heads = [m for m in posted if "thread_ts" not in m]
    assert len(heads) == 1
    parts = [m for m in posted if "thread_ts" in m]
    assert parts  # more than ten raised: the rest in the thread
    assert len({m["metadata"]["event_payload"]["part"] for m in parts}) == len(parts)
    (ts,) = rows(engine, "digests", "message_ts")
    assert ts == (heads[0]["ts"],)
    assert slack.calls_to("conversations.history") and slack.calls_to("conversations.replies")


@pytest.mark.parametrize("done", [False, True], ids=["not-posted", "posted-answer-lost"])
def test_a_digest_slack_would_not_take_is_posted_once_after_a_restart(
    engine,
    slack,
    bot_settings,
    shop,
    done,
):
    settings = replace(bot_settings, alert_channel=ALERTS)
    slack.fail("chat.postMessage", 500, times=2)
    slack.fail("chat.postMessage", 500, done=done)  # the third try: posted or not
    first = morning(engine, settings, by="bot:1")
    assert first.ran and first.pending == ["default"] and not first.posted
    (row,) = rows(engine, "digests", "posted_at")
    assert row == (None,)
    # a restart (another process, another client): the day's run is done, its digest not
    again = morning(engine, settings, by="bot:2", client=make_client(settings))
    assert not again.ran and not again.pending and again.posted
    assert len([m for m in slack.messages[ALERTS] if "thread_ts" not in m]) == 1
    # and once more: nothing left to do
    assert morning(engine, settings, by="bot:3").posted == {}
    assert len([m for m in slack.messages[ALERTS] if "thread_ts" not in m]) == 1


def test_a_thread_part_slack_would_not_take_is_the_only_thing_posted_again(
    engine, slack, bot_settings, shop
):
    settings = replace(bot_settings, alert_channel=ALERTS)
    slack.fail("chat.postMessage", 503, times=3, after=2)  # the head and one part went
    first = morning(engine, settings, by="bot:1")
    assert first.pending == ["default"]
    before = len(slack.messages[ALERTS])
    looked = len(slack.calls_to("conversations.history"))
    again = morning(engine, settings, by="bot:2")
    assert again.posted and not again.pending
    heads = [m for m in slack.messages[ALERTS] if "thread_ts" not in m]
    assert len(heads) == 1
    parts = [m["metadata"]["event_payload"]["part"] for m in slack.messages[ALERTS][1:]]
    assert parts == sorted(set(parts)) and len(slack.messages[ALERTS]) > before
    # the head's ts was recorded: no need to look for it
    assert len(slack.calls_to("conversations.history")) == looked


def test_two_copies_trying_again_at_once_post_the_digest_once(
    db_url, engine, slack, bot_settings, shop
):
    settings = replace(bot_settings, alert_channel=ALERTS)
    slack.fail("chat.postMessage", 500, times=3)
    assert morning(engine, settings, by="bot:1").pending == ["default"]
    slack.delay("chat.postMessage", 1.0)  # the first copy is still posting when the next looks
    reports = []

    def restart(name: str) -> None:
        own = make_engine(db_url)
        reports.append(morning(own, settings, by=name))
        own.dispose()

    copies = [threading.Thread(target=restart, args=(f"bot:{n}",)) for n in (2, 3)]
    for t in copies:
        t.start()
    for t in copies:
        t.join()
    assert sorted(bool(r.posted) for r in reports) == [False, True]
    assert len([m for m in slack.messages[ALERTS] if "thread_ts" not in m]) == 1


# --- Slack 429 and 5xx on every kind of send ----------------------------------------------


@SQLITE_ONLY
def test_a_command_answer_rides_out_429_and_5xx_on_the_response_url(bot, slack, customers):
    slack.fail("response_url", 429, retry_after=0)
    slack.fail("response_url", 502)
    bot.command("customer A1", wait=False)
    slack.wait_for("response_url", count=3, timeout=20)
    time.sleep(0.5)
    calls = slack.calls_to("response_url")
    assert len(calls) == 3  # two refused, one taken: no answer lost, none doubled
    assert all(c.body == calls[0].body for c in calls)
    assert "Acme Corp" in text_of(calls[-1].body)


@SQLITE_ONLY
def test_the_home_tab_rides_out_429_and_5xx(bot, slack, customers):
    slack.fail("views.publish", 429, retry_after=0)
    slack.fail("views.publish", 500)
    event = {"type": "app_home_opened", "user": MEMBER, "channel": "D0HOME", "tab": "home"}
    assert bot.event(event, event_id="EvH1").status == 200
    calls = slack.wait_for("views.publish", count=3, timeout=20)
    time.sleep(0.5)
    assert len(slack.calls_to("views.publish")) == 3
    assert calls[0].body == calls[2].body and "apology" not in str(calls[2].body)


@SQLITE_ONLY
def test_a_dm_answer_rides_out_a_502(bot, slack, customers):
    slack.fail("chat.postMessage", 502)
    assert bot.event(dm(MEMBER, "customer A1"), event_id="EvD1").status == 200
    slack.wait_for("chat.postMessage", count=2, timeout=20)
    time.sleep(0.5)
    assert len(slack.messages[f"D{MEMBER}"]) == 1


@SQLITE_ONLY
def test_a_dm_answer_slack_posted_but_answered_500_is_said_once(bot, slack, customers):
    """slack_sdk's retry posted it a second time; now it is looked for first."""
    slack.fail("chat.postMessage", 500, done=True)
    assert bot.event(dm(MEMBER, "customer A1"), event_id="EvD2").status == 200
    slack.wait_for("conversations.history", timeout=20)
    time.sleep(0.5)
    assert len(slack.calls_to("chat.postMessage")) == 1
    (answer,) = slack.messages[f"D{MEMBER}"]
    assert answer["metadata"]["event_type"] == "clmbot_reply"
    assert answer["metadata"]["event_payload"] == {"reply_to": "EvD2"}


@SQLITE_ONLY
def test_a_file_upload_rides_out_429_and_5xx_at_every_step(bot, slack, customers):
    slack.fail("files.getUploadURLExternal", 429, retry_after=0)
    slack.fail("upload", 500)  # the bytes: the whole upload starts again
    slack.fail("files.completeUploadExternal", 503)
    answer = bot.command("funnel chart since 60d", channel="C0CS")
    assert "I posted *Customer funnel* here" in text_of(answer)
    assert len(slack.uploads) == 1
    shared = [c for c in slack.calls_to("files.completeUploadExternal")]
    assert len(shared) == 2  # one refused, one taken


@SQLITE_ONLY
def test_an_upload_slack_never_takes_says_try_again(bot, slack, customers):
    slack.fail("upload", 500, times=3)
    answer = bot.command("funnel chart since 60d", channel="C0CS")
    assert "Slack is not answering; try again in a minute" in text_of(answer)
    assert not slack.uploads


@SQLITE_ONLY
def test_a_digest_button_redraw_rides_out_5xx(digest_bot, slack, engine):
    bot, head = digest_bot
    slack.fail("chat.update", 503)
    slack.fail("chat.update", 429, retry_after=0)
    press(bot, slack, head, "assign", user=MEMBER)
    slack.wait_for("chat.update", count=3, timeout=20)
    assert f"Assigned to <@{MEMBER}>" in str(slack.messages[ALERTS][0]["blocks"])
    assert ("assigned",) in rows(engine, "alerts", "status")


@SQLITE_ONLY
def test_a_digest_rides_out_429(engine, slack, bot_settings, shop):
    settings = replace(bot_settings, alert_channel=ALERTS)
    slack.fail("chat.postMessage", 429, retry_after=0, times=2)
    report = morning(engine, settings)
    assert report.posted and not report.pending
    assert len([m for m in slack.messages[ALERTS] if "thread_ts" not in m]) == 1
    assert not slack.calls_to("conversations.history")  # a 429 posted nothing: no look-up
