"""The funnel as it was first written, one customer at a time in Python: slow at scale, but
plain to read. Kept as the reference the SQL version must agree with (tests only)."""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from clmbot.config import LifecycleConfig
from clmbot.results import Conversion, Funnel, StageStats
from clmbot.store.models import IMPORTED, Customer, StageChange


@dataclass
class _Stay:
    stage: str
    start: datetime
    end: datetime | None  # None: still there at `now`
    # False when the stay is only known to have begun by the import that found it: it began
    # at some unknown time before `start`.
    dated: bool = True
    end_dated: bool = True


def reference_funnel(
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
    """
    if since >= now:
        raise ValueError("the period must start before it ends")
    order = {stage: i for i, stage in enumerate(lifecycle.funnel_stages)}
    at_now = dict.fromkeys(lifecycle.stages, 0)
    entered = dict.fromkeys(lifecycle.stages, 0)
    durations: dict[str, list[float]] = {s: [] for s in lifecycle.stages}
    base = [0] * max(len(order) - 1, 0)
    converted = [0] * max(len(order) - 1, 0)

    for stays in _stays_per_customer(session, now):
        if stays[-1].stage in at_now:
            at_now[stays[-1].stage] += 1
        for stay in stays:
            if stay.dated and since <= stay.start <= now and stay.stage in entered:
                entered[stay.stage] += 1
            if (
                stay.end is not None
                and stay.dated
                and stay.end_dated
                and since <= stay.end <= now
                and stay.stage in durations
            ):
                durations[stay.stage].append((stay.end - stay.start).total_seconds() / 86400)
        _count_conversions(stays, order, since, base, converted)
    # A customer without any history row (written by another tool) is taken to have been in
    # their stage all along: counted in it at every `now`, and in its conversion base.
    for (stage,) in session.execute(select(Customer.stage).where(~_has_history())):
        if stage in at_now:
            at_now[stage] += 1
        if order.get(stage, len(base)) < len(base):
            base[order[stage]] += 1

    funnel_stages = lifecycle.funnel_stages
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


def _has_history() -> Any:
    return select(StageChange.id).where(StageChange.customer_id == Customer.id).exists()


def _count_conversions(
    stays: list[_Stay],
    order: dict[str, int],
    since: datetime,
    base: list[int],
    converted: list[int],
) -> None:
    for i in range(len(base)):
        in_period = [
            k
            for k, s in enumerate(stays)
            if order.get(s.stage) == i and (s.end is None or s.end >= since)
        ]
        if not in_period:
            continue
        base[i] += 1
        first = in_period[0]
        if any(order.get(s.stage, -1) > i and s.start >= since for s in stays[first + 1 :]):
            converted[i] += 1


def _stays_per_customer(session: Session, now: datetime) -> Iterator[list[_Stay]]:
    """Each customer's stays in stages up to `now`, oldest first, one customer at a time."""
    query = (
        select(StageChange.customer_id, StageChange.to_stage, StageChange.at, StageChange.basis)
        .where(StageChange.at <= now)
        .order_by(StageChange.customer_id, StageChange.at, StageChange.id)
        .execution_options(yield_per=5000)
    )
    current_id: int | None = None
    stays: list[_Stay] = []
    for customer_id, stage, at, basis in session.execute(query):
        if customer_id != current_id:
            if stays:
                yield stays
            current_id, stays = customer_id, []
        dated = basis != IMPORTED
        if stays:
            if stays[-1].stage == stage:
                continue  # a history that records a stage twice: still the same stay
            stays[-1].end = at
            stays[-1].end_dated = dated
        stays.append(_Stay(stage, at, None, dated))
    if stays:
        yield stays
