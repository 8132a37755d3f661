"""The risk pass as it was before it was made to run at a million customers (its facts
read row by row through SQLAlchemy, its signals one customer at a time), kept verbatim so
that `test_same_as_before` can show the fast pass gives the same scores and reasons."""

# ruff: noqa

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy import Connection, case, func, select

from clmbot.config import LifecycleConfig
from clmbot.risk import rhythm
from clmbot.risk.settings import RiskConfig
from clmbot.risk.score import CustomerRisk
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


# The rhythm is a reason once it is past the customer's usual gap and this likely.
RHYTHM_SAYS = 0.5
MIN_STAYS = 10  # completed stays of a stage before "most move on within N days" is said


def score_all(
    conn: Connection, as_of: datetime, *, config: RiskConfig, lifecycle: LifecycleConfig
) -> list[CustomerRisk]:
    """Everyone who was a customer (not in a terminal stage) on `as_of`, highest risk first."""
    facts = load(conn, as_of, terminal=lifecycle.terminal)
    base, said = _rhythm(facts, config)
    order = {stage: i for i, stage in enumerate(lifecycle.stages)}
    stuck_stages = (
        config.stuck_stages if config.stuck_stages is not None else lifecycle.funnel_stages[:-2]
    )
    limits = {
        stage: float(np.quantile(stays, config.stuck_quantile))
        for stage, stays in facts.stays.items()
        if stage in stuck_stages and len(stays) >= MIN_STAYS
    }
    out = []
    for cid, (external_id, name) in facts.customers.items():
        parts: list[tuple[float, str]] = []
        if cid in base:
            parts.append((base[cid], said.get(cid, "")))
        parts += _signals(facts, cid, config, order, limits)
        keep = 1.0
        for weight, _ in parts:
            keep *= 1 - weight
        reasons = tuple(text for weight, text in sorted(parts, key=lambda p: -p[0]) if text)
        out.append(CustomerRisk(cid, external_id, name, round(100 * (1 - keep)), reasons))
    out.sort(key=lambda r: (-r.risk, r.external_id))
    return out


def _rhythm(facts: Facts, config: RiskConfig) -> tuple[dict[int, float], dict[int, str]]:
    """How likely each customer is to go inactive within the horizon, and the reason when it
    is one: buyers by their purchase rhythm, those who never bought by their activity, and
    those with no activity at all by how such customers did before."""
    now = days(facts.as_of)
    ids, at, _ = facts.event_rows
    # Learn over the horizon before `as_of`, or over the later half of the history when it
    # is shorter than two horizons: a model needs a past with customers of every age.
    span = now - float(at.min()) if len(at) else 0.0
    learn_over = min(config.horizon.days, span / 2)
    then = now - learn_over
    learn = learn_over >= rhythm.MIN_DAYS_TO_LEARN
    base: dict[int, float] = {}
    said: dict[int, str] = {}
    buyer_ids, buyer_at, _ = facts.purchase_rows
    buyers_then, buyers_now = np.unique(buyer_ids[buyer_at <= then]), np.unique(buyer_ids)
    for activity in (False, True):
        train = scored = None
        if activity:  # those who never bought, by any event
            train = np.setdiff1d(np.unique(ids[at <= then]), buyers_then)
            scored = np.setdiff1d(np.unique(ids), buyers_now)
        rows_ids, rows_at, _ = facts.event_rows if activity else facts.purchase_rows
        before = purchases(facts, until=then, activity=activity, only=train)
        model = (
            rhythm.fit(before, then, np.unique(rows_ids[rows_at > then]))
            if learn
            else rhythm.Model(None, np.zeros(0), np.zeros(0), 0)
        )
        current = purchases(facts, activity=activity, only=scored)
        p = model.p_inactive(current, now)
        r = rhythm.rhythm(current, now)
        what = "activity" if activity else "purchase"
        for i, cid in enumerate(current.ids.tolist()):
            if cid not in facts.customers:
                continue
            base[cid] = float(p[i])
            recency = r.recency[i]
            gap = r.own_gap[i] if r.own[i] else r.gap[i]
            if p[i] < RHYTHM_SAYS or recency <= gap:
                continue
            if r.own[i]:
                said[cid] = f"no {what} for {recency:.0f} days, usually every {gap:.0f}"
            elif current.days_bought[i] == 1:
                said[cid] = (
                    f"no {what} since their first, {recency:.0f} days ago; customers who "
                    f"come back usually do within {r.everyone:.0f}"
                )
            else:
                said[cid] = (
                    f"no {what} for {recency:.0f} days; customers usually "
                    f"{'buy' if not activity else 'are active'} every {r.everyone:.0f}"
                )
    _never_active(facts, then, now, base, said)
    return base, said


def _never_active(
    facts: Facts, then: float, now: float, base: dict[int, float], said: dict[int, str]
) -> None:
    """Customers with no event at all: as likely to stay so as such customers were before."""
    ids, at, _ = facts.event_rows
    active_then = set(np.unique(ids[at <= then]).tolist())
    active_after = set(np.unique(ids[at > then]).tolist())
    quiet_then = [
        c for c, seen in facts.first_seen.items() if seen <= then and c not in active_then
    ]
    prior = sum(c not in active_after for c in quiet_then) / len(quiet_then) if quiet_then else 0.5
    for cid in facts.customers:
        if cid in base:
            continue
        base[cid] = prior
        since = now - facts.first_seen.get(cid, now)
        if prior >= RHYTHM_SAYS:
            said[cid] = f"no activity recorded since they became a customer, {since:.0f} days ago"


def _signals(
    facts: Facts,
    cid: int,
    config: RiskConfig,
    order: dict[str, int],
    limits: dict[str, float],
) -> list[tuple[float, str]]:
    out: list[tuple[float, str]] = []
    nps = facts.nps.get(cid)
    if nps:
        (at, latest), previous = nps[0], (nps[1][1] if len(nps) > 1 else None)
        if previous is not None and previous - latest >= 3:
            out.append((config.detractor, f"NPS fell from {previous} to {latest}"))
        elif latest <= 6:
            out.append((config.detractor, f"NPS {latest} on {at:%Y-%m-%d}, a detractor"))
    csat = facts.csat.get(cid)
    if csat and csat[1] <= 2:
        out.append((config.unhappy_csat, f"CSAT {csat[1]} on {csat[0]:%Y-%m-%d}"))
    stage = facts.stages.get(cid)
    if stage is not None:
        stayed = (facts.as_of - stage.since).total_seconds() / 86400
        limit = limits.get(stage.stage)
        if limit is not None and stayed > limit:
            out.append(
                (
                    config.stuck,
                    f"in {stage.stage} for {stayed:.0f} days, most move on within "
                    f"{max(limit, 1):.0f}",
                )
            )
        back = stage.moved_back_from
        if (
            back is not None
            and order.get(back, -1) > order.get(stage.stage, 99)
            and stage.moved_at is not None
            and facts.as_of - stage.moved_at <= config.horizon
        ):
            ago = (facts.as_of - stage.moved_at).days
            out.append(
                (
                    config.moved_back,
                    f"moved back from {back} to {stage.stage} {ago} days ago",
                )
            )
    earlier = facts.earlier_events.get(cid, 0)
    usual = earlier / 6  # a month's worth of the 180 days before the last 30
    recent = facts.recent_events.get(cid, 0)
    if usual >= 2 and recent <= usual / 2:
        plural = "" if recent == 1 else "s"
        out.append(
            (
                config.activity_fall,
                f"activity fell: {recent} event{plural} in the last 30 days, usually {usual:.0f}",
            )
        )
    return [(w, text) for w, text in out if w > 0]
