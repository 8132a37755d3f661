"""The survey sender: takes what is due from the queue, asks the customer in their DM, marks
it sent; closes surveys that expired, sends the one reminder, posts answers for the team.

It runs inside the bot (see `clmbot.slack.scheduler`), every few seconds and whenever a
survey is queued or answered. Every send follows the order the queue expects: claimed,
sent, marked sent. A survey claimed by a sender that died is looked for in the customer's
DM (its message carries the survey's id in Slack's message metadata) before it is sent
again, so a customer never gets the same survey twice.

It paces itself (`surveys.sends_per_second`) and rides out rate limits: slack_sdk retries a
429 after its Retry-After; one that persists puts the survey back for later.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from sqlalchemy import Engine

from clmbot.config import Settings
from clmbot.slack.access import Expiring
from clmbot.slack.posted_once import first_posted
from clmbot.slack.posted_once import why as _why
from clmbot.slack.retries import RATE_LIMIT_RETRIES, once_client
from clmbot.slack.views import survey_dm
from clmbot.store.models import CANCELLED, FAILED
from clmbot.surveys import outbox
from clmbot.surveys.texts import language_of

log = logging.getLogger("clmbot.surveys")

# Slack's answers that mean this survey can never reach this person.
NEVER = frozenset(
    (
        "user_not_found",
        "user_disabled",
        "cannot_dm_bot",
        "account_inactive",
        "channel_not_found",
        "is_archived",
        "not_allowed_token_type",
        "user_not_visible",
        "messages_tab_disabled",
        "restricted_action",
        "invalid_users",
    )
)
# How long a sender run may go on claiming before it lets the other jobs have a turn.
RUN_BUDGET_SECONDS = 20.0


@dataclass
class SendReport:
    sent: int = 0
    found: int = 0  # sent before by a sender that stopped; found in the DM, not sent again
    deferred: int = 0  # outside the customer's hours, or Slack said wait
    failed: int = 0
    cancelled: int = 0
    uncertain: int = 0  # may have reached Slack: looked for after the lease
    expired: int = 0
    reminded: int = 0
    posted: int = 0
    errors: list[str] = field(default_factory=list)


# A post must land well within the lease its renewal began (see `outbox.renew`): a sender
# still waiting on Slack when the lease runs out could post after another copy of the bot
# had looked in the DM, found nothing, and posted the same survey. A request waits at most
# POST_TIMEOUT_SECONDS for its answer, and the 429s of one post are waited out only within
# RATE_LIMIT_WAIT_SECONDS of the first: a minute in all at most (the first try, the waits,
# the last try), half a lease.
POST_TIMEOUT_SECONDS = 20
RATE_LIMIT_WAIT_SECONDS = 20.0


class ShortRateLimitRetries(RateLimitErrorRetryHandler):
    """A 429 posted nothing: wait its Retry-After and try again, while the waits stay short.
    A longer limit is raised, and `SurveySender._refused` puts the survey back in the queue
    until Slack said to come back."""

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is None or response.status_code != 429:
            return False
        # From the first answer on: the waits, and the tries that answered 429 slowly.
        if state.custom_values is None:
            state.custom_values = {}
        since = state.custom_values.setdefault("first_429_at", time.monotonic())
        wait = _retry_after(response) + 1  # slack_sdk adds up to a second of jitter
        return time.monotonic() - since + wait <= RATE_LIMIT_WAIT_SECONDS


def _retry_after(response: HttpResponse) -> int:
    for name, values in response.headers.items():
        if name.lower() == "retry-after":
            value = values[0] if isinstance(values, list) and values else values
            try:
                return max(int(str(value)), 0)
            except ValueError:
                return 1
    return 1


def once(client: WebClient) -> WebClient:
    """The same client, for posting: it waits out a short 429 (Slack did not take the
    message) but never retries a 5xx or a lost connection on its own, after which the
    message may be in the DM already. The sender looks there before it posts again."""
    return once_client(
        client,
        max_timeout=POST_TIMEOUT_SECONDS,
        rate_limit=ShortRateLimitRetries(max_retry_count=RATE_LIMIT_RETRIES),
    )


class SurveySender:
    def __init__(
        self,
        engine: Engine,
        client: WebClient,
        settings: Settings,
        *,
        worker: str | None = None,
        lease: timedelta = outbox.LEASE,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._engine = engine
        self._client = client
        self._post = once(client)
        self._settings = settings
        self._config = settings.surveys
        self.worker = worker or outbox.worker_name()
        self._lease = lease
        self._sleep = sleep
        self._gap = 1.0 / self._config.sends_per_second
        self._last_send = 0.0
        self._people: Expiring[dict[str, Any] | None] = Expiring(timedelta(hours=6))
        self._lock = threading.Lock()  # one run at a time in this process

    def run_once(self, now: datetime, *, budget: float = RUN_BUDGET_SECONDS) -> SendReport:
        """Everything due at `now`. A run that takes a while moves its own clock on with
        the seconds it took, so that its claims' leases are measured in real time."""
        report = SendReport()
        started = time.monotonic()

        def at() -> datetime:
            return now + timedelta(seconds=time.monotonic() - started)

        with self._lock:
            self._expire(now, report)
            while time.monotonic() - started < budget:
                claims = outbox.claim(self._engine, now=at(), worker=self.worker, lease=self._lease)
                if not claims:
                    break
                for claim in claims:
                    self._send(claim, now, report, at)
            self._remind(now, report)
            self._post_answers(now, report)
        return report

    # --- sending -------------------------------------------------------------------------

    def _send(
        self,
        claim: outbox.Claim,
        now: datetime,
        report: SendReport,
        at: Callable[[], datetime] | None = None,
    ) -> None:
        """`now`: the run's time, for what is recorded; `at()`: the time as it runs on, for
        the lease."""
        give_up = self._why_not(claim)
        if give_up:
            outbox.give_up(
                self._engine,
                claim.id,
                worker=self.worker,
                status=CANCELLED,
                why=give_up,
                now=now,
            )
            report.cancelled += 1
            return
        assert claim.slack_user_id is not None
        try:
            person = self._person(claim.slack_user_id, now)
            zone = self._zone(claim.timezone, person)
            if not self._config.window.is_open(now, zone):
                opens = self._config.window.next_opening(now, zone)
                outbox.put_back(self._engine, claim.id, worker=self.worker, not_before=opens)
                report.deferred += 1
                return
            language = language_of(claim.locale or (person or {}).get("locale"))

            def mark(channel_id: str, message_ts: str) -> None:
                outbox.mark_sent(
                    self._engine,
                    claim.id,
                    worker=self.worker,
                    now=now,
                    channel_id=channel_id,
                    message_ts=message_ts,
                    language=language,
                )

            if claim.maybe_sent:
                opened = self._client.conversations_open(users=claim.slack_user_id)
                channel = opened["channel"]["id"]
                ts = self._find(channel, claim.id)
                if ts is not None:
                    mark(channel, ts)
                    report.found += 1
                    return
            message = survey_dm.question(self._config, claim.id, claim.kind, language)
            self._pace()
            renewed_at = at() if at is not None else now
            if not outbox.renew(self._engine, claim.id, worker=self.worker, now=renewed_at):
                report.cancelled += 1  # taken over, or cancelled by a `stop` meanwhile
                return
            # Posted to the user: Slack delivers it in their DM with the bot, and answers
            # with that DM's channel (conversations.open is rate-limited far lower).
            sent = self._post.chat_postMessage(
                channel=claim.slack_user_id,
                **message.as_kwargs(),
                metadata={
                    "event_type": survey_dm.SURVEY_EVENT,
                    "event_payload": {"survey_id": claim.id},
                },
                unfurl_links=False,
            )
            mark(sent["channel"], sent["ts"])
            report.sent += 1
        except SlackApiError as exc:
            self._refused(claim, exc, at() if at is not None else now, report)
        except OSError as exc:  # a timeout, a lost connection: it may or may not have gone
            self._uncertain(claim, type(exc).__name__, now, report)

    def _why_not(self, claim: outbox.Claim) -> str | None:
        """Things that changed since the survey was queued."""
        if claim.slack_user_id is None:
            return "no Slack user"
        if claim.opted_out:
            return "opted out"
        if claim.stage in self._settings.lifecycle.terminal:
            return f"moved to {claim.stage}"
        return None

    def _refused(
        self, claim: outbox.Claim, exc: SlackApiError, now: datetime, report: SendReport
    ) -> None:
        """`now`: the time as the run goes on (a limit counts from when Slack said it)."""
        error = str(exc.response.get("error") or "")
        status = exc.response.status_code
        if status == 429 or error == "ratelimited":
            wait = int(exc.response.headers.get("Retry-After", "30") or 30)
            outbox.put_back(
                self._engine,
                claim.id,
                worker=self.worker,
                not_before=now + timedelta(seconds=max(wait, 1)),
                why="rate limited",
            )
            report.deferred += 1
            return
        if error in NEVER:
            outbox.give_up(
                self._engine, claim.id, worker=self.worker, status=FAILED, why=error, now=now
            )
            report.failed += 1
            log.warning("survey %s: Slack refused it for good (%s)", claim.id, error)
            return
        # Slack's own trouble (5xx): the message may have gone; looked for after the lease.
        self._uncertain(claim, error or f"HTTP {status}", now, report)

    def _uncertain(self, claim: outbox.Claim, why: str, now: datetime, report: SendReport) -> None:
        report.uncertain += 1
        report.errors.append(why)
        if claim.attempts >= outbox.MOST_ATTEMPTS:
            outbox.give_up(
                self._engine,
                claim.id,
                worker=self.worker,
                status=FAILED,
                why=f"{why} ({claim.attempts} tries)",
                now=now,
            )
            report.failed += 1
        log.warning("survey %s: not sure it reached Slack (%s); checked again later", claim.id, why)

    def _find(
        self,
        channel: str,
        survey_id: int,
        event: str = survey_dm.SURVEY_EVENT,
        *,
        since: datetime | None = None,
    ) -> str | None:
        """The ts of this survey's message of kind `event` in `channel`, if a sender before
        us sent it (the latest 50 messages, or those after `since` in a busy channel)."""
        window: dict[str, Any] = {"limit": 50}
        if since is not None:
            window = {"limit": 200, "oldest": f"{since.timestamp():.6f}"}
        answer = self._client.conversations_history(
            channel=channel, include_all_metadata=True, **window
        )
        return first_posted(answer.get("messages") or [], event, {"survey_id": survey_id})

    def _pace(self) -> None:
        wait = self._last_send + self._gap - time.monotonic()
        if wait > 0:
            self._sleep(wait)
        self._last_send = time.monotonic()

    def _person(self, user_id: str, now: datetime) -> dict[str, Any] | None:
        """The customer's zone and language as Slack knows them (kept for hours: they rarely
        change), or None when Slack does not show them to us."""

        def fetch() -> dict[str, Any] | None:
            try:
                user = self._client.users_info(user=user_id, include_locale=True)["user"]
            except SlackApiError as exc:
                if exc.response.status_code == 429:
                    raise
                return None
            return {"tz": user.get("tz"), "locale": user.get("locale")}

        return self._people.get(user_id, now, fetch)

    def _zone(self, imported: str | None, person: dict[str, Any] | None) -> Any:
        for name in (imported, (person or {}).get("tz")):
            if name:
                try:
                    return ZoneInfo(name)
                except (ZoneInfoNotFoundError, ValueError):
                    continue
        return self._settings.timezone

    # --- after sending ----------------------------------------------------------------------

    def _expire(self, now: datetime, report: SendReport) -> None:
        for gone in outbox.expire(self._engine, now=now, config=self._config):
            report.expired += 1
            if gone.channel_id and gone.message_ts:
                message = survey_dm.closed(self._config, gone.kind, gone.language)
                try:
                    self._client.chat_update(
                        channel=gone.channel_id, ts=gone.message_ts, **message.as_kwargs()
                    )
                except (SlackApiError, OSError) as exc:
                    # The buttons stay; a click on them is answered "this survey has closed".
                    log.info("survey %s: could not mark its question closed (%s)", gone.id, exc)

    def _remind(self, now: datetime, report: SendReport) -> None:
        """The one reminder of each survey due one. It is taken before it is posted and
        stays in doubt until Slack says where it landed; one in doubt is taken again after
        the lease and looked for in the DM before it is posted again: one reminder, neither
        none (a 5xx that posted nothing) nor two (a 5xx, or a kill, after Slack posted)."""
        for due in outbox.reminders_due(self._engine, now=now, config=self._config):
            if due.slack_user_id is None:
                continue
            try:
                zone = self._zone(due.timezone, self._person(due.slack_user_id, now))
            except (SlackApiError, OSError):
                continue
            if not self._config.window.is_open(now, zone):
                later = self._config.window.next_opening(now, zone)
                outbox.remind_later(self._engine, due.id, not_before=later)
                continue
            if not outbox.take_reminder(self._engine, due, now=now):
                continue
            try:
                ts = None
                if due.tries > 0:
                    ts = self._find(due.channel_id, due.id, survey_dm.REMINDER_EVENT)
                if ts is None:
                    message = survey_dm.question(
                        self._config, due.id, due.kind, due.language, reminder=True
                    )
                    self._pace()
                    ts = self._post.chat_postMessage(
                        channel=due.channel_id,
                        **message.as_kwargs(),
                        metadata={
                            "event_type": survey_dm.REMINDER_EVENT,
                            "event_payload": {"survey_id": due.id},
                        },
                    )["ts"]
                    report.reminded += 1
                else:
                    report.found += 1
                outbox.reminder_landed(self._engine, due.id, ts=ts)
            except SlackApiError as exc:
                error = str(exc.response.get("error") or "")
                if exc.response.status_code == 429 or error == "ratelimited":
                    wait = int(exc.response.headers.get("Retry-After", "30") or 30)
                    later = now + timedelta(seconds=max(wait, 1))
                    outbox.reminder_unsent(self._engine, due.id, not_before=later)
                elif error in NEVER or due.tries + 1 >= outbox.MOST_ATTEMPTS:
                    outbox.reminder_landed(self._engine, due.id, ts=None)
                    log.warning("survey %s: the reminder was given up (%s)", due.id, error)
                else:  # Slack's own trouble: it may be there; looked for after the lease
                    log.warning("survey %s: the reminder may not have gone (%s)", due.id, error)
            except OSError as exc:
                if due.tries + 1 >= outbox.MOST_ATTEMPTS:
                    outbox.reminder_landed(self._engine, due.id, ts=None)
                log.warning(
                    "survey %s: the reminder may not have gone (%s)", due.id, type(exc).__name__
                )

    def _post_answers(self, now: datetime, report: SendReport) -> None:
        """Each new answer in CLMBOT_FEEDBACK_CHANNEL, or its post edited when it changed.
        A post is taken before it is made and in doubt until Slack says where it landed;
        one in doubt is taken again after the lease and looked for in the channel (by its
        metadata) before it is posted again, so the team sees each answer once."""
        channel = self._settings.feedback_channel
        if channel is None:
            return
        for post in outbox.take_team_posts(self._engine, now=now):
            if post.tries > outbox.MOST_ATTEMPTS:
                log.error(
                    "survey %s: the answer was not posted for the team after %d tries; given up",
                    post.survey_id,
                    post.tries - 1,
                )
                outbox.team_posted(self._engine, post.survey_id, ts=None)
                continue
            message = survey_dm.answer_post(post, self._settings.timezone)
            try:
                ts = post.post_ts
                if ts is not None:
                    self._client.chat_update(channel=channel, ts=ts, **message.as_kwargs())
                else:
                    if post.tries > 1:
                        since = post.answered_at - timedelta(days=1)
                        ts = self._find(
                            channel, post.survey_id, survey_dm.ANSWER_EVENT, since=since
                        )
                    if ts is None:
                        ts = self._post.chat_postMessage(
                            channel=channel,
                            **message.as_kwargs(),
                            metadata={
                                "event_type": survey_dm.ANSWER_EVENT,
                                "event_payload": {"survey_id": post.survey_id},
                            },
                            unfurl_links=False,
                        )["ts"]
                report.posted += 1
            except (SlackApiError, OSError) as exc:
                # It may be there (a 5xx, a lost line): in doubt, looked for after the lease.
                log.warning(
                    "survey %s: the answer may not be posted for the team (%s); tried again "
                    "after %s",
                    post.survey_id,
                    _why(exc),
                    outbox.LEASE,
                )
                continue
            outbox.team_posted(self._engine, post.survey_id, ts=ts)
