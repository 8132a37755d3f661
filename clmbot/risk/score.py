"""The churn risk of every customer as of a date: 0-100, with its reasons in plain words.

The purchase rhythm gives the base (how likely they buy nothing within the horizon,
`clmbot.risk.rhythm`); each other signal that holds adds its weight from `[risk]` as an
independent chance: risk = 1 - (1 - base) x (1 - w1) x (1 - w2) ... Reasons are listed by how
much they add, so the first is the main one.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sqlalchemy import Connection, Engine

from clmbot.config import LifecycleConfig
from clmbot.risk import rhythm
from clmbot.risk.facts import (
    US_PER_DAY,
    Events,
    Facts,
    Purchases,
    days,
    horizon_us,
    load,
    micros,
    purchases,
    seconds,
)
from clmbot.risk.rows import quiet_gc
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


@dataclass(frozen=True)
class Scores:
    """Everyone scored, as columns in customer id order: a million `CustomerRisk` objects
    cost more than the scoring, and a stored run needs none. `rows` ranks them, highest
    risk first, then by external id; the morning's pass wants only its ten highest, and
    ranking a million took longer than storing them."""

    ids: list[int]
    external_ids: list[str]
    names: list[str]
    risk: list[int]
    reasons: list[tuple[str, ...]]

    def __len__(self) -> int:
        return len(self.ids)

    def at_or_above(self, threshold: int) -> int:
        return sum(r >= threshold for r in self.risk)

    def rows(self, start: int = 0, stop: int | None = None) -> list[CustomerRisk]:
        """The `start`-th to `stop`-th highest."""
        n = len(self.ids)
        stop = n if stop is None else min(stop, n)
        if stop <= start:
            return []
        candidates: Iterable[int] = range(n)
        if stop < n // 2:
            # Those above the stop-th highest risk are all in; of those tied with it, only
            # the first by external id. Half a million tied at 100 (a shop that went quiet)
            # took 0.4 s to sort whole.
            risk = np.array(self.risk, dtype=np.int64)
            floor = np.partition(risk, n - stop)[n - stop]
            above = np.flatnonzero(risk > floor).tolist()
            tied = heapq.nsmallest(
                stop - len(above),
                np.flatnonzero(risk == floor).tolist(),
                key=self.external_ids.__getitem__,
            )
            candidates = above + tied
        ranked = sorted(candidates, key=lambda i: (-self.risk[i], self.external_ids[i]))
        return [
            CustomerRisk(
                self.ids[i], self.external_ids[i], self.names[i], self.risk[i], self.reasons[i]
            )
            for i in ranked[start:stop]
        ]


def score_all(
    conn: Connection, as_of: datetime, *, config: RiskConfig, lifecycle: LifecycleConfig
) -> list[CustomerRisk]:
    """Everyone who was a customer (not in a terminal stage) on `as_of`, highest risk first."""
    return score(conn, as_of, config=config, lifecycle=lifecycle).rows()


def score(
    conn: Connection,
    as_of: datetime,
    *,
    config: RiskConfig,
    lifecycle: LifecycleConfig,
    engine: Engine | None = None,
) -> Scores:
    """`score_all` as columns. Each customer's chance of going inactive is combined from its
    parts by the same float operations in the same order as one customer at a time would
    be, array by array, so the scores are the same to the last bit. With `engine`, reads
    that need nothing of each other run at once (`facts.load`)."""
    # A million customers' reasons are a million small tuples, none of them garbage: the
    # collector walking them again and again cost more than making them.
    with quiet_gc():
        return _score(conn, as_of, config, lifecycle, engine)


def _score(
    conn: Connection,
    as_of: datetime,
    config: RiskConfig,
    lifecycle: LifecycleConfig,
    engine: Engine | None,
) -> Scores:
    learned: list[_Learned] = []

    def learn(events: Events) -> None:
        learned.clear()  # learned again from more events: the first is a million summaries
        learned.append(_learn(events, config))

    facts = load(conn, as_of, terminal=lifecycle.terminal, engine=engine, on_events=learn)
    n = len(facts.ids)
    base, said = _rhythm(facts, learned[-1])  # from every event read
    keep = np.ones(n) * (1 - base)
    reasons: list[tuple[str, ...]] = [()] * n
    for i, text in said.items():
        reasons[i] = (text,)
    # Where a signal holds too, every reason with its weight, in the order the parts are
    # combined: the rhythm first, then each signal (a stable sort by weight keeps that
    # order for ties).
    parts: dict[int, list[tuple[float, str]]] = {}
    for weight, hits in _signals(facts, config, lifecycle):
        if weight <= 0 or not hits:
            continue
        held = np.fromiter(hits, dtype=np.int64, count=len(hits))
        keep[held] *= 1 - weight
        for i, text in hits.items():
            listed = parts.get(i)
            if listed is None:
                listed = parts[i] = [(float(base[i]), said[i])] if i in said else []
            listed.append((weight, text))
    for i, listed in parts.items():
        if len(listed) == 1:
            reasons[i] = (listed[0][1],)
        else:
            reasons[i] = tuple(t for _, t in sorted(listed, key=lambda p: -p[0]))
    risk = np.rint(100 * (1 - keep)).astype(np.int64)
    return Scores(facts.ids.tolist(), facts.external_ids, facts.names, risk.tolist(), reasons)


def _positions(scored: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each of `ids` is among the `scored` (sorted): a mask of those that are, and
    their positions."""
    at = np.searchsorted(scored, ids)
    inside = at < len(scored)
    inside[inside] = scored[at[inside]] == ids[inside]
    return inside, at[inside]


def whole(values: np.ndarray) -> list[int | str]:
    """Each value as `f"{v:.0f}"` writes it, for `f"{w}"`: a whole number for each finite
    value from 0 to 2**53 (rounded half to even, as that format does), else that format's
    own text ("-0", "nan", "inf"). Formatting a million floats took three times as long as
    formatting the same whole numbers, and a day's pass words nearly every customer."""
    plain = np.isfinite(values) & ~np.signbit(values) & (values < 2.0**53)
    found: list[int | str] = np.rint(np.where(plain, values, 0.0)).astype(np.int64).tolist()
    for i in np.flatnonzero(~plain).tolist():
        found[i] = f"{values[i]:.0f}"
    return found


def _places(scored: np.ndarray, ids: Iterable[int]) -> list[int]:
    """Where each of `ids` is among the `scored` (sorted), or -1: a dict of a million
    positions to look them up in took longer than the look-ups."""
    found = np.fromiter(ids, dtype=np.int64)
    inside, at = _positions(scored, found)
    places = np.full(len(found), -1, dtype=np.int64)
    places[inside] = at
    return places.tolist()


@dataclass(frozen=True)
class _Learned:
    """What the rhythm models say, from the events alone: of those who bought, by their
    purchases, and of those who never did, by any activity (`activity`)."""

    now: float  # days
    then: float  # where the past they learned from ends
    # (activity, each customer's summary, how likely each goes inactive, their rhythm)
    parts: list[tuple[bool, Purchases, np.ndarray, rhythm.Rhythm]]
    active_then: np.ndarray  # customers with an event up to `then`
    active_after: np.ndarray  # and after it


def _spans(ids: np.ndarray, at: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each customer of rows sorted by customer and time, and their first and last time:
    who had a row up to a day, or after it, without a pass over every row for each."""
    if len(ids) == 0:
        return ids, at, at
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    ends = np.r_[starts[1:], len(ids)] - 1
    return ids[starts], at[starts], at[ends]


def _learn(events: Events, config: RiskConfig) -> _Learned:
    """Fit the rhythm models and apply them to everyone with events. Called by the load as
    soon as the events are in (`facts.load`'s `on_events`), so that the fit goes on while
    the customers and the stage history are still being read."""
    now = days(events.as_of)
    ids, at, _ = events.event_rows
    # Learn over the horizon before `as_of`, or over the later half of the history when it
    # is shorter than two horizons: a model needs a past with customers of every age.
    span = now - float(at.min()) if len(at) else 0.0
    learn_over = min(config.horizon.days, span / 2)
    then = now - learn_over
    learn = learn_over >= rhythm.MIN_DAYS_TO_LEARN
    active, active_first, active_last = _spans(ids, at)
    buyers, bought_first, bought_last = _spans(*events.purchase_rows[:2])
    active_then = active[active_first <= then]
    buyers_then = buyers[bought_first <= then]
    parts = []
    for activity in (False, True):
        train = scored = None
        if activity:  # those who never bought, by any event
            train = np.setdiff1d(active_then, buyers_then, assume_unique=True)
            scored = np.setdiff1d(active, buyers, assume_unique=True)
        who, last = (active, active_last) if activity else (buyers, bought_last)
        before = purchases(events, until=then, activity=activity, only=train)
        model = (
            rhythm.fit(before, then, who[last > then])
            if learn
            else rhythm.Model(None, np.zeros(0), np.zeros(0), 0)
        )
        current = purchases(events, activity=activity, only=scored)
        parts.append(
            (activity, current, model.p_inactive(current, now), rhythm.rhythm(current, now))
        )
    return _Learned(now, then, parts, active_then, active[active_last > then])


def _rhythm(facts: Facts, learned: _Learned) -> tuple[np.ndarray, dict[int, str]]:
    """How likely each customer is to go inactive within the horizon, and the reason when it
    is one: buyers by their purchase rhythm, those who never bought by their activity, and
    those with no activity at all by how such customers did before."""
    base = np.full(len(facts.ids), np.nan)
    said: dict[int, str] = {}
    for activity, current, p, r in learned.parts:
        inside, at_ = _positions(facts.ids, current.ids)
        base[at_] = p[inside]
        gap = np.where(r.own, r.own_gap, r.gap)
        says = np.flatnonzero(inside & ~(p < RHYTHM_SAYS) & ~(r.recency <= gap))
        what = "activity" if activity else "purchase"
        usually = "buy" if not activity else "are active"
        everyone = f"{r.everyone:.0f}"
        for i, recency, g, own, once in zip(
            np.searchsorted(facts.ids, current.ids[says]).tolist(),
            whole(r.recency[says]),
            whole(gap[says]),
            r.own[says].tolist(),
            (current.days_bought[says] == 1).tolist(),
            strict=True,
        ):
            if own:
                said[i] = f"no {what} for {recency} days, usually every {g}"
            elif once:
                said[i] = (
                    f"no {what} since their first, {recency} days ago; customers who "
                    f"come back usually do within {everyone}"
                )
            else:
                said[i] = (
                    f"no {what} for {recency} days; customers usually {usually} every {everyone}"
                )
    _never_active(facts, learned, base, said)
    return base, said


def _never_active(facts: Facts, learned: _Learned, base: np.ndarray, said: dict[int, str]) -> None:
    """Customers with no event at all: as likely to stay so as such customers were before."""
    now, then = learned.now, learned.then
    seen = facts.first_seen_ids[facts.first_seen <= then]
    quiet_then = seen[~np.isin(seen, learned.active_then, assume_unique=True)]
    gone = int((~np.isin(quiet_then, learned.active_after, assume_unique=True)).sum())
    prior = gone / len(quiet_then) if len(quiet_then) else 0.5
    rest = np.flatnonzero(np.isnan(base))
    base[rest] = prior
    if prior < RHYTHM_SAYS or len(rest) == 0:
        return
    _, at_ = _positions(facts.first_seen_ids, facts.ids[rest])
    for i, since in zip(rest.tolist(), whole(now - facts.first_seen[at_]), strict=True):
        said[i] = f"no activity recorded since they became a customer, {since} days ago"


def _signals(
    facts: Facts, config: RiskConfig, lifecycle: LifecycleConfig
) -> list[tuple[float, dict[int, str]]]:
    """Each signal's weight and the customers it holds for (by position), with the reason."""
    detractor: dict[int, str] = {}
    for i, nps in zip(_places(facts.ids, facts.nps), facts.nps.values(), strict=True):
        if i < 0 or not nps:
            continue
        (at, latest), previous = nps[0], (nps[1][1] if len(nps) > 1 else None)
        if previous is not None and previous - latest >= 3:
            detractor[i] = f"NPS fell from {previous} to {latest}"
        elif latest <= 6:
            detractor[i] = f"NPS {latest} on {at:%Y-%m-%d}, a detractor"
    unhappy: dict[int, str] = {}
    for i, (at, csat) in zip(_places(facts.ids, facts.csat), facts.csat.values(), strict=True):
        if i >= 0 and csat <= 2:
            unhappy[i] = f"CSAT {csat} on {at:%Y-%m-%d}"
    as_of_us = micros(facts.as_of)
    stage = facts.stages
    stuck_stages = (
        config.stuck_stages if config.stuck_stages is not None else lifecycle.funnel_stages[:-2]
    )
    limits = {
        name: float(np.quantile(stays, config.stuck_quantile))
        for name, stays in facts.stays.items()
        if name in stuck_stages and len(stays) >= MIN_STAYS
    }
    stuck: dict[int, str] = {}
    if limits:
        stayed = seconds(as_of_us - stage.since) / 86400
        limit = np.array([limits.get(s, np.nan) for s in stage.stage])
        held = np.flatnonzero(stayed > limit)
        for i, days_in, within in zip(
            held.tolist(), whole(stayed[held]), whole(np.maximum(limit[held], 1)), strict=True
        ):
            stuck[i] = f"in {stage.stage[i]} for {days_in} days, most move on within {within}"
    order = {name: i for i, name in enumerate(lifecycle.stages)}
    horizon = horizon_us(config.horizon)
    moved_back: dict[int, str] = {}
    for i, back in enumerate(stage.moved_back_from):
        if back is None or order.get(back, -1) <= order.get(stage.stage[i], 99):
            continue
        ago = as_of_us - int(stage.since[i])
        if ago <= horizon:
            moved_back[i] = (
                f"moved back from {back} to {stage.stage[i]} {ago // US_PER_DAY} days ago"
            )
    usual = facts.earlier_events / 6  # a month's worth of the 180 days before the last 30
    recent = facts.recent_events
    fell: dict[int, str] = {}
    held = np.flatnonzero((usual >= 2) & (recent <= usual / 2))
    for i, r, month in zip(held.tolist(), recent[held].tolist(), whole(usual[held]), strict=True):
        fell[i] = (
            f"activity fell: {r} event{'' if r == 1 else 's'} in the last 30 days, usually {month}"
        )
    return [
        (config.detractor, detractor),
        (config.unhappy_csat, unhappy),
        (config.stuck, stuck),
        (config.moved_back, moved_back),
        (config.activity_fall, fell),
    ]
