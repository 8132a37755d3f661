"""A customer's profile: what the card in Slack and the console show about one customer."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, and_, bindparam, func, select
from sqlmodel import Session

from clmbot.customers import customer_info
from clmbot.results import Activity, Answer, HistoryLine, Profile
from clmbot.risk.stored import latest_run_id
from clmbot.store.models import IMPORTED, Customer, Event, Feedback, RiskScore, StageChange

HISTORY_SHOWN = 8
_30_DAYS = timedelta(days=30)


# The card's statements, made once with bound parameters rather than on every look-up:
# building them, and each statement's round through the ORM, took about half of a look-up's
# interpreter time, which is what bounds the answers a process gives a second.
_H = StageChange.__table__
_E = Event.__table__
_F = Feedback.__table__
_S = RiskScore.__table__
_CID, _NOW = bindparam("cid"), bindparam("now")
# A row into the stage the customer was already in (a CRM's history repeating what a
# customers file said) changes nothing: not shown.
_SHOWN = and_(
    _H.c.customer_id == _CID, _H.c.at <= _NOW, _H.c.from_stage.is_distinct_from(_H.c.to_stage)
)
_HISTORY = (
    select(_H.c.from_stage, _H.c.to_stage, _H.c.at, _H.c.by, _H.c.reason, _H.c.basis)
    .where(_SHOWN)
    .order_by(_H.c.at.desc(), _H.c.id.desc())
    .limit(HISTORY_SHOWN)
)
_UNTIL_NOW = and_(_E.c.customer_id == _CID, _E.c.occurred_at <= _NOW)
_LAST = select(_E.c.kind, _E.c.occurred_at).where(_UNTIL_NOW).order_by(_E.c.occurred_at.desc())


def _latest(kind: str, column: Any) -> Any:
    return (
        select(column)
        .where(_F.c.customer_id == _CID, _F.c.kind == kind, _F.c.responded_at <= _NOW)
        .order_by(_F.c.responded_at.desc())
        .limit(1)
        .scalar_subquery()
    )


_RISK = select(_S.c.risk, _S.c.reasons).where(
    _S.c.customer_id == _CID, _S.c.run_id == latest_run_id(_NOW)
)
# The counts, the last event, the latest NPS and CSAT answers and the risk in one statement
# rather than four: each index probe costs the server little, each statement costs the bot a
# tenth of a millisecond, and the card is nearly half of what a team asks.
_FACTS = select(
    select(func.count()).select_from(_H).where(_SHOWN).scalar_subquery().label("moves"),
    _LAST.with_only_columns(_E.c.kind).limit(1).scalar_subquery().label("last_kind"),
    _LAST.with_only_columns(_E.c.occurred_at).limit(1).scalar_subquery().label("last_at"),
    select(func.count())
    .select_from(_E)
    .where(_UNTIL_NOW, _E.c.occurred_at > bindparam("month_ago"))
    .scalar_subquery()
    .label("recent"),
    *(
        _latest(kind, _F.c[column]).label(f"{kind}_{column}")
        for kind in ("nps", "csat")
        for column in ("score", "responded_at", "comment")
    ),
    _RISK.with_only_columns(_S.c.risk).scalar_subquery().label("risk"),
    _RISK.with_only_columns(_S.c.reasons).scalar_subquery().label("reasons"),
)


def customer_profile(
    session: Session, customer: Customer, *, now: datetime, terminal: tuple[str, ...] = ()
) -> Profile:
    """Everything as of `now`: later history, events and answers are not shown. `terminal`:
    the stages that end the lifecycle (see `LifecycleConfig.terminal`)."""
    asked = {"cid": customer.id, "now": now}
    conn = session.connection()  # Core statements: the ORM's round adds nothing here
    history = conn.execute(_HISTORY, asked).all()
    facts = conn.execute(_FACTS, {**asked, "month_ago": now - _30_DAYS}).one()
    current = history[0] if history and history[0].to_stage == customer.stage else None
    dated = current is not None and current.basis != IMPORTED
    return Profile(
        customer=customer_info(customer),
        history=[HistoryLine(h.from_stage, h.to_stage, h.at, h.by, h.reason) for h in history],
        history_total=facts.moves or 0,
        stage_since=current.at if current is not None and dated else None,
        stage_found_at=current.at if current is not None and not dated else None,
        last_activity=Activity(facts.last_kind, facts.last_at) if facts.last_at else None,
        latest_nps=_answer(facts, "nps"),
        latest_csat=_answer(facts, "csat"),
        events_last_30_days=facts.recent or 0,
        ended=customer.stage in terminal,
        risk=facts.risk,
        risk_reasons=tuple(facts.reasons or ()) if facts.risk is not None else (),
    )


def _answer(facts: Row[Any], kind: str) -> Answer | None:
    at = getattr(facts, f"{kind}_responded_at")
    if at is None:
        return None
    return Answer(getattr(facts, f"{kind}_score"), at, getattr(facts, f"{kind}_comment"))
