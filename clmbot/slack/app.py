"""The Bolt app: one `Bot` holding what every listener needs, and the listeners on it."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from sqlalchemy import Engine

from clmbot.commands import Actor, RefusedResult, run_command
from clmbot.config import Settings
from clmbot.slack.access import Gatekeeper
from clmbot.slack.blocks import Message, apology, render
from clmbot.slack.dedupe import claim_event, release_event
from clmbot.slack.text_in import from_slack
from clmbot.store.db import session_scope

log = logging.getLogger("clmbot.slack")


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_error_id() -> str:
    return uuid.uuid4().hex[:10]


def make_client(settings: Settings) -> WebClient:
    """A Web API client that rides out rate limits (429) and Slack's own hiccups (5xx).

    slack_sdk retries only connection errors by default. The retries sleep in the calling
    thread: a thread of the bot's work pool (see `Bot.later`), never one that acks requests.
    """
    kwargs = {"token": settings.slack_bot_token}
    if settings.slack_api_url:
        kwargs["base_url"] = settings.slack_api_url
    client = WebClient(**kwargs)
    client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=3))
    client.retry_handlers.append(ServerErrorRetryHandler(max_retry_count=2))
    return client


@dataclass
class Bot:
    settings: Settings
    engine: Engine
    clock: Callable[[], datetime]
    gate: Gatekeeper
    # Where the work after an ack runs. Listener threads only ack and hand over, so a burst of
    # slow answers (rate limits, a busy database) never leaves a request without its ack.
    work: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=16, thread_name_prefix="clmbot")
    )

    def later(self, job: Callable[[], object], what: str) -> None:
        """Run `job` on the work pool; a failure is logged with an error id, never lost."""

        def run() -> None:
            try:
                job()
            except Exception:
                log.exception("error %s: %s", new_error_id(), what)

        self.work.submit(run)

    def stop(self) -> None:
        """Let the work already handed over finish."""
        self.work.shutdown(wait=True)

    def answer(
        self,
        text: str | list[str],
        *,
        user_id: str,
        channel_id: str | None,
    ) -> Message:
        """The answer to a command, for anyone: a refusal, the result, or an apology with an
        error id that the log shows beside the traceback. Never an exception.

        `text` as Slack sends it, or words already split (a button's value)."""
        if isinstance(text, str):
            text = from_slack(text)
        try:
            decision = self.gate.check(user_id)
            now = self.clock()
            zone = self.settings.timezone
            if not decision.allowed:
                return render(RefusedResult(decision.message or "Not allowed."), zone, now)
            actor = Actor(user_id, decision.is_admin, channel_id, self.settings.admins)
            with session_scope(self.engine) as session:
                result = run_command(
                    text, session=session, settings=self.settings, now=now, actor=actor
                )
                return render(result, zone, now)
        except Exception:
            error_id = new_error_id()
            log.exception("error %s: answering %r for %s", error_id, text, user_id)
            return apology(error_id)

    def first_delivery(self, event_id: str | None) -> bool:
        return event_id is None or claim_event(self.engine, event_id, self.clock())

    def not_delivered(self, event_id: str | None) -> None:
        """Undo `first_delivery` when answering failed, so that Slack's retry may succeed."""
        if event_id is not None:
            release_event(self.engine, event_id)


def build_app(
    settings: Settings,
    engine: Engine,
    *,
    clock: Callable[[], datetime] = utc_now,
    socket_mode: bool = False,
    executor: Executor | None = None,
) -> tuple[App, Bot]:
    from clmbot.slack.listeners import register

    client = make_client(settings)
    app = App(
        client=client,
        signing_secret=settings.slack_signing_secret,
        # Socket Mode messages come over an authenticated WebSocket, unsigned.
        request_verification_enabled=not socket_mode,
        # The runner checks the token (auth.test) before starting, with a clear message.
        token_verification_enabled=False,
        listener_executor=executor,
        logger=logging.getLogger("clmbot.bolt"),
    )
    bot = Bot(settings, engine, clock, Gatekeeper(client, settings, clock))
    register(app, bot)
    return app, bot
