"""The latest stored risk pass, read without scoring anything (and without numpy): what
`/clm at-risk` lists and what `risk>70` in a segment compares."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import BindParameter, ColumnElement, and_, func, select
from sqlmodel import Session

from clmbot.store import cache
from clmbot.store.models import Customer, RiskRun, RiskScore

_R = RiskRun.__table__
_S = RiskScore.__table__


def latest_run_id(now: datetime | BindParameter[Any]) -> ColumnElement[int]:
    """The finished run of the latest day as of `now` (a subquery; `now` may be a parameter
    bound later): a day filled in later by hand (`alerts run --as-of` a past day) does not
    become the latest."""
    return (
        select(_R.c.id)
        .where(_R.c.finished_at.is_not(None), _R.c.as_of <= now)
        .order_by(_R.c.as_of.desc(), _R.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )


def latest_risk(now: datetime) -> ColumnElement[int]:
    """A customer's risk in the latest run (a correlated subquery on `customers`)."""
    return (
        select(_S.c.risk)
        .where(_S.c.customer_id == Customer.id, _S.c.run_id == latest_run_id(now))
        .correlate(Customer)
        .scalar_subquery()
    )


@dataclass(frozen=True)
class AtRisk:
    external_id: str
    name: str
    risk: int
    reasons: tuple[str, ...]
    mrr: float | None
    owner_slack_id: str | None


@dataclass(frozen=True)
class AtRiskPage:
    day: date | None  # the run's day; None when no run has finished yet
    rows: list[AtRisk]
    total: int  # at or above the threshold, in the segment
    has_more: bool


# How an at-risk list is ordered wherever it is shown (`/clm at-risk`, the Home tab): the
# highest risk first, then the most MRR, then by id so that pages never overlap.
AT_RISK_ORDER = (_S.c.risk.desc(), Customer.mrr.desc().nulls_last(), Customer.external_id)


def at_risk(
    session: Session,
    *,
    now: datetime,
    threshold: int,
    where: ColumnElement[bool] | None = None,
    offset: int = 0,
    limit: int = 10,
) -> AtRiskPage:
    """A page of the customers at or above `threshold` in the latest pass as of `now`, among
    those `where` selects; kept while nothing it could read changed (`clmbot.store.cache`):
    counting them all takes a scan of the pass."""
    return cache.kept(
        session,
        ("at_risk", threshold, cache.where_key(session, where), offset, limit),
        tables=cache.tables_read(where, *AT_RISK_TABLES),
        now=now,
        compute=lambda: _at_risk(session, now, threshold, where, offset, limit),
    )


AT_RISK_TABLES = ("risk_runs", "risk_scores", "customers")


def _at_risk(
    session: Session,
    now: datetime,
    threshold: int,
    where: ColumnElement[bool] | None,
    offset: int,
    limit: int,
) -> AtRiskPage:
    run_row = session.execute(
        select(_R.c.id, _R.c.day).where(_R.c.id == latest_run_id(now))
    ).first()
    if run_row is None:
        return AtRiskPage(None, [], 0, False)
    conditions = [_S.c.run_id == run_row.id, _S.c.risk >= threshold]
    if where is not None:
        conditions.append(where)
    base = (
        select(_S.c.risk)
        .join(Customer.__table__, Customer.id == _S.c.customer_id)
        .where(and_(*conditions), Customer.forgotten_at.is_(None))
    )
    total = session.execute(select(func.count()).select_from(base.subquery())).scalar() or 0
    rows = session.execute(
        select(
            Customer.external_id,
            Customer.name,
            _S.c.risk,
            _S.c.reasons,
            Customer.mrr,
            Customer.owner_slack_id,
        )
        .join(Customer.__table__, Customer.id == _S.c.customer_id)
        .where(and_(*conditions), Customer.forgotten_at.is_(None))
        .order_by(*AT_RISK_ORDER)
        .offset(offset)
        .limit(limit + 1)
    ).all()
    listed = [
        AtRisk(r.external_id, r.name, r.risk, tuple(r.reasons or ()), r.mrr, r.owner_slack_id)
        for r in rows[:limit]
    ]
    return AtRiskPage(run_row.day, listed, int(total), len(rows) > limit)
