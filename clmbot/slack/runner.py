"""`clmbot run`: check what the bot needs, then serve Slack until told to stop.

Everything that can be wrong at start (a missing or malformed token, a schema the team wants
upgraded by hand, a token Slack refuses) stops it with one line, before anything listens.
SIGTERM and SIGINT stop it cleanly: no new requests, the ones in flight and the work after
their acks finish, then the process exits 0.
"""

from __future__ import annotations

import gc
import logging
import os
import re
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime
from typing import Any

from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_sdk.errors import SlackApiError

from clmbot.config import Settings
from clmbot.memory import fewer_malloc_arenas
from clmbot.slack.app import build_app, make_client, utc_now
from clmbot.slack.digest import Pending, run_day
from clmbot.slack.logs import ScrubbingFormatter, guard_handlers
from clmbot.slack.scheduler import Jobs
from clmbot.slack.server import HttpServer, wsgi_app
from clmbot.slack.warm import warm_reports
from clmbot.slack.workers import Helpers, free_port, stop_with_parent
from clmbot.store import latest, migrate
from clmbot.store.db import make_engine

log = logging.getLogger("clmbot.run")
_SECRET = re.compile(r"^[0-9a-f]{32}$")


class StartError(RuntimeError):
    """The bot cannot start; the message is one line saying what to fix."""


# Connections per copy: the 16 work threads, the replay checks before acks, the survey sender
# and the daily job each hold one at times. With SQLAlchemy's default of 5 (and 10 more), a
# burst of commands left the acks queueing for a connection behind the work.
POOL_SIZE = 20
POOL_OVERFLOW = 10


def check_tokens(settings: Settings, *, http: bool) -> None:
    token = settings.slack_bot_token
    if not token:
        raise StartError(
            "SLACK_BOT_TOKEN is not set: copy the Bot User OAuth Token (xoxb-...) from the "
            "app's OAuth & Permissions page into .env"
        )
    if not re.match(r"^xoxb-[A-Za-z0-9-]+$", token):
        raise StartError(
            "SLACK_BOT_TOKEN does not look like a bot token: it starts with xoxb- (an xoxp- "
            "user token or an xapp- app token will not do)"
        )
    if http:
        secret = settings.slack_signing_secret
        if not secret:
            raise StartError(
                "SLACK_SIGNING_SECRET is not set, and HTTP mode needs it: copy the Signing "
                "Secret from the app's Basic Information page into .env"
            )
        if not _SECRET.match(secret):
            raise StartError(
                "SLACK_SIGNING_SECRET does not look like a signing secret (32 hex characters, "
                "from the app's Basic Information page)"
            )
    elif not re.match(r"^xapp-[A-Za-z0-9-]+$", settings.slack_app_token or ""):
        raise StartError(
            "SLACK_APP_TOKEN does not look like an app-level token: it starts with xapp- "
            "(Basic Information, App-Level Tokens, with connections:write); or unset it and "
            "use HTTP mode"
        )


def run_bot(
    settings: Settings,
    *,
    http: bool,
    port: int | None = None,
    clock: Callable[[], datetime] = utc_now,
    announce: Callable[[str], None] | None = None,
    workers: int = 1,
    serve_only: bool = False,
) -> int:
    """Serve until SIGTERM/SIGINT. `announce` hears one line once the bot is ready.
    `workers`: processes serving HTTP mode's port (`clmbot.slack.workers`); `serve_only`:
    this is one of the others, which answers requests and runs no jobs.

    Every check that can refuse the start runs before logging is set up, so that a refused
    start is the one line of its StartError and nothing else.
    """
    fewer_malloc_arenas()  # before the threads: see clmbot.memory
    check_tokens(settings, http=http)
    where = _check_slack(settings, socket_mode=not http)
    engine = make_engine(
        settings.database_url,
        create=True,
        pool_pre_ping=True,
        pool_size=POOL_SIZE,
        max_overflow=POOL_OVERFLOW,
    )
    _bring_schema_up(settings, engine)
    configure_logging()
    log.info("database schema at revision %s", migrate.current_revision(engine))
    for warning in settings.warnings:
        log.warning(warning)

    listeners = ThreadPoolExecutor(max_workers=16, thread_name_prefix="clmbot-listener")
    app, bot = build_app(settings, engine, clock=clock, socket_mode=not http, executor=listeners)
    assert bot.sender is not None
    client = make_client(settings)
    # This process alone: several copies (containers all run as pid 1) must not share it.
    worker = f"bot:{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def daily(now: datetime, day: date) -> None:
        report = run_day(
            engine, client, settings, day=day, as_of=now, now=now, by=worker, retake_own=True
        )
        if report.ran:
            log.info("risk pass of %s: %s scored, digests %s", day, report.scored, report.posted)
        elif report.posted:
            log.info("digests of %s posted on a later try: %s", day, report.posted)
        if report.pending:
            raise Pending(f"digests of {day} not posted yet: {', '.join(report.pending)}")

    def upkeep() -> None:
        done = latest.refresh(engine)
        if done.tables:
            log.info(
                "latest values kept from %s: %s customers changed",
                " and ".join(done.tables),
                done.changed,
            )

    jobs = Jobs(
        bot.sender,
        clock,
        daily=daily,
        upkeep=upkeep,
        at=settings.alert_time,
        zone=settings.timezone,
    )
    bot.wake_sender = jobs.wake
    stop = _Stop()
    try:
        if http:
            wanted = settings.port if port is None else port
            shared = workers > 1 or serve_only
            if shared and wanted == 0:
                wanted = free_port("0.0.0.0")
            assert settings.slack_signing_secret is not None  # check_tokens made sure
            server = HttpServer(
                wsgi_app(app, engine, settings.slack_signing_secret),
                port=wanted,
                reuse_port=shared,
            )
            try:
                bound = server.start()
            except OSError as exc:
                raise StartError(
                    f"cannot listen on port {wanted} ({exc.strerror}): another program has it? "
                    "choose another with PORT or --port"
                ) from None
            helpers = Helpers(bound, workers - 1) if workers > 1 and not serve_only else None

            def stop_serving() -> None:
                server.stop()
                if helpers is not None:
                    helpers.stop()

            stop.install(stop_serving)
            if helpers is not None:
                helpers.start()
            if serve_only:
                stop_with_parent(stop.request)
            processes = f", {workers} processes" if helpers is not None else ""
            (announce or log.info)(
                f"clmbot is up in HTTP mode on port {bound} ({where}{processes}): "
                "POST /slack/events, GET /healthz"
            )
            if not serve_only:
                jobs.start()
            _once_up(engine, settings, clock)
            server.serve()  # returns once stopping began
        else:
            handler = SocketModeHandler(app, settings.slack_app_token)
            handler.connect()
            if not _connected(handler):
                raise StartError(
                    "the Socket Mode connection to Slack did not open: check the network, and "
                    "that Socket Mode is on in the app's settings; or use HTTP mode"
                )
            stop.install(handler.close)
            (announce or log.info)(f"clmbot is up in Socket Mode ({where})")
            jobs.start()
            _once_up(engine, settings, clock)
        stop.wait()  # the stop itself: no new requests, the ones in flight finished
    finally:
        jobs.stop()  # a send under way finishes: claimed, sent, marked
        listeners.shutdown(wait=True)  # listeners that were still acking
        bot.stop()  # the work after the acks
        engine.dispose()
    log.info("clmbot stopped")
    return 0


def _once_up(engine: Any, settings: Settings, clock: Callable[[], datetime]) -> None:
    """What the start loaded (modules, the app, the models) lives as long as the process.
    Left to the garbage collector, each full collection walked all of it again, pausing
    every thread for 100-250 ms a few times a minute under load (bench_load); frozen, a
    collection looks only at what came since. Then the team-wide reports are worked out
    ahead (`clmbot.slack.warm`)."""
    gc.collect()
    gc.freeze()
    warm_reports(engine, settings, clock)


class _Stop:
    """SIGTERM or SIGINT: stop taking requests and let the ones in flight finish. A second
    signal while that runs stops at once, for a stop that hangs."""

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._requested = threading.Event()

    def install(self, stop: Callable[[], None]) -> None:
        self._thread = threading.Thread(target=stop, name="clmbot-stop")
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._on_signal)
            signal.signal(signal.SIGINT, self._on_signal)

    def _on_signal(self, signum: int, _frame: object) -> None:
        name = signal.Signals(signum).name
        if self._requested.is_set():
            log.warning("%s again: stopping now, without waiting", name)
            os._exit(1)
        log.info("%s: finishing the requests in flight, then stopping", name)
        self.request()

    def request(self) -> None:
        """Begin the stop (on its own thread: an HTTP server's stop waits for requests)."""
        if not self._requested.is_set():
            self._requested.set()
            assert self._thread is not None
            self._thread.start()

    def wait(self) -> None:
        """Until the stop was requested and has finished."""
        self._requested.wait()
        assert self._thread is not None
        self._thread.join()


def _connected(handler: SocketModeHandler, timeout: float = 10) -> bool:
    """slack_sdk logs a WebSocket that would not open and carries on: ask it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if handler.client.is_connected():
            return True
        time.sleep(0.1)
    return False


def _bring_schema_up(settings: Settings, engine: Any) -> None:
    try:
        if settings.auto_migrate:
            migrate.upgrade(engine)
        else:
            migrate.require_current(engine)
    except migrate.SchemaNotReady as exc:
        why = "" if settings.auto_migrate else " (CLMBOT_AUTO_MIGRATE is false)"
        raise StartError(f"{exc}{why}") from None


def _check_slack(settings: Settings, *, socket_mode: bool) -> str:
    """Ask Slack whether the tokens work; returns where the bot is: "Acme Inc, as @clmbot"."""
    client = make_client(settings)
    try:
        me = client.auth_test()
        if socket_mode:
            client.apps_connections_open(app_token=settings.slack_app_token)
    except SlackApiError as exc:
        error = exc.response.get("error", "an error")
        if exc.response.api_url.endswith("apps.connections.open"):
            raise StartError(
                f"Slack refused SLACK_APP_TOKEN ({error}): generate an app-level token with "
                "connections:write under Basic Information, or unset it for HTTP mode"
            ) from None
        raise StartError(
            f"Slack refused SLACK_BOT_TOKEN ({error}): copy it again from the app's OAuth & "
            "Permissions page, and reinstall the app if it was revoked"
        ) from None
    except OSError as exc:
        where = settings.slack_api_url or "slack.com"
        raise StartError(f"cannot reach Slack at {where}: {exc}") from None
    team = me.get("team") or me.get("team_id") or "an unnamed workspace"
    return f"workspace {team}, as @{me.get('user') or me.get('user_id') or 'the bot'}"


def configure_logging() -> None:
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for handler in logging.getLogger().handlers:
        handler.setFormatter(ScrubbingFormatter(handler.formatter))
    guard_handlers(logging.getLogger().handlers)
    logging.getLogger("alembic").setLevel(logging.WARNING)  # "Context impl SQLiteImpl." …
