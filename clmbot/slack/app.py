"""The Bolt app: the listeners registered on it around one `Bot`."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor
from datetime import datetime

from slack_bolt import App
from slack_sdk import WebClient
from sqlalchemy import Engine

from clmbot.config import Settings
from clmbot.slack import listeners
from clmbot.slack.access import Gatekeeper
from clmbot.slack.bot import Bot, utc_now
from clmbot.slack.logs import quiet_bolt_logger
from clmbot.slack.retries import web_client
from clmbot.slack.survey_sender import SurveySender

__all__ = ["Bot", "build_app", "make_client", "utc_now"]


def make_client(settings: Settings) -> WebClient:
    """A Web API client that rides out rate limits (429), Slack's own hiccups (5xx) and a
    lost connection, with backoff (see `clmbot.slack.retries`).

    slack_sdk retries only connection errors by default. The retries sleep in the calling
    thread: a thread of the bot's work pool (see `Bot.later`), never one that acks requests.
    """
    return web_client(settings.slack_bot_token, settings.slack_api_url)


def build_app(
    settings: Settings,
    engine: Engine,
    *,
    clock: Callable[[], datetime] = utc_now,
    socket_mode: bool = False,
    executor: Executor | None = None,
) -> tuple[App, Bot]:
    client = make_client(settings)
    app = App(
        client=client,
        signing_secret=settings.slack_signing_secret,
        # Socket Mode messages come over an authenticated WebSocket, unsigned.
        request_verification_enabled=not socket_mode,
        # The runner checks the token (auth.test) before starting, with a clear message.
        token_verification_enabled=False,
        listener_executor=executor,
        logger=quiet_bolt_logger(),
    )
    bot = Bot(settings, engine, clock, Gatekeeper(client, settings, clock))
    bot.sender = SurveySender(engine, client, settings)
    listeners.register(app, bot)
    return app, bot
