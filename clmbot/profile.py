"""A customer's profile: what the card in Slack and the console show about one customer."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlmodel import Session

from clmbot.customers import customer_info
from clmbot.results import Activity, Answer, HistoryLine, Profile
from clmbot.risk.stored import customer_risk
from clmbot.store.models import IMPORTED, Customer, Event, Feedback, StageChange

HISTORY_SHOWN = 8
_30_DAYS = timedelta(days=30)


def customer_profile(
    session: Session, customer: Customer, *, now: datetime, terminal: tuple[str, ...] = ()
) -> Profile:
    """Everything as of `now`: later history, events and answers are not shown. `terminal`:
    the stages that end the lifecycle (see `LifecycleConfig.terminal`)."""
    cid = customer.id
    # A row into the stage the customer was already in (a CRM's history repeating what a
    # customers file said) changes nothing: not shown.
    moved = StageChange.from_stage.is_distinct_from(StageChange.to_stage)
    history = list(
        session.scalars(
            select(StageChange)
            .where(StageChange.customer_id == cid, StageChange.at <= now, moved)
            .order_by(StageChange.at.desc(), StageChange.id.desc())
            .limit(HISTORY_SHOWN)
        )
    )
    total = session.scalar(
        select(func.count()).where(StageChange.customer_id == cid, StageChange.at <= now, moved)
    )
    last = session.execute(
        select(Event.kind, Event.occurred_at)
        .where(Event.customer_id == cid, Event.occurred_at <= now)
        .order_by(Event.occurred_at.desc())
        .limit(1)
    ).first()
    recent = session.scalar(
        select(func.count()).where(
            Event.customer_id == cid,
            Event.occurred_at <= now,
            Event.occurred_at > now - _30_DAYS,
        )
    )
    current = history[0] if history and history[0].to_stage == customer.stage else None
    dated = current is not None and current.basis != IMPORTED
    risk = customer_risk(session, cid, now) if cid is not None else None
    return Profile(
        customer=customer_info(customer),
        history=[HistoryLine(h.from_stage, h.to_stage, h.at, h.by, h.reason) for h in history],
        history_total=total or 0,
        stage_since=current.at if current is not None and dated else None,
        stage_found_at=current.at if current is not None and not dated else None,
        last_activity=Activity(last[0], last[1]) if last else None,
        latest_nps=_latest(session, cid, "nps", now),
        latest_csat=_latest(session, cid, "csat", now),
        events_last_30_days=recent or 0,
        ended=customer.stage in terminal,
        risk=risk[0] if risk else None,
        risk_reasons=risk[1] if risk else (),
    )


def _latest(session: Session, customer_id: int | None, kind: str, now: datetime) -> Answer | None:
    row = session.scalars(
        select(Feedback)
        .where(Feedback.customer_id == customer_id, Feedback.kind == kind)
        .where(Feedback.responded_at <= now)
        .order_by(Feedback.responded_at.desc())
        .limit(1)
    ).first()
    return Answer(row.score, row.responded_at, row.comment) if row is not None else None
