"""Who a day's digest raises, and which alerts went away by themselves.

Raised: at or above the threshold in this pass, and no live alert in this route: none
open, taken, contacted or snoozed (until the snooze ends) that a message showed, unless
the risk rose `rise` points or more over that alert's. An alert resolves when the customer
moves forward, answers well, or falls below the threshold: crossing it again raises them
again. An alert whose digest never reached Slack is not live: they are raised next time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, exists, false, or_, select, update
from sqlalchemy.orm import aliased
from sqlmodel import Session

from clmbot.store.models import (
    ASSIGNED,
    CONTACTED,
    EXACT,
    OPEN,
    RESOLVED,
    SNOOZED,
    Alert,
    Customer,
    Digest,
    Feedback,
    RiskRun,
    RiskScore,
    StageChange,
)


@dataclass(frozen=True)
class Raised:
    customer_id: int
    risk: int
    previous: int | None
    reasons: tuple[str, ...]
    mrr: float | None


def to_raise(
    session: Session,
    run_id: int,
    *,
    route: str,
    where: ColumnElement[bool] | None,
    threshold: int,
    rise: int,
    now: datetime,
    terminal: tuple[str, ...] = (),
) -> list[Raised]:
    """At or above the threshold in this pass, without a live alert in this route's digests
    (open, taken, contacted, or snoozed until later, and shown in a message), unless the
    risk rose `rise` points or more over that alert's."""
    this_run = select(RiskRun.as_of).where(RiskRun.id == run_id).scalar_subquery()
    previous_run = (
        select(RiskRun.id)
        .where(
            RiskRun.as_of < this_run,
            RiskRun.finished_at.is_not(None),
            RiskRun.scores_pruned_at.is_(None),  # a pass whose scores are gone rose nobody
        )
        .order_by(RiskRun.as_of.desc(), RiskRun.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    before = aliased(RiskScore)
    live_alert = exists().where(
        Alert.customer_id == RiskScore.customer_id,
        Alert.message_ts.is_not(None),
        Digest.id == Alert.digest_id,
        Digest.route == route,
        or_(
            Alert.status.in_((OPEN, ASSIGNED, CONTACTED)),
            and_(Alert.status == SNOOZED, Alert.snoozed_until > now),
        ),
        RiskScore.risk < Alert.risk + rise,
    )
    query = (
        select(RiskScore.customer_id, RiskScore.risk, before.risk, RiskScore.reasons, Customer.mrr)
        .join(Customer, Customer.id == RiskScore.customer_id)
        .outerjoin(
            before,
            and_(before.customer_id == RiskScore.customer_id, before.run_id == previous_run),
        )
        .where(
            RiskScore.run_id == run_id,
            RiskScore.risk >= threshold,
            ~live_alert,
            Customer.forgotten_at.is_(None),
        )
        .order_by(RiskScore.risk.desc(), Customer.mrr.desc().nulls_last(), Customer.id)
    )
    if terminal:
        query = query.where(Customer.stage.not_in(list(terminal)))
    if where is not None:
        query = query.where(where)
    return [
        Raised(cid, risk, prev, tuple(reasons or ()), mrr)
        for cid, risk, prev, reasons, mrr in session.execute(query)
    ]


def resolve(
    session: Session, *, now: datetime, run_id: int, threshold: int, stages: tuple[str, ...]
) -> int:
    """Alerts that went away by themselves: the customer moved forward in the lifecycle,
    answered well (NPS 9-10, CSAT 4-5), or fell below the threshold in this pass. Returns
    how many."""
    order = {stage: i for i, stage in enumerate(stages)}
    forward = [
        and_(StageChange.from_stage == a, StageChange.to_stage == b)
        for a in stages
        for b in stages
        if order[b] > order[a]
    ]
    moved = exists().where(
        StageChange.customer_id == Alert.customer_id,
        StageChange.at > Alert.created_at,
        StageChange.basis == EXACT,
        or_(*forward) if forward else false(),
    )
    happy = exists().where(
        Feedback.customer_id == Alert.customer_id,
        Feedback.responded_at > Alert.created_at,
        or_(
            and_(Feedback.kind == "nps", Feedback.score >= 9),
            and_(Feedback.kind == "csat", Feedback.score >= 4),
        ),
    )
    fell = exists().where(
        RiskScore.customer_id == Alert.customer_id,
        RiskScore.run_id == run_id,
        RiskScore.risk < threshold,
    )
    result = session.execute(
        update(Alert)
        .where(Alert.status != RESOLVED, or_(moved, happy, fell))
        .values(status=RESOLVED, updated_by="rule", updated_at=now),
        execution_options={"preserve_rowcount": True},
    )
    return result.rowcount


@dataclass(frozen=True)
class AlertLine:
    """An alert as the digest shows it."""

    id: int
    name: str
    external_id: str
    owner_slack_id: str | None
    risk: int
    previous: int | None
    reasons: tuple[str, ...]
    mrr: float | None
    status: str
    updated_by: str | None
    snoozed_until: datetime | None


def alert_lines(
    session: Session,
    *,
    digest_id: int | None = None,
    message: tuple[str, str] | None = None,
) -> list[AlertLine]:
    """The alerts of a digest, or those shown in one message (channel, ts); highest risk
    first."""
    query = select(
        Alert.id,
        Customer.name,
        Customer.external_id,
        Customer.owner_slack_id,
        Alert.risk,
        Alert.previous_risk,
        Alert.reasons,
        Customer.mrr,
        Alert.status,
        Alert.updated_by,
        Alert.snoozed_until,
    ).join(Customer, Customer.id == Alert.customer_id)
    if digest_id is not None:
        query = query.where(Alert.digest_id == digest_id)
    if message is not None:
        query = query.where(Alert.channel_id == message[0], Alert.message_ts == message[1])
    query = query.order_by(Alert.risk.desc(), Customer.mrr.desc().nulls_last(), Alert.id)
    return [
        AlertLine(r[0], r[1], r[2], r[3], r[4], r[5], tuple(r[6] or ()), r[7], r[8], r[9], r[10])
        for r in session.execute(query)
    ]
