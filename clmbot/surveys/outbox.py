"""The survey queue as the sender sees it: claim, mark sent, put back, give up; reminders
and expiry; the answers the team has not seen yet.

Each step is its own short transaction, in the order the sender takes them, so that a
sender killed between two steps leaves a row that says exactly what is left: a `sending`
row older than the lease was claimed by a sender that stopped, and may or may not have
reached Slack (the sender looks in the customer's DM before sending again).

Claims take rows with `FOR UPDATE SKIP LOCKED` on PostgreSQL, so several copies of the bot
share the queue without waiting on each other; the UPDATE re-checks the row's state, which
also makes the claim exclusive on SQLite, where writes take turns.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, and_, exists, or_, select, update

from clmbot.store.models import (
    ANSWERED,
    CANCELLED,
    EXPIRED,
    FAILED,
    QUEUED,
    SENDING,
    SENT,
    Customer,
    Survey,
    SurveyOptOut,
)
from clmbot.surveys.settings import SurveyConfig

# A claim older than this was left by a sender that stopped (killed, or its host lost).
LEASE = timedelta(minutes=2)
# A send that failed in a way that may have reached Slack is tried this many times.
MOST_ATTEMPTS = 5

_S = Survey.__table__
_C = Customer.__table__
_O = SurveyOptOut.__table__


def worker_name() -> str:
    """Who holds a claim: host, process and a random part (two senders in one process)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class Claim:
    """A survey this sender now holds, with what sending it needs."""

    id: int
    kind: str
    customer_id: int
    slack_user_id: str | None
    locale: str
    timezone: str | None
    stage: str
    opted_out: bool
    # Claimed before by a sender that stopped: it may have been sent; look first.
    maybe_sent: bool
    attempts: int


def claim(
    engine: Engine, *, now: datetime, worker: str, limit: int = 50, lease: timedelta = LEASE
) -> list[Claim]:
    stale = now - lease
    due = or_(
        and_(_S.c.status == QUEUED, _S.c.not_before <= now),
        and_(_S.c.status == SENDING, _S.c.claimed_at < stale),
    )
    with engine.begin() as conn:
        candidates = select(_S.c.id, _S.c.status).where(due).order_by(_S.c.not_before).limit(limit)
        if conn.dialect.name == "postgresql":
            candidates = candidates.with_for_update(skip_locked=True)
        found = dict(conn.execute(candidates).all())
        if not found:
            return []
        conn.execute(
            update(_S)
            .where(_S.c.id.in_(list(found)), due)
            .values(
                status=SENDING,
                claimed_at=now,
                claimed_by=worker,
                attempts=_S.c.attempts + 1,
            )
        )
        rows = conn.execute(
            select(
                _S.c.id,
                _S.c.kind,
                _S.c.customer_id,
                _S.c.attempts,
                _C.c.slack_user_id,
                _C.c.locale,
                _C.c.timezone,
                _C.c.stage,
                exists().where(_O.c.customer_id == _C.c.id).label("opted_out"),
            )
            .join(_C, _C.c.id == _S.c.customer_id)
            .where(
                _S.c.id.in_(list(found)),
                _S.c.claimed_by == worker,
                _S.c.claimed_at == now,
                _S.c.status == SENDING,
            )
            .order_by(_S.c.not_before)
        ).all()
    return [
        Claim(
            r.id,
            r.kind,
            r.customer_id,
            r.slack_user_id,
            r.locale or "",
            r.timezone,
            r.stage,
            bool(r.opted_out),
            found.get(r.id) == SENDING,
            r.attempts,
        )
        for r in rows
    ]


def _held(survey_id: int, worker: str) -> object:
    return and_(_S.c.id == survey_id, _S.c.status == SENDING, _S.c.claimed_by == worker)


def renew(engine: Engine, survey_id: int, *, worker: str, now: datetime) -> bool:
    """Right before sending: still ours (not taken over by another sender after a stall
    past the lease, not cancelled by a `stop`), and the lease starts again. False: do not
    send."""
    with engine.begin() as conn:
        result = conn.execute(
            update(_S).where(_held(survey_id, worker)).values(claimed_at=now),
            execution_options={"preserve_rowcount": True},
        )
    return result.rowcount == 1


def mark_sent(
    engine: Engine,
    survey_id: int,
    *,
    worker: str,
    now: datetime,
    channel_id: str,
    message_ts: str,
    language: str,
) -> bool:
    """False when the claim was lost meanwhile (this sender stalled past the lease and
    another took over): that one will find the message and mark it."""
    with engine.begin() as conn:
        result = conn.execute(
            update(_S)
            .where(_held(survey_id, worker))
            .values(
                status=SENT,
                sent_at=now,
                channel_id=channel_id,
                message_ts=message_ts,
                language=language,
                error=None,
            ),
            execution_options={"preserve_rowcount": True},
        )
    return result.rowcount == 1


def put_back(
    engine: Engine, survey_id: int, *, worker: str, not_before: datetime, why: str | None = None
) -> None:
    """Not sent, for sure (outside the window, or Slack said wait): queued again."""
    with engine.begin() as conn:
        conn.execute(
            update(_S)
            .where(_held(survey_id, worker))
            .values(
                status=QUEUED,
                not_before=not_before,
                claimed_at=None,
                claimed_by=None,
                error=why,
                attempts=_S.c.attempts - (0 if why else 1),
            )
        )


def give_up(
    engine: Engine, survey_id: int, *, worker: str, status: str, why: str, now: datetime
) -> None:
    """`FAILED` (Slack refused it for good) or `CANCELLED` (no longer to be asked)."""
    assert status in (FAILED, CANCELLED)
    with engine.begin() as conn:
        conn.execute(
            update(_S)
            .where(_held(survey_id, worker))
            .values(status=status, error=why[:200], closed_at=now)
        )


@dataclass(frozen=True)
class Closed:
    """A survey that just expired, with where its question is, to say so there."""

    id: int
    kind: str
    language: str
    channel_id: str | None
    message_ts: str | None


def expire(engine: Engine, *, now: datetime, config: SurveyConfig) -> list[Closed]:
    """Sent surveys without an answer after `expire_after` close."""
    cutoff = now - config.expire_after
    with engine.begin() as conn:
        ids = list(
            conn.execute(
                select(_S.c.id).where(_S.c.status == SENT, _S.c.sent_at <= cutoff).limit(500)
            ).scalars()
        )
        if not ids:
            return []
        conn.execute(
            update(_S)
            .where(_S.c.id.in_(ids), _S.c.status == SENT)
            .values(status=EXPIRED, closed_at=now)
        )
        rows = conn.execute(
            select(_S.c.id, _S.c.kind, _S.c.language, _S.c.channel_id, _S.c.message_ts).where(
                _S.c.id.in_(ids), _S.c.status == EXPIRED, _S.c.closed_at == now
            )
        ).all()
    return [Closed(r.id, r.kind, r.language or "en", r.channel_id, r.message_ts) for r in rows]


@dataclass(frozen=True)
class Reminder:
    id: int
    kind: str
    language: str
    channel_id: str
    slack_user_id: str | None
    timezone: str | None
    # 0: never tried. More: tried that many times without Slack saying where it landed
    # (taken at `taken_at`): it may be in the DM already, and is looked for first.
    tries: int = 0
    taken_at: datetime | None = None


def reminders_due(engine: Engine, *, now: datetime, config: SurveyConfig) -> list[Reminder]:
    """Sent, unanswered, sent `reminder_after` ago, and either never reminded or reminded
    in doubt over a lease ago: candidates (the sender checks each customer's window, then
    takes each with `take_reminder`, or puts it off with `remind_later` until the window
    opens). For a sent survey, `not_before` is when its reminder may go."""
    cutoff = now - config.reminder_after
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                _S.c.id,
                _S.c.kind,
                _S.c.language,
                _S.c.channel_id,
                _C.c.slack_user_id,
                _C.c.timezone,
                _S.c.reminder_tries,
                _S.c.reminded_at,
            )
            .join(_C, _C.c.id == _S.c.customer_id)
            .where(
                _S.c.status == SENT,
                _S.c.sent_at <= cutoff,
                _S.c.not_before <= now,
                _S.c.channel_id.is_not(None),
                or_(
                    _S.c.reminded_at.is_(None),
                    and_(
                        _S.c.reminder_tries > 0,
                        _S.c.reminder_ts.is_(None),
                        _S.c.reminded_at <= now - LEASE,
                    ),
                ),
            )
            .order_by(_S.c.not_before)
            .limit(200)
        ).all()
    return [
        Reminder(
            r.id,
            r.kind,
            r.language or "en",
            r.channel_id,
            r.slack_user_id,
            r.timezone,
            r.reminder_tries,  # 0 while never taken: every writer resets both together
            r.reminded_at,
        )
        for r in rows
    ]


def remind_later(engine: Engine, survey_id: int, *, not_before: datetime) -> None:
    with engine.begin() as conn:
        conn.execute(update(_S).where(_S.c.id == survey_id).values(not_before=not_before))


def take_reminder(engine: Engine, due: Reminder, *, now: datetime) -> bool:
    """Taken before it is sent, by one sender only (the row must be as `reminders_due` saw
    it). It stays in doubt until `reminder_landed`: a sender that dies, or a Slack that
    answers 5xx, leaves it to be taken again after the lease and looked for in the DM first,
    so the customer gets one reminder, neither none nor two."""
    seen = (
        _S.c.reminded_at.is_(None)
        if due.taken_at is None
        else and_(_S.c.reminded_at == due.taken_at, _S.c.reminder_ts.is_(None))
    )
    with engine.begin() as conn:
        result = conn.execute(
            update(_S)
            .where(_S.c.id == due.id, _S.c.status == SENT, seen)
            .values(reminded_at=now, reminder_tries=due.tries + 1),
            execution_options={"preserve_rowcount": True},
        )
    return result.rowcount == 1


def reminder_landed(engine: Engine, survey_id: int, *, ts: str | None) -> None:
    """The reminder is in the DM at `ts` (None: given up, it never will be): done."""
    with engine.begin() as conn:
        conn.execute(
            update(_S).where(_S.c.id == survey_id).values(reminder_ts=ts, reminder_tries=0)
        )


def reminder_unsent(engine: Engine, survey_id: int, *, not_before: datetime) -> None:
    """Slack said it did not take the reminder (a rate limit): due again, as never tried."""
    with engine.begin() as conn:
        conn.execute(
            update(_S)
            .where(_S.c.id == survey_id, _S.c.reminder_ts.is_(None))
            .values(reminded_at=None, reminder_tries=0, not_before=not_before)
        )


@dataclass(frozen=True)
class TeamPost:
    """An answer (or its new comment) for CLMBOT_FEEDBACK_CHANNEL."""

    survey_id: int
    run_id: int
    kind: str
    score: int
    comment: str | None
    answered_at: datetime
    customer_name: str
    external_id: str
    owner_slack_id: str | None
    post_ts: str | None  # the post to edit, when there is one already
    # Takes so far, this one included: more than one, and the post may be in the channel
    # already though Slack never said so (it is looked for first).
    tries: int = 1


def take_team_posts(engine: Engine, *, now: datetime, limit: int = 50) -> list[TeamPost]:
    """Answers due for the team (new, or changed since their post), and posts taken over a
    lease ago that Slack never said it made (a 5xx, a sender killed): each taken by one
    sender, and in doubt until `team_posted`."""
    stale = now - LEASE
    free = or_(_S.c.team_post_taken_at.is_(None), _S.c.team_post_taken_at <= stale)
    in_doubt = and_(_S.c.team_post_taken_at.is_not(None), _S.c.team_post_taken_at <= stale)
    wanted = or_(and_(_S.c.team_post_due.is_(True), free), in_doubt)
    with engine.begin() as conn:
        ids = list(conn.execute(select(_S.c.id).where(wanted).limit(limit)).scalars())
        if not ids:
            return []
        taken = conn.execute(
            update(_S)
            .where(_S.c.id.in_(ids), wanted)
            .values(
                team_post_due=False,
                team_post_taken_at=now,
                team_post_tries=_S.c.team_post_tries + 1,
            )
            .returning(_S.c.id)
        ).scalars()
        taken_ids = list(taken)
        if not taken_ids:
            return []
        rows = conn.execute(
            select(
                _S.c.id,
                _S.c.run_id,
                _S.c.kind,
                _S.c.score,
                _S.c.comment,
                _S.c.answered_at,
                _S.c.team_post_ts,
                _S.c.team_post_tries,
                _C.c.name,
                _C.c.external_id,
                _C.c.owner_slack_id,
            )
            .join(_C, _C.c.id == _S.c.customer_id)
            .where(_S.c.id.in_(taken_ids), _S.c.status == ANSWERED)
        ).all()
        # No longer an answer (a forgotten customer's): nothing to post, nothing in doubt.
        gone = set(taken_ids) - {r.id for r in rows}
        if gone:
            conn.execute(
                update(_S)
                .where(_S.c.id.in_(gone))
                .values(team_post_taken_at=None, team_post_tries=0)
            )
    return [
        TeamPost(
            r.id,
            r.run_id,
            r.kind,
            r.score,
            r.comment,
            r.answered_at,
            r.name,
            r.external_id,
            r.owner_slack_id,
            r.team_post_ts,
            r.team_post_tries,
        )
        for r in rows
    ]


def team_posted(engine: Engine, survey_id: int, *, ts: str | None) -> None:
    """The post is in the channel at `ts` (None: given up): no longer in doubt. A change to
    the answer meanwhile has made it due again, and it is posted next."""
    values: dict[str, object] = {"team_post_taken_at": None, "team_post_tries": 0}
    if ts is not None:
        values["team_post_ts"] = ts
    with engine.begin() as conn:
        conn.execute(update(_S).where(_S.c.id == survey_id).values(**values))
