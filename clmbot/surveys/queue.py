"""Queueing surveys: who of the customers a segment selects may be asked now, and why not
the others; then one row per survey, written in one statement.

Why a customer is skipped is worked out in SQL, once per customer (a CASE of index probes),
so that queueing 100,000 customers is two statements, not 100,000 look-ups. A customer's
`not_before` (the first moment their window is open) is worked out once per time zone among
them and written with the rows; customers whose zone is not known yet are due now, and the
sender asks Slack for their zone before it sends.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import ColumnElement, case, delete, exists, false, func, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from clmbot.store.models import (
    CANCELLED,
    FAILED,
    PENDING,
    QUEUED,
    Customer,
    Feedback,
    Survey,
    SurveyOptOut,
    SurveyRun,
)
from clmbot.store.types import UTCDateTime
from clmbot.surveys.settings import SurveyConfig

# Why a customer is not asked, in the order they are checked, with the words people read.
SKIP_REASONS: dict[str, str] = {
    "no_slack_user": "no Slack user",
    "churned": "churned",
    "opted_out": "opted out",
    "pending": "a survey already pending",
    "cooldown": "answered or surveyed within the cooldown",
}

_C = Customer.__table__.c
_S = Survey.__table__
_F = Feedback.__table__
_O = SurveyOptOut.__table__


@dataclass(frozen=True)
class QueuePlan:
    """What queueing would do: how many would be asked, and how many not, by reason."""

    eligible: int
    skipped: tuple[tuple[str, int], ...]  # (reason key, count), in SKIP_REASONS order

    @property
    def total(self) -> int:
        return self.eligible + sum(n for _, n in self.skipped)


@dataclass(frozen=True)
class Queued:
    run_id: int
    queued: int
    skipped: tuple[tuple[str, int], ...]
    first_send: datetime | None  # the earliest `not_before` among them
    later: int  # how many wait for their window to open


def _skip_reason(now: datetime, config: SurveyConfig, terminal: Sequence[str]) -> ColumnElement:
    """Why a customer is not asked, or NULL. A person is asked about one customer at a time:
    the pending survey, the cooldown and an opt-out count for every customer who has the
    same Slack user (a contact who speaks for two accounts)."""
    since = now - config.cooldown
    ended = _C.stage.in_(list(terminal)) if terminal else false()
    same = Customer.__table__.alias("same_person")
    person = same.c.slack_user_id == _C.slack_user_id
    return case(
        (_C.slack_user_id.is_(None), "no_slack_user"),
        (_C.forgotten_at.is_not(None), "no_slack_user"),
        (ended, "churned"),
        (exists().where(_O.c.customer_id == same.c.id, person), "opted_out"),
        (
            exists().where(_S.c.customer_id == same.c.id, person, _S.c.status.in_(PENDING)),
            "pending",
        ),
        (
            exists().where(
                _S.c.customer_id == same.c.id,
                person,
                _S.c.queued_at >= since,
                _S.c.status.not_in((CANCELLED, FAILED)),
            ),
            "cooldown",
        ),
        (
            exists().where(_F.c.customer_id == same.c.id, person, _F.c.responded_at >= since),
            "cooldown",
        ),
        else_=None,
    )


def plan(
    session: Session,
    where: ColumnElement[bool],
    *,
    now: datetime,
    config: SurveyConfig,
    terminal: Sequence[str],
) -> QueuePlan:
    reason = _skip_reason(now, config, terminal).label("reason")
    rows = select(reason).where(where).subquery()
    counts = dict(
        session.execute(select(rows.c.reason, func.count()).group_by(rows.c.reason)).all()
    )
    eligible = counts.pop(None, 0)
    skipped = tuple((key, counts[key]) for key in SKIP_REASONS if counts.get(key))
    return QueuePlan(eligible, skipped)


def queue(
    session: Session,
    where: ColumnElement[bool],
    *,
    kind: str,
    target: str,
    by: str,
    now: datetime,
    config: SurveyConfig,
    terminal: Sequence[str],
    skipped: tuple[tuple[str, int], ...],
) -> Queued:
    """One run and its surveys, in the caller's transaction. A customer queued meanwhile by
    someone else (another copy of the bot) is left out by the unique index, not doubled."""
    reason = _skip_reason(now, config, terminal)
    run = SurveyRun(kind=kind, target=target, created_by=by, created_at=now, queued=0, skipped={})
    session.add(run)
    session.flush()
    zones = session.execute(
        select(_C.timezone).where(where, reason.is_(None), _C.timezone.is_not(None)).distinct()
    ).scalars()
    openings = {
        name: config.window.next_opening(now, zone)
        for name in zones
        if (zone := _zone(name)) is not None
    }
    at_now = literal(now, UTCDateTime())
    not_before = (
        case(
            *((_C.timezone == name, literal(at, UTCDateTime())) for name, at in openings.items()),
            else_=at_now,
        )
        if openings
        else at_now
    )
    rows = select(
        literal(run.id),
        _C.id,
        literal(kind),
        literal(QUEUED),
        at_now,
        not_before,
        literal(0),
        false(),
    ).where(where, reason.is_(None))
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    insert = (
        dialect.insert(_S)
        .from_select(
            [
                "run_id",
                "customer_id",
                "kind",
                "status",
                "queued_at",
                "not_before",
                "attempts",
                "team_post_due",
            ],
            rows,
        )
        .on_conflict_do_nothing()
    )
    queued = session.execute(insert, execution_options={"preserve_rowcount": True}).rowcount
    # Two customers of this run with one Slack user: that person is asked once, about the
    # first of them; the others count as having a survey pending.
    first_of_each = (
        select(func.min(_S.c.id))
        .join(Customer.__table__, _C.id == _S.c.customer_id)
        .where(_S.c.run_id == run.id)
        .group_by(_C.slack_user_id)
    )
    doubled = session.execute(
        delete(_S).where(_S.c.run_id == run.id, _S.c.id.not_in(first_of_each)),
        execution_options={"preserve_rowcount": True},
    ).rowcount
    if doubled:
        queued -= doubled
        counts = dict(skipped)
        counts["pending"] = counts.get("pending", 0) + doubled
        skipped = tuple((key, counts[key]) for key in SKIP_REASONS if counts.get(key))
    run.queued = queued
    run.skipped = dict(skipped)
    first, later = session.execute(
        select(
            func.min(_S.c.not_before), func.sum(case((_S.c.not_before > now, 1), else_=0))
        ).where(_S.c.run_id == run.id)
    ).one()
    assert run.id is not None
    return Queued(run.id, queued, skipped, first, int(later or 0))


def _zone(name: str) -> tzinfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
