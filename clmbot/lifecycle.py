"""Lifecycle stages: moving a customer, and the funnel.

The stage history is the source of truth for "when": the funnel is computed from it as of
any `now`, so the same call answers "this quarter" today and "last quarter" in a backtest.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    String,
    Subquery,
    Table,
    and_,
    case,
    func,
    insert,
    or_,
    select,
)
from sqlalchemy.schema import CreateTable, DropTable
from sqlmodel import Session

from clmbot import audit, history
from clmbot.commands.spec import Actor
from clmbot.config import LifecycleConfig
from clmbot.results import Conversion, Funnel, StageMove, StageStats
from clmbot.store.models import IMPORTED, Customer, StageChange
from clmbot.store.types import UTCDateTime

DEFAULT_FUNNEL_PERIOD = timedelta(days=90)


class UnknownStage(ValueError):
    def __init__(self, stage: str, lifecycle: LifecycleConfig) -> None:
        super().__init__(f"{stage!r} is not a stage; use one of: {', '.join(lifecycle.stages)}")
        self.stage = stage
        self.valid = lifecycle.stages


def normalise_stage(stage: str, lifecycle: LifecycleConfig) -> str:
    name = stage.strip().lower()
    if name not in lifecycle.stages:
        raise UnknownStage(stage, lifecycle)
    return name


def move_stage(
    session: Session,
    customer: Customer,
    to_stage: str,
    *,
    by: str,
    reason: str | None,
    now: datetime,
    lifecycle: LifecycleConfig,
) -> StageMove:
    """Move `customer` to `to_stage`, recording who and why; a move to the current stage is a
    no-op (nothing written), so a repeated command or a retried request changes nothing."""
    target = normalise_stage(to_stage, lifecycle)
    current = customer.stage
    if target == current:
        return StageMove(customer.id or 0, current, target, now, by, reason, changed=False)
    customer.stage = target
    customer.updated_at = now
    session.add(customer)
    session.flush()
    history.add(
        session.connection(),
        customer_id=customer.id or 0,
        from_stage=current,
        to_stage=target,
        at=now,
        by=by,
        reason=reason or None,
    )
    return StageMove(customer.id or 0, current, target, now, by, reason, changed=True)


def move_customer(
    session: Session,
    customer: Customer,
    stage: str,
    *,
    actor: Actor,
    ref: str,
    reason: str | None,
    now: datetime,
    lifecycle: LifecycleConfig,
) -> StageMove:
    """A stage move made by a person, from any front door: the history row and its audit
    entry, in one transaction. (`ref`: what they typed to name the customer.)"""
    move = move_stage(
        session, customer, stage, by=actor.id, reason=reason, now=now, lifecycle=lifecycle
    )
    if move.changed:
        audit.record_by(
            session,
            actor,
            "stage",
            at=now,
            customer_id=customer.id,
            ref=ref,
            from_stage=move.from_stage,
            to_stage=move.to_stage,
            reason=reason,
        )
    return move


def funnel(
    session: Session, *, since: datetime, now: datetime, lifecycle: LifecycleConfig
) -> Funnel:
    """Customers per stage at `now`; for the period `since`..`now`, the conversion between
    consecutive funnel stages and the median days a stay in each stage lasted.

    Conversion from A to B counts the customers who were in A at any time in the period, and
    of them those who then entered B or a later funnel stage within the period: someone who
    skips a stage still passed through the funnel. Terminal stages (churned) end the funnel
    and are not a conversion.

    A stage only known from an import (not when it began) is never counted as entered, and
    a stay with an unknown start or end has no length for the median.

    The database does the counting (window functions over the history, three queries); only
    the stays that ended within the period come to Python, for their median.
    """
    if since >= now:
        raise ValueError("the period must start before it ends")
    # The stays are worked out once (two window passes over the history) into a temporary
    # table of this connection, which the three questions below then read.
    stays = _materialise(session, _stays(now))
    dated = stays.c.basis != IMPORTED
    per_stage = session.execute(
        select(
            stays.c.stage,
            func.sum(case((stays.c.end.is_(None), 1), else_=0)),
            func.sum(case((and_(dated, stays.c.start >= since), 1), else_=0)),
        ).group_by(stays.c.stage)
    ).all()
    at_now = dict.fromkeys(lifecycle.stages, 0)
    entered = dict.fromkeys(lifecycle.stages, 0)
    for stage, current, new in per_stage:
        if stage in at_now:
            at_now[stage] += int(current or 0)
            entered[stage] += int(new or 0)
    for stage, count in _customers_without_history(session, now):
        if stage in at_now:
            at_now[stage] += count

    durations: dict[str, list[float]] = {s: [] for s in lifecycle.stages}
    ended = session.execute(
        select(stays.c.stage, stays.c.start, stays.c.end).where(
            dated, stays.c.end_basis != IMPORTED, stays.c.end >= since
        )
    )
    for stage, start, end in ended:
        if stage in durations:
            durations[stage].append((end - start).total_seconds() / 86400)

    funnel_stages = lifecycle.funnel_stages
    base, converted = _conversions(session, stays, funnel_stages, since)
    session.execute(DropTable(stays))
    return Funnel(
        since=since,
        now=now,
        stages=[
            StageStats(
                stage=s,
                customers=at_now[s],
                entered=entered[s],
                median_days=statistics.median(durations[s]) if durations[s] else None,
                stays=len(durations[s]),
            )
            for s in lifecycle.stages
        ],
        conversions=[
            Conversion(funnel_stages[i], funnel_stages[i + 1], base[i], converted[i])
            for i in range(len(base))
        ],
        terminal=lifecycle.terminal,
    )


_STAYS = Table(
    "clmbot_funnel_stays",
    MetaData(),
    Column("customer_id", Integer),
    Column("stage", String(40)),
    Column("basis", String(10)),
    Column("start", UTCDateTime),
    Column("end", UTCDateTime),
    Column("end_basis", String(10)),
    Column("seq", Integer),
    prefixes=["TEMPORARY"],
)


def _materialise(session: Session, stays: Subquery) -> Table:
    """`stays` into a temporary table: computing them is the costly part, and the funnel asks
    three questions of them. Temporary tables belong to the connection, so concurrent
    funnels do not meet; an earlier one left behind by an error is dropped first."""
    session.execute(DropTable(_STAYS, if_exists=True))
    session.execute(CreateTable(_STAYS))
    columns = [c.name for c in _STAYS.columns]
    session.execute(insert(_STAYS).from_select(columns, select(*(stays.c[c] for c in columns))))
    return _STAYS


def _stays(now: datetime) -> Subquery:
    """Each customer's stays in stages up to `now`. A history row starts a stay unless the row
    before it entered the same stage (a history that records a stage twice); a stay ends
    where the next one starts (`end`, and how that start is known: `end_basis`); `seq`
    numbers a customer's stays in order."""
    h = StageChange.__table__
    rows = (
        select(
            h.c.id,
            h.c.customer_id,
            h.c.to_stage.label("stage"),
            h.c.at,
            h.c.basis,
            func.lag(h.c.to_stage)
            .over(partition_by=h.c.customer_id, order_by=(h.c.at, h.c.id))
            .label("previous"),
        )
        .where(h.c.at <= now)
        .subquery("rows")
    )
    starts = (
        select(rows)
        .where(or_(rows.c.previous.is_(None), rows.c.previous != rows.c.stage))
        .subquery("starts")
    )
    order = {"partition_by": starts.c.customer_id, "order_by": (starts.c.at, starts.c.id)}
    return select(
        starts.c.customer_id,
        starts.c.stage,
        starts.c.basis,
        starts.c.at.label("start"),
        func.lead(starts.c.at, type_=h.c.at.type).over(**order).label("end"),
        func.lead(starts.c.basis, type_=h.c.basis.type).over(**order).label("end_basis"),
        func.row_number().over(**order).label("seq"),
    ).subquery("stays")


def _conversions(
    session: Session, stays: Table, funnel_stages: tuple[str, ...], since: datetime
) -> tuple[list[int], list[int]]:
    """For each pair of consecutive funnel stages A → B: the customers with a stay in A that
    reached into the period (`base`), and of them those who, after the first such stay,
    started a stay in B or further within the period (`converted`)."""
    pairs = max(len(funnel_stages) - 1, 0)
    if not pairs:
        return [], []
    position = case(
        {stage: i for i, stage in enumerate(funnel_stages)}, value=stays.c.stage, else_=None
    )
    reaches_period = or_(stays.c.end.is_(None), stays.c.end >= since)
    columns = []
    for i in range(pairs):
        first = func.min(case((and_(position == i, reaches_period), stays.c.seq)))
        later = func.max(case((and_(position > i, stays.c.start >= since), stays.c.seq)))
        columns += [first.label(f"f{i}"), later.label(f"l{i}")]
    per_customer = select(*columns).group_by(stays.c.customer_id).subquery("per_customer")
    totals = []
    for i in range(pairs):
        first, later = per_customer.c[f"f{i}"], per_customer.c[f"l{i}"]
        totals.append(func.sum(case((first.is_not(None), 1), else_=0)))
        totals.append(func.sum(case((later > first, 1), else_=0)))
    values = [int(v or 0) for v in session.execute(select(*totals)).one()]
    return values[0::2], values[1::2]


def _customers_without_history(session: Session, now: datetime) -> Iterable[tuple[str, int]]:
    """Customers written without a history row (by hand, or by another tool) still count,
    in the stage they have now."""
    has_history = select(StageChange.id).where(StageChange.customer_id == Customer.id).exists()
    query = (
        select(Customer.stage, func.count())
        .where(~has_history, Customer.created_at <= now)
        .group_by(Customer.stage)
    )
    return session.execute(query).all()
