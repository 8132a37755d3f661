"""Lifecycle stages: moving a customer, and the funnel.

The stage history is the source of truth for "when": the funnel is computed from it as of
any `now`, so the same call answers "this quarter" today and "last quarter" in a backtest.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Integer,
    Select,
    and_,
    case,
    cast,
    func,
    null,
    or_,
    select,
    union_all,
)
from sqlmodel import Session

from clmbot import audit, history
from clmbot.commands.spec import Actor
from clmbot.config import LifecycleConfig
from clmbot.results import Conversion, Funnel, StageMove, StageStats
from clmbot.store import cache, versions
from clmbot.store.models import IMPORTED, Customer, StageChange

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


# What the funnel reads: a kept funnel (`clmbot.store.cache`) holds until one of them changes.
FUNNEL_TABLES = ("customers", versions.STAGES, "stage_history")


def funnel(
    session: Session, *, since: datetime, now: datetime, lifecycle: LifecycleConfig
) -> Funnel:
    """The funnel of [since, now] (`work_out_funnel`), kept while the history and the
    customers are unchanged and the period the same to the minute: at a million customers
    it takes seconds to work out."""
    return _kept(session, work_out_funnel, since, now, lifecycle)


def work_out_funnel(
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

    Only the customers who moved in the period are worked out stay by stay: everyone else
    was in their stage (`customers.stage`) all through it (see `funnel_counts`), and
    entered nothing and ended no stay in it. tests/funnel_reference.py is the plain Python
    this must equal, on random histories.
    """
    counts = work_out_counts(session, since=since, now=now, lifecycle=lifecycle)
    entered, medians = _entries_and_medians(session, since, now)
    funnel_stages = lifecycle.funnel_stages
    return Funnel(
        since=since,
        now=now,
        stages=[
            StageStats(
                stage=s,
                customers=counts.at_now[s],
                entered=entered.get(s, 0),
                median_days=medians[s][0] if s in medians else None,
                stays=medians[s][1] if s in medians else 0,
            )
            for s in lifecycle.stages
        ],
        conversions=[
            Conversion(funnel_stages[i], funnel_stages[i + 1], counts.base[i], counts.converted[i])
            for i in range(len(counts.base))
        ],
        terminal=lifecycle.terminal,
    )


@dataclass(frozen=True)
class FunnelCounts:
    """Customers per stage at `now`; for each pair of consecutive funnel stages A → B, those
    in A at some time in the period (`base`), and of them those who went on (`converted`)."""

    at_now: dict[str, int]
    base: list[int]
    converted: list[int]
    # Set when these counts are given as last counted, after stage moves they do not hold
    # yet (see `clmbot.store.cache`): the Home tab says so, as `/clm funnel` does.
    counted_at: datetime | None = None


def funnel_counts(
    session: Session, *, since: datetime, now: datetime, lifecycle: LifecycleConfig
) -> FunnelCounts:
    """`work_out_counts`, kept as `funnel` is: the Home tab asks on every opening."""
    return _kept(session, work_out_counts, since, now, lifecycle)


def _kept(
    session: Session,
    work_out: Callable[..., Any],
    since: datetime,
    now: datetime,
    lifecycle: LifecycleConfig,
) -> Any:
    return cache.kept(
        session,
        (work_out.__name__, lifecycle),
        tables=FUNNEL_TABLES,
        since=since,
        now=now,
        compute=lambda: work_out(session, since=since, now=now, lifecycle=lifecycle),
        carry=_carried(session, since, now),
        refresh=lambda own: work_out(own, since=since, now=now, lifecycle=lifecycle),
    )


def _carried(session: Session, since: datetime, now: datetime) -> cache.Carry:
    """A funnel (or its counts) kept for another period, as it stands for [since, now]: the
    same, when no history row lies between the two starts nor between the two ends. Every
    count is made of history rows in the period and of `customers.stage` (whose version is
    unchanged), so only a row crossing an edge could change one; two index probes say."""

    def carry(value: Any, was_since: datetime | None, was_now: datetime) -> Any:
        if was_since is None or _moves_between(session, was_since, since):
            return None
        if _moves_between(session, was_now, now):
            return None
        return replace(value, since=since, now=now) if isinstance(value, Funnel) else value

    return carry


def _moves_between(session: Session, one: datetime, other: datetime) -> bool:
    low, high = min(one, other), max(one, other)
    found = select(_H.c.id).where(_H.c.at >= low, _H.c.at <= high).limit(1)
    return session.execute(found).first() is not None


def work_out_counts(
    session: Session, *, since: datetime, now: datetime, lifecycle: LifecycleConfig
) -> FunnelCounts:
    """Customers per stage at `now`, and the conversions over [since, now], without working
    out every stay: the cost follows the customers who moved in the period, not the whole
    history.

    The customers per stage start from one index scan of `customers.stage`, corrected by
    the history of the few whose stage changed since `since` (see `_movers`): those with a
    row in the period, whose order decides the conversions, and those with a row after
    `now` (an earlier `now`), whose stage then was another. Each of these is taken out of
    the stage `customers.stage` gives and put in the one their history gives at `now`:
    the two differ when a move was written before an import's future-dated first stage
    (`stage_since` may be up to a day ahead); the history decides. A history row in a stage
    clmbot.toml no longer names puts its customer in no stage.

    Everyone else was in their stage all through the period: they count in its conversion
    base, and convert nowhere. That takes `customers.stage` to be the stage their latest
    row entered, which every writer keeps, save the move before a future-dated first stage
    above: once both rows are before `since`, such a customer counts in the stage of the
    move.

    A customer without any history row (written by another tool: every import writes a
    first stage) is in their stage at every `now`, and in its base: finding them would mean
    looking in the history for every customer (a NOT EXISTS per customer: half a second at
    a million customers).
    """
    if since >= now:
        raise ValueError("the period must start before it ends")
    at_now = dict.fromkeys(lifecycle.stages, 0)
    for stage, count in session.execute(
        select(Customer.stage, func.count()).group_by(Customer.stage)
    ):
        if stage in at_now:
            at_now[stage] += int(count)
    stages = lifecycle.funnel_stages
    pairs = max(len(stages) - 1, 0)
    stayed = dict(at_now)  # in the stage since before `since`, and still at `now`
    base, converted = [0] * pairs, [0] * pairs
    for row in _movers(session, since, now, lifecycle):
        stage, then, count, counts = row[0], row[1], int(row[2]), row[3:]
        if stage in at_now:
            at_now[stage] -= count
            stayed[stage] -= count
        if then is not None and then != _UNCONFIGURED:
            at_now[lifecycle.stages[then]] += count
        for i in range(pairs):
            base[i] += int(counts[2 * i] or 0)
            converted[i] += int(counts[2 * i + 1] or 0)
    return FunnelCounts(at_now, [base[i] + stayed[stages[i]] for i in range(pairs)], converted)


# A history row's stage that `clmbot.toml` no longer names (renamed, or dropped): not NULL,
# which stands for "no row" (before a customer's first), and matches no configured stage.
_UNCONFIGURED = -1
_H = StageChange.__table__


def can_materialise(session: Session) -> bool:
    """`AS MATERIALIZED` is PostgreSQL 12's and SQLite 3.35's; older SQLites (Debian 11's)
    compute the CTE once per use instead: slower, the same answer."""
    dialect = session.connection().dialect  # connected: the version is known
    return dialect.name != "sqlite" or (dialect.server_version_info or (0,)) >= (3, 35)


def _movers(
    session: Session, since: datetime, now: datetime, lifecycle: LifecycleConfig
) -> list[Any]:
    """The customers with a history row at or after `since` ("movers"), counted by their
    `customers.stage` and their stage at `now` (their latest row up to then, as an index in
    `lifecycle.stages`: `_UNCONFIGURED` for a stage not in it, None before their first
    row): (stage, then, movers, then for each pair of consecutive funnel stages A → B:
    those in A at some time in [since, now], and of them those who, after first being in A
    in it, entered B or a later funnel stage in it).

    A mover's period is the stage they were in when it began (`s0`: their latest row before
    it, if any), then their rows in it, in order (time, then id, as `lifecycle.funnel`
    orders them). A is reached when s0 or one of the rows is A; converted when a row entering
    a later stage follows. (A row that enters the stage the row before it entered starts no
    stay in `lifecycle.funnel`, and changes neither answer: the stay it continues counts
    already, and the first row entering a later stage always follows one of another stage.
    A row in a stage outside the funnel, unconfigured ones included, is neither A nor
    later: it only separates stays.)

    A mover's rows in the period are numbered from the latest back (`back`: 1 is the
    latest), apart from their rows after `now` (when `now` is in the past), which only make
    them movers: one window gives the order in the period and the stage at `now`. s0 is
    looked up once per mover, after the grouping; the grouped rows are materialised first
    where the database can be told to (older SQLites cannot), or SQLite would inline the
    look-up into every expression that reads it. `customers.stage` comes last, by key.
    """
    stages = lifecycle.funnel_stages
    pairs = max(len(stages) - 1, 0)
    position = {stage: i for i, stage in enumerate(stages)}
    every = {stage: i for i, stage in enumerate(lifecycle.stages)}
    in_period = case((_H.c.at <= now, 1), else_=0)
    moves = (
        select(
            _H.c.customer_id,
            in_period.label("in_period"),
            case(position, value=_H.c.to_stage).label("pos"),
            case(every, value=_H.c.to_stage, else_=_UNCONFIGURED).label("stage"),
            func.row_number()
            .over(
                partition_by=(_H.c.customer_id, in_period),
                order_by=(_H.c.at.desc(), _H.c.id.desc()),
            )
            .label("back"),
        )
        .where(_H.c.at >= since)
        .subquery("moves")
    )
    period = moves.c.in_period == 1
    columns: list[Any] = [
        moves.c.customer_id,
        func.max(case((and_(period, moves.c.back == 1), moves.c.stage))).label("then_stage"),
    ]
    for i in range(pairs):
        columns.append(
            func.max(case((and_(period, moves.c.pos == i), moves.c.back))).label(f"first{i}")
        )
        columns.append(
            func.min(case((and_(period, moves.c.pos > i), moves.c.back))).label(f"later{i}")
        )
    grouped = select(*columns).group_by(moves.c.customer_id).subquery("grouped")
    prior = _H.alias("prior")
    s0 = (
        select(prior.c.to_stage)
        .where(prior.c.customer_id == grouped.c.customer_id, prior.c.at < since)
        .order_by(prior.c.at.desc(), prior.c.id.desc())
        .limit(1)
        .correlate(grouped)
        .scalar_subquery()
    )
    per = select(grouped, s0.label("s0")).cte("movers")
    if can_materialise(session):
        per = per.prefix_with("MATERIALIZED")
    p0 = case(position, value=per.c.s0)
    # No row in the period: the stage of s0, when there is one.
    at_start = case(
        (per.c.s0.is_(None), None), else_=case(every, value=per.c.s0, else_=_UNCONFIGURED)
    )
    customers = Customer.__table__
    totals: list[Any] = [
        customers.c.stage,
        func.coalesce(per.c.then_stage, at_start).label("then"),
        func.count(),
    ]
    for i in range(pairs):
        first, later = per.c[f"first{i}"], per.c[f"later{i}"]
        totals.append(func.count().filter(or_(p0 == i, first.is_not(None))))
        totals.append(func.count().filter(later.is_not(None), or_(p0 == i, later < first)))
    query = (
        select(*totals)
        .select_from(per.join(customers, customers.c.id == per.c.customer_id))
        .group_by(totals[0], totals[1])
    )
    return list(session.execute(query))


def _entries_and_medians(
    session: Session, since: datetime, now: datetime
) -> tuple[dict[str, int], dict[str, tuple[float, int]]]:
    """For each stage: the dated stays that began in [since, now] (`entered`), and the
    median days of the dated stays that ended in it, with how many there were.

    Both only concern customers with a history row in the period, whose stays alone are
    worked out. The medians are picked in SQL (the one or two middle stays of each stage),
    from lengths in whole microseconds, so that they come out exactly as the same
    arithmetic on Python datetimes gives them."""
    stays = _stays(now, since=since).cte("stays")
    if can_materialise(session):
        stays = stays.prefix_with("MATERIALIZED")
    dated = stays.c.basis != IMPORTED
    length = _microseconds(session, stays.c.start, stays.c.end)
    spans = (
        select(
            stays.c.stage,
            length.label("length"),
            func.row_number().over(partition_by=stays.c.stage, order_by=length).label("rank"),
            func.count().over(partition_by=stays.c.stage).label("n"),
        )
        .where(dated, stays.c.end_basis != IMPORTED, stays.c.end >= since)
        .subquery("spans")
    )
    middle = or_(spans.c.rank == (spans.c.n + 1) // 2, spans.c.rank == (spans.c.n + 2) // 2)
    # One statement, so that the stays are worked out once: (stage, NULL, entered) rows,
    # then (stage, a middle length, stays ended) rows in order of length.
    rows = session.execute(
        union_all(
            select(stays.c.stage, null(), func.count())
            .where(dated, stays.c.start >= since)
            .group_by(stays.c.stage),
            select(spans.c.stage, spans.c.length, spans.c.n).where(middle),
        )
    ).all()
    entered = {stage: int(n) for stage, micros, n in rows if micros is None}
    lengths: dict[str, list[int]] = {}
    counts: dict[str, int] = {}
    for stage, micros, n in sorted((r for r in rows if r[1] is not None), key=lambda r: r[1]):
        lengths.setdefault(stage, []).append(int(micros))
        counts[stage] = int(n)
    medians = {
        stage: (statistics.median(m / 1_000_000 / 86400 for m in ms), counts[stage])
        for stage, ms in lengths.items()
    }
    return entered, medians


def _microseconds(session: Session, start: Any, end: Any) -> Any:
    """`end - start` in whole microseconds, exactly: SQLite keeps the times as text
    ("2026-11-24 12:00:00.000000"), PostgreSQL as timestamps."""
    if session.get_bind().dialect.name == "sqlite":

        def micros(t: Any) -> Any:
            return cast(func.strftime("%s", t), Integer) * 1_000_000 + cast(
                func.substr(t, 21, 6), Integer
            )

        return micros(end) - micros(start)
    return cast(func.extract("epoch", end - start) * 1_000_000, BigInteger)


def _stays(now: datetime, *, since: datetime | None = None) -> Select[Any]:
    """Each customer's stays in stages up to `now` (with `since`: only those of the
    customers with a history row in [since, now]). A history row starts a stay unless the
    row before it entered the same stage (a history that records a stage twice); a stay
    ends where the next one starts (`end`, and how that start is known: `end_basis`);
    `seq` numbers a customer's stays in order."""
    h = StageChange.__table__
    where = [h.c.at <= now]
    if since is not None:
        movers = select(h.c.customer_id).where(h.c.at >= since, h.c.at <= now)
        where.append(h.c.customer_id.in_(movers))
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
        .where(*where)
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
    )
