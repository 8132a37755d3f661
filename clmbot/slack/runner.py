"""`clmbot run`: check what the bot needs, then serve Slack until told to stop.

Everything that can be wrong at start (a missing or malformed token, a schema the team wants
upgraded by hand, a token Slack refuses) stops it with one line, before anything listens.
SIGTERM and SIGINT stop it cleanly: no new requests, the ones in flight and the work after
their acks finish, then the process exits 0.
"""

from __future__ import annotations

import logging
import re
import signal
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_sdk.errors import SlackApiError

from clmbot.config import Settings
from clmbot.slack.app import build_app, make_client, utc_now
from clmbot.slack.server import HttpServer, wsgi_app
from clmbot.store import migrate
from clmbot.store.db import make_engine

log = logging.getLogger("clmbot.run")
_SECRET = re.compile(r"^[0-9a-f]{32}$")


class StartError(RuntimeError):
    """The bot cannot start; the message is one line saying what to fix."""


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
) -> int:
    """Serve until SIGTERM/SIGINT. `announce` hears one line once the bot is ready."""
    check_tokens(settings, http=http)
    engine = make_engine(settings.database_url, pool_pre_ping=True)
    _bring_schema_up(settings, engine)
    _check_slack(settings)
    for warning in settings.warnings:
        log.warning(warning)

    executor = ThreadPoolExecutor(max_workers=16, thread_name_prefix="clmbot-listener")
    app, _bot = build_app(settings, engine, clock=clock, socket_mode=not http, executor=executor)
    stopping = threading.Event()
    try:
        if http:
            server = HttpServer(wsgi_app(app, engine), port=settings.port if port is None else port)
            bound = server.start()
            _on_stop_signal(lambda: threading.Thread(target=server.stop).start(), stopping)
            (announce or log.info)(
                f"clmbot is up in HTTP mode on port {bound}: POST /slack/events, GET /healthz"
            )
            server.serve()
        else:
            handler = SocketModeHandler(app, settings.slack_app_token)
            try:
                handler.connect()
            except SlackApiError as exc:
                error = exc.response.get("error", "an error")
                raise StartError(
                    f"Slack refused SLACK_APP_TOKEN ({error}): generate an app-level token "
                    "with connections:write under Basic Information, or unset it for HTTP mode"
                ) from None
            _on_stop_signal(lambda: None, stopping)
            (announce or log.info)("clmbot is up in Socket Mode")
            stopping.wait()
            handler.close()
    finally:
        executor.shutdown(wait=True)  # the work after acks finishes before we exit
        engine.dispose()
    log.info("clmbot stopped")
    return 0


def _bring_schema_up(settings: Settings, engine: Any) -> None:
    try:
        if settings.auto_migrate:
            migrate.upgrade(engine)
        else:
            migrate.require_current(engine)
    except migrate.SchemaNotReady as exc:
        raise StartError(f"{exc} (CLMBOT_AUTO_MIGRATE is false)") from None


def _check_slack(settings: Settings) -> None:
    try:
        make_client(settings).auth_test()
    except SlackApiError as exc:
        error = exc.response.get("error", "an error")
        raise StartError(
            f"Slack refused SLACK_BOT_TOKEN ({error}): copy it again from the app's OAuth & "
            "Permissions page, and reinstall the app if it was revoked"
        ) from None
    except OSError as exc:
        where = settings.slack_api_url or "slack.com"
        raise StartError(f"cannot reach Slack at {where}: {exc}") from None


def _on_stop_signal(stop: Callable[[], None], stopping: threading.Event) -> None:
    if threading.current_thread() is not threading.main_thread():
        return  # signals reach the main thread only; an embedding caller stops us itself

    def handle(signum: int, _frame: object) -> None:
        if stopping.is_set():
            return
        log.info("%s: finishing the requests in flight, then stopping", signal.Signals(signum).name)
        stopping.set()
        stop()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


def configure_logging() -> None:
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
