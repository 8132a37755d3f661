"""What the risk score reads, as of a date, from data up to that date only: each customer's
purchases, activity, latest answers and stage history, loaded in a few bulk queries into
arrays (100,000 customers and millions of events are read once, never per customer).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy import Connection, case, func, select

from clmbot.store.models import EXACT, Customer, Event, Feedback, StageChange

DAY = 86_400.0
PURCHASE = "purchase"
_E = Event.__table__
_H = StageChange.__table__
_F = Feedback.__table__
_C = Customer.__table__


def days(at: datetime) -> float:
    """A time as days since the epoch (the arrays' unit)."""
    return at.timestamp() / DAY


@dataclass
class Purchases:
    """Per customer (aligned with `ids`), from purchase events up to a date. A day with
    several orders is one purchase day (as the buy-till-you-die models count them)."""

    ids: np.ndarray  # customer ids that bought at least once
    first: np.ndarray  # days
    last: np.ndarray
    days_bought: np.ndarray  # distinct days with a purchase
    orders: np.ndarray  # every purchase event
    spent: np.ndarray  # sum of values (missing values count 0)


@dataclass
class StageFacts:
    stage: str
    since: datetime
    moved_back_from: str | None = None  # the last move went to an earlier stage
    moved_at: datetime | None = None


@dataclass
class Facts:
    as_of: datetime
    customers: dict[int, tuple[str, str]]  # id -> (external id, name), scored on `as_of`
    stages: dict[int, StageFacts]
    # (customer, time as days, value) of every purchase up to `as_of`, sorted by customer.
    purchase_rows: tuple[np.ndarray, np.ndarray, np.ndarray]
    # The same for every event of any kind (activity), sorted by customer.
    event_rows: tuple[np.ndarray, np.ndarray, np.ndarray]
    recent_events: dict[int, int]  # events of any kind in the 30 days before `as_of`
    earlier_events: dict[int, int]  # in the 180 days before those
    nps: dict[int, list[tuple[datetime, int]]] = field(default_factory=dict)  # latest first
    csat: dict[int, tuple[datetime, int]] = field(default_factory=dict)  # the latest
    # Completed stays per stage, in days (for "most move on within N days").
    stays: dict[str, list[float]] = field(default_factory=dict)
    # When each customer's history begins (their first stage), in days.
    first_seen: dict[int, float] = field(default_factory=dict)


def load(conn: Connection, as_of: datetime, *, terminal: tuple[str, ...]) -> Facts:
    """Everything known before `as_of` (a day's end is the next day's midnight: nothing of
    that next day is read). Customers in a terminal stage then are not scored."""
    stages, stays, first_seen = _stages(conn, as_of)
    live = {cid for cid, s in stages.items() if s.stage not in terminal}
    customers = {
        row.id: (row.external_id, row.name)
        for row in conn.execute(
            select(_C.c.id, _C.c.external_id, _C.c.name).where(_C.c.forgotten_at.is_(None))
        )
        if row.id in live
    }
    rows = conn.execute(
        select(_E.c.customer_id, _E.c.occurred_at, _E.c.value, _E.c.kind == PURCHASE)
        .where(_E.c.occurred_at < as_of)
        .order_by(_E.c.customer_id, _E.c.occurred_at)
    ).all()
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    at = np.fromiter((days(r[1]) for r in rows), dtype=np.float64, count=len(rows))
    value = np.fromiter((r[2] or 0.0 for r in rows), dtype=np.float64, count=len(rows))
    # An absurd amount (1e308 twice makes inf) must not turn every score into NaN.
    value = np.clip(np.nan_to_num(value, nan=0.0), -1e9, 1e9)
    bought = np.fromiter((bool(r[3]) for r in rows), dtype=bool, count=len(rows))
    recent_from, earlier_from = as_of - timedelta(days=30), as_of - timedelta(days=210)
    counts = conn.execute(
        select(
            _E.c.customer_id,
            func.sum(case((_E.c.occurred_at > recent_from, 1), else_=0)),
            func.sum(case((_E.c.occurred_at <= recent_from, 1), else_=0)),
        )
        .where(_E.c.occurred_at > earlier_from, _E.c.occurred_at < as_of)
        .group_by(_E.c.customer_id)
    ).all()
    facts = Facts(
        as_of=as_of,
        customers=customers,
        stages=stages,
        purchase_rows=(ids[bought], at[bought], value[bought]),
        event_rows=(ids, at, value),
        recent_events={c: int(r or 0) for c, r, _ in counts},
        earlier_events={c: int(e or 0) for c, _, e in counts},
        stays=stays,
        first_seen=first_seen,
    )
    answers = conn.execute(
        select(_F.c.customer_id, _F.c.kind, _F.c.responded_at, _F.c.score)
        .where(_F.c.responded_at < as_of, _F.c.responded_at > as_of - timedelta(days=365))
        .order_by(_F.c.customer_id, _F.c.responded_at.desc())
    )
    for cid, kind, at_, score in answers:
        if kind == "nps":
            seen = facts.nps.setdefault(cid, [])
            if len(seen) < 2:
                seen.append((at_, score))
        elif kind == "csat" and cid not in facts.csat:
            facts.csat[cid] = (at_, score)
    return facts


def purchases(
    facts: Facts,
    until: float | None = None,
    *,
    activity: bool = False,
    only: np.ndarray | None = None,
) -> Purchases:
    """Per-customer purchase summaries from the rows, up to `until` (days; default all);
    with `activity`, the same of every event of any kind; `only`: these customers."""
    ids, at, value = facts.event_rows if activity else facts.purchase_rows
    if until is not None:
        keep = at <= until
        ids, at, value = ids[keep], at[keep], value[keep]
    if only is not None:
        keep = np.isin(ids, only)
        ids, at, value = ids[keep], at[keep], value[keep]
    if len(ids) == 0:
        empty = np.zeros(0)
        return Purchases(np.zeros(0, dtype=np.int64), empty, empty, empty, empty, empty)
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    ends = np.r_[starts[1:], len(ids)]
    day = np.floor(at)
    new_day = np.r_[True, (ids[1:] != ids[:-1]) | (day[1:] != day[:-1])]
    return Purchases(
        ids=ids[starts],
        first=at[starts],
        last=at[ends - 1],
        days_bought=np.add.reduceat(new_day.astype(np.float64), starts),
        orders=(ends - starts).astype(np.float64),
        spent=np.add.reduceat(value, starts),
    )


def _stages(
    conn: Connection, as_of: datetime
) -> tuple[dict[int, StageFacts], dict[str, list[float]], dict[int, float]]:
    """Each customer's stage on `as_of` and since when, their last move if it went back,
    and every completed stay per stage (up to `as_of`)."""
    rows = conn.execute(
        select(_H.c.customer_id, _H.c.to_stage, _H.c.at, _H.c.basis)
        .where(_H.c.at < as_of)
        .order_by(_H.c.customer_id, _H.c.at, _H.c.id)
    )
    stages: dict[int, StageFacts] = {}
    stays: dict[str, list[float]] = defaultdict(list)
    first_seen: dict[int, float] = {}
    for cid, to_stage, at, basis in rows:
        current = stages.get(cid)
        if current is None:
            first_seen[cid] = days(at)
        if current is not None and current.stage == to_stage:
            continue  # a restatement of the stage they are in
        if current is not None:
            stays[current.stage].append((at - current.since).total_seconds() / DAY)
        # Only a move known to have happened then is a move back (not an import's guess).
        moved = current.stage if current is not None and basis == EXACT else None
        stages[cid] = StageFacts(to_stage, at, moved, at)
    return stages, dict(stays), first_seen
