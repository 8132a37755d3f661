"""The churn risk of every customer as of a date: 0-100, with its reasons in plain words.

The purchase rhythm gives the base (how likely they buy nothing within the horizon,
`clmbot.risk.rhythm`); each other signal that holds adds its weight from `[risk]` as an
independent chance: risk = 1 - (1 - base) x (1 - w1) x (1 - w2) ... Reasons are listed by how
much they add, so the first is the main one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sqlalchemy import Connection

from clmbot.config import LifecycleConfig
from clmbot.risk import rhythm
from clmbot.risk.facts import Facts, days, load, purchases
from clmbot.risk.settings import RiskConfig

# The rhythm is a reason once it is past the customer's usual gap and this likely.
RHYTHM_SAYS = 0.5
MIN_STAYS = 10  # completed stays of a stage before "most move on within N days" is said


@dataclass(frozen=True)
class CustomerRisk:
    customer_id: int
    external_id: str
    name: str
    risk: int
    reasons: tuple[str, ...]


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
