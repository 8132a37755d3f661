"""`Bot`: what every listener needs (settings, database, clock, gatekeeper, a work pool),
and the one place a command typed in Slack becomes an answer.

Listeners import this module; this module imports no listener, so there is no circle.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from slack_sdk import WebClient
from sqlalchemy import Engine

from clmbot import turns
from clmbot.alerts.actions import act
from clmbot.commands.run import run_command
from clmbot.commands.spec import Actor
from clmbot.config import Settings
from clmbot.dashboard import dashboard
from clmbot.results import RefusedResult, SurveyQueuedResult
from clmbot.slack import conversation
from clmbot.slack.access import Gatekeeper
from clmbot.slack.dedupe import claim_event, release_event
from clmbot.slack.digest import redraw
from clmbot.slack.posted_once import post_once
from clmbot.slack.survey_sender import SurveySender
from clmbot.slack.text_in import from_slack
from clmbot.slack.uploads import UploadFailed, deliver
from clmbot.slack.views import render
from clmbot.slack.views.base import (
    IN_CHANNEL,
    IN_DM,
    Block,
    Message,
    Where,
    apology,
    database_down,
    section,
)
from clmbot.slack.views.help import refused_blocks
from clmbot.slack.views.home import apology_blocks, database_down_blocks, home_blocks
from clmbot.store.db import database_down as is_database_down
from clmbot.store.db import session_scope

log = logging.getLogger("clmbot.slack")
# The metadata of the bot's answers in a DM: how a retry finds one Slack posted but whose
# answer was lost (`post_once`).
REPLY_EVENT = "clmbot_reply"
# Commands waiting for a work thread, at most; beyond, "try again" at once (see `Bot.later`).
# About ten seconds of work at the commands' usual cost.
MAX_WAITING = 200
# Answers worked out at once, per process; the other work threads wait their turn asleep.
# Each answer is interpreter time between short waits for the database: with 16 at once
# under bench_load's 200 commands a second, every return from the database waited for the
# interpreter behind the others, answers took longer, more of them overlapped, and the bot
# spent more time switching threads than answering (170 context switches and 5.7 ms of CPU
# a command, answers' p50 0.8 s). With 4: 50-65 switches, 4.3-5.1 ms, p50 under 15 ms. The
# sends to Slack (and their retries' sleeps) are outside it, and an answer that only waits
# for another thread's report gives its turn back meanwhile (`clmbot.turns`).
ANSWERING_AT_ONCE = 4

FOR_THE_TEAM = (
    "clmbot answers the customer team only. If you are on the team, ask an admin to add you "
    "to CLMBOT_TEAM."
)
NOT_FOR_YOU = Message(
    "Thanks for your message! I'm the customer team's assistant and cannot answer here; "
    "your contact at the company will be glad to help.",
)


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_error_id() -> str:
    return uuid.uuid4().hex[:10]


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
    # Sends the queued surveys (run by the background jobs, or by a test with its clock).
    sender: SurveySender | None = None
    # Runs the survey sender now (set when the background jobs run); a no-op otherwise.
    wake_sender: Callable[[], None] = lambda: None
    _waiting: int = 0
    _refused: int = 0  # commands told to try again since the last log line
    _busy_logged: float = float("-inf")
    _waiting_lock: threading.Lock = field(default_factory=threading.Lock)
    _answering: threading.BoundedSemaphore = field(
        default_factory=lambda: threading.BoundedSemaphore(ANSWERING_AT_ONCE)
    )

    def later(
        self,
        job: Callable[[], object],
        what: str,
        *,
        busy: Callable[[], object] | None = None,
    ) -> None:
        """Run `job` on the work pool; a failure is logged with an error id, never lost.

        With `busy`, a job that would wait behind MAX_WAITING others is not queued: `busy`
        runs at once instead (a "try again" answer). More work than the bot can do, queued
        anyway, is answered minutes late, to no one's use, while memory grows.
        """
        with self._waiting_lock:
            if busy is not None and self._waiting >= MAX_WAITING:
                full = True
            else:
                full = False
                self._waiting += 1
        if full:
            self._log_busy()
            assert busy is not None
            busy()
            return

        def run() -> None:
            with self._waiting_lock:
                self._waiting -= 1
            try:
                job()
            except Exception as exc:
                if is_database_down(exc):  # the database's trouble, not a bug: one line
                    self._database_down(exc, what)
                    return
                log.exception("error %s: %s", new_error_id(), what)

        self.work.submit(run)

    def _log_busy(self) -> None:
        """One line a minute while too busy, with the count: a line per refused command
        would flood the log just when it is needed."""
        with self._waiting_lock:
            self._refused += 1
            at = time.monotonic()
            if at - self._busy_logged < 60:
                return
            refused, self._refused, self._busy_logged = self._refused, 0, at
        log.warning(
            "too busy: more than %d commands waiting; answered 'try again' since the last line: %d",
            MAX_WAITING,
            refused,
        )

    def stop(self) -> None:
        """Let the work already handed over finish."""
        self.work.shutdown(wait=True)

    def answer(
        self,
        text: str | list[str],
        *,
        user_id: str,
        channel_id: str | None,
        in_dm: bool = False,
    ) -> Message:
        """The answer to a command, for anyone: a refusal, the result, or an apology with an
        error id that the log shows beside the traceback. Never an exception.

        `text` as Slack sends it, or words already split (a button's value)."""
        try:
            decision = self.gate.check(user_id)  # may ask Slack: before taking a turn
            if not decision.allowed:
                return self._render(RefusedResult(decision.message or "Not allowed."), in_dm)
            with turns.taken(self._answering), session_scope(self.engine) as session:
                # A customer in the workspace is no team member unless the team names them.
                if not decision.named and conversation.is_customer(session, user_id):
                    return self._render(RefusedResult(FOR_THE_TEAM), in_dm)
                return self._run(session, text, decision.is_admin, user_id, channel_id, in_dm)
        except Exception as exc:
            if is_database_down(exc):
                return database_down(self._database_down(exc, f"answering for {user_id}"))
            return self._apology(text, user_id)

    def home(self, user_id: str) -> list[Block]:
        """The blocks of `user_id`'s Home tab, built afresh: their dashboard, or why not, with
        the same gate as a command (guests and other workspaces, then a customer the team
        does not name); or an apology with an error id that the log shows beside the
        traceback. Never an exception: the tab always says something."""
        try:
            decision = self.gate.check(user_id)
            now = self.clock()
            where = Where(self.settings.timezone, now, IN_CHANNEL, self.settings.display)
            if not decision.allowed:
                return refused_blocks(RefusedResult(decision.message or "Not allowed."), where)
            with turns.taken(self._answering), session_scope(self.engine) as session:
                if not decision.named and conversation.is_customer(session, user_id):
                    return refused_blocks(RefusedResult(FOR_THE_TEAM), where)
                board = dashboard(session, self.settings, user_id, now)
            return home_blocks(board, where)
        except Exception as exc:
            if is_database_down(exc):
                return database_down_blocks(self._database_down(exc, f"the Home tab of {user_id}"))
            error_id = new_error_id()
            log.exception("error %s: building the Home tab of %s", error_id, user_id)
            return apology_blocks(error_id)

    def dm_reply(self, event: dict[str, Any], event_id: str | None) -> Message | None:
        """The answer to a DM, or None when this event was answered already.

        Taking the event (its id, stored so that Slack's retries change nothing) and working
        out the answer are one transaction: when the database does not answer, this raises,
        the request is not acknowledged, and Slack delivers the message again later.
        """
        user_id = event["user"]
        decision = self.gate.check(user_id)  # Slack does not answer: raised, Slack retries
        now = self.clock()
        text = event.get("text", "")
        try:
            with session_scope(self.engine) as session:
                if event_id is not None and not claim_event(session.connection(), event_id, now):
                    return None
                # A customer: their survey, whatever they type; never the team's commands
                # (unless the team names them and they have no survey open).
                turn = conversation.on_message(
                    session, self.settings, user_id=user_id, text=from_slack(text), now=now
                )
                if turn is not None and not (decision.named and turn[1].idle):
                    message, reply = turn
                    if reply.answered:
                        message.after = self.wake_sender
                    return message
                if not decision.named and conversation.is_customer(session, user_id):
                    return NOT_FOR_YOU  # a customer forgotten (erased) is still no team member
                if decision.allowed:
                    return self._run(
                        session, text, decision.is_admin, user_id, event.get("channel"), True
                    )
                if decision.member:
                    message = decision.message or ""
                    return Message(message, [section(message)])
                return NOT_FOR_YOU
        except Exception as exc:
            if is_database_down(exc):
                raise  # not answered, not taken: Slack's retry will find the database back
            answer = self._apology(text, user_id)
            with session_scope(self.engine) as session:  # taken, and answered with the apology
                if event_id is not None and not claim_event(session.connection(), event_id, now):
                    return None
            return answer

    def _run(
        self,
        session: Any,
        text: str | list[str],
        is_admin: bool,
        user_id: str,
        channel_id: str | None,
        in_dm: bool,
    ) -> Message:
        if isinstance(text, str):
            text = from_slack(text)
        actor = Actor(user_id, is_admin, channel_id, self.settings.admins)
        result = run_command(
            text,
            session=session,
            settings=self.settings,
            now=self.clock(),
            actor=actor,
            in_dm=in_dm,
        )
        message = self._render(result, in_dm)
        if isinstance(result, SurveyQueuedResult) and result.queued:
            message.after = self.wake_sender
        return message

    def _render(self, result: Any, in_dm: bool) -> Message:
        return render(
            result,
            self.settings.timezone,
            self.clock(),
            prefix=IN_DM if in_dm else IN_CHANNEL,
            display=self.settings.display,
        )

    @staticmethod
    def _apology(text: str | list[str], user_id: str) -> Message:
        """What went wrong goes to the log under an error id, without what was typed (it may
        name a customer); the person gets the id."""
        error_id = new_error_id()
        words = text.split() if isinstance(text, str) else text
        command = words[0].lower()[:20] if words else "help"
        log.exception("error %s: answering %r for %s", error_id, command, user_id)
        return apology(error_id)

    @staticmethod
    def _database_down(exc: BaseException, what: str) -> str:
        """Logged without a traceback (the database's trouble, not a bug), under an error id
        the person is given; returns the id."""
        error_id = new_error_id()
        cause = getattr(exc, "orig", None) or exc
        first = str(cause).strip().splitlines()[0][:200] if str(cause).strip() else ""
        log.warning(
            "error %s: the database did not answer (%s: %s), %s",
            error_id,
            type(cause).__name__,
            first,
            what,
        )
        return error_id

    def survey_click(self, user_id: str, value: str) -> tuple[Message, bool] | None:
        """A customer's score button: the question redrawn, and whether an answer changed.
        No gate: customers are not the team; the survey must be theirs."""
        with session_scope(self.engine) as session:
            return conversation.on_click(
                session, self.settings, user_id=user_id, value=value, now=self.clock()
            )

    def alert_click(self, client: WebClient, user_id: str, verb: str, value: str) -> Message | None:
        """A digest button: the refusal (or "try again") to show the person, or None when it
        was done (the message redrawn for everyone)."""
        decision = self.gate.check(user_id)
        if not decision.allowed:
            return self._render(RefusedResult(decision.message or "Not allowed."), False)
        if not (value.isascii() and value.isdigit()):
            return None
        now = self.clock()
        try:
            with session_scope(self.engine) as session:
                if not decision.named and conversation.is_customer(session, user_id):
                    return self._render(RefusedResult(FOR_THE_TEAM), False)
                acted = act(
                    session,
                    int(value),
                    verb,
                    by=user_id,
                    now=now,
                    snooze=self.settings.alerts.snooze,
                )
        except Exception as exc:
            if not is_database_down(exc):
                raise
            # nothing stored: the person is told, and the button still works in a minute
            return database_down(self._database_down(exc, f"an alert button of {user_id}"))
        if acted is not None and acted.channel_id and acted.message_ts:
            redraw(self.engine, client, self.settings, acted.channel_id, acted.message_ts)
        return None

    def with_files(
        self, client: WebClient, message: Message, *, user_id: str, channel_id: str | None
    ) -> Message:
        """Upload the file an answer comes with; when Slack refuses, the answer becomes what
        went wrong and what to do, so the person never waits for a file that is not coming."""
        if message.upload is None:
            return message
        try:
            deliver(client, message.upload, user_id=user_id, channel_id=channel_id)
        except UploadFailed as exc:
            return Message(str(exc), [section(f":warning: {exc}")])
        return message

    def send_dm_reply(
        self,
        client: WebClient,
        message: Message,
        *,
        user_id: str,
        channel_id: str,
        event_id: str | None,
    ) -> None:
        """Send the answer to a DM in it: its file first (an export or a chart asked for in
        the DM lands there), then the answer, then the survey questions it redraws. The
        answer is posted once (`post_once`: a customer's "thank you" after a 5xx that
        posted it anyway is not said twice). When it cannot be sent, the event is released
        so that Slack's retry may succeed."""
        answer = self.with_files(client, message, user_id=user_id, channel_id=channel_id)
        try:
            post_once(
                client,
                answer.as_kwargs(),
                channel=channel_id,
                event=REPLY_EVENT,
                payload={"reply_to": event_id or uuid.uuid4().hex},
                what="a DM answer",
            )
        except Exception:
            self.not_delivered(event_id)
            raise
        message.sent()
        for edit in message.edits:  # a survey question redrawn with a typed score
            try:
                client.chat_update(**edit)
            except Exception as exc:  # the answer is stored and said; the old look stays
                log.warning("a survey question could not be redrawn (%s)", type(exc).__name__)

    def not_delivered(self, event_id: str | None) -> None:
        """Forget that an event was taken when its answer could not be sent, so that Slack's
        retry may succeed."""
        if event_id is not None:
            release_event(self.engine, event_id)
