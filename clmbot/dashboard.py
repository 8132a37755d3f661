"""The App Home tab's dashboard: what one team member sees when they open the bot.

Four questions a retention lead asks first thing, each answered by the services the
commands use, for one viewer at one moment (`now`, the bot's clock):

- which of *my* customers are drifting toward churn (the latest stored risk pass, as
  `/clm at-risk owner:@me` lists them), and by how much their risk moved since the pass
  before;
- how the team's NPS and CSAT stand (each customer's latest answer over the last 90 days,
  against the 90 days before) and how they went month by month;
- the funnel: customers per stage now, and the conversions of the last 90 days (the same
  numbers as `/clm funnel`);
- the surveys in flight: what is queued, what waits for an answer, and each recent run.

Rebuilt on every opening, so it has to be cheap at 100,000 customers
(bench/bench_home.py). The costly part is the funnel: `lifecycle.funnel` works out every
customer's stays from the whole stage history (2 s at that size). Here the same numbers come
from the customers' stage and the history of those who moved in the period only;
tests/test_dashboard.py checks that they equal `lifecycle.funnel`'s on random histories.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlmodel import Session

from clmbot.config import LifecycleConfig, Settings
from clmbot.feedback.months import month_start, months
from clmbot.feedback.queries import KINDS, Kind, latest_answers, tallies, to_score
from clmbot.feedback.reports import MonthScore
from clmbot.feedback.scores import Score
from clmbot.feedback.trend import month_counts
from clmbot.lifecycle import DEFAULT_FUNNEL_PERIOD
from clmbot.risk.stored import AT_RISK_ORDER, latest_run_id
from clmbot.segments.query import _can_materialise
from clmbot.store.models import (
    QUEUED,
    SENDING,
    SENT,
    Customer,
    RiskRun,
    RiskScore,
    StageChange,
    Survey,
)
from clmbot.surveys.status import RunStatus, run_statuses

# How many of the viewer's customers at risk are listed; `/clm at-risk owner:@me` has them all.
RISK_SHOWN = 5
# NPS and CSAT: each customer's latest answer over this long, against the same length before.
SCORE_PERIOD = timedelta(days=90)
# Calendar months of the NPS and CSAT trend, this one included.
TREND_MONTHS = 6
# The funnel's conversions: the same period as `/clm funnel` without `since`, so that the
# two agree.
FUNNEL_PERIOD = DEFAULT_FUNNEL_PERIOD
# Survey runs listed, newest first.
SURVEY_RUNS_SHOWN = 4

_H = StageChange.__table__
_S = RiskScore.__table__
_R = RiskRun.__table__


# --- what the tab shows ------------------------------------------------------------------


@dataclass(frozen=True)
class RiskLine:
    """One of the viewer's customers at risk. `previous`: their risk in the pass before the
    latest (None when they were not scored then, or there was no pass before)."""

    external_id: str
    name: str
    risk: int
    previous: int | None
    reasons: tuple[str, ...]
    mrr: float | None

    @property
    def change(self) -> int | None:
        return None if self.previous is None else self.risk - self.previous


@dataclass(frozen=True)
class MyRisk:
    """The viewer's customers in the latest stored risk pass. `day` is None when no pass has
    finished yet (the morning job stores one each day). `total`: theirs at or above the
    threshold, of whom `lines` are the highest; `mrr`: what those `total` pay; `owned`:
    every customer they own. `previous_day`: the pass `change` is measured against."""

    day: date | None
    threshold: int
    lines: tuple[RiskLine, ...]
    total: int
    mrr: float
    owned: int
    previous_day: date | None = None


@dataclass(frozen=True)
class ScoreCard:
    """NPS or CSAT for the whole team. `current`: each customer's latest answer in
    [since, now]; `previous`: the same over the period of the same length just before;
    `trend`: every answer, by calendar month in the team's zone, the last `TREND_MONTHS`."""

    kind: Kind
    since: datetime
    now: datetime
    current: Score
    previous: Score
    trend: tuple[MonthScore, ...]

    @property
    def change(self) -> float | None:
        """Points (NPS) or percentage points (CSAT) since the period before."""
        if self.current.score is None or self.previous.score is None:
            return None
        return self.current.score - self.previous.score


@dataclass(frozen=True)
class StageCount:
    stage: str
    customers: int  # in the stage at `now`


@dataclass(frozen=True)
class Step:
    """From one funnel stage to the next, over the period: of the `base` customers who were
    in `from_stage` at some time in it, `converted` went on to `to_stage` or further."""

    from_stage: str
    to_stage: str
    base: int
    converted: int

    @property
    def rate(self) -> float | None:
        return self.converted / self.base if self.base else None


@dataclass(frozen=True)
class FunnelGlance:
    """What `lifecycle.funnel` says of customers per stage and conversions, without the
    stays' medians (which need every stay)."""

    since: datetime
    now: datetime
    stages: tuple[StageCount, ...]
    steps: tuple[Step, ...]

    @property
    def total(self) -> int:
        return sum(s.customers for s in self.stages)


@dataclass(frozen=True)
class SurveysInFlight:
    """`queued`: waiting to go out (their hours, or the sender); `waiting`: delivered, not
    answered yet; both over every run. `runs`: the latest, newest first, of `total_runs`."""

    queued: int
    waiting: int
    runs: tuple[RunStatus, ...]
    total_runs: int


@dataclass(frozen=True)
class Dashboard:
    viewer: str
    now: datetime
    risk: MyRisk
    scores: tuple[ScoreCard, ...]  # NPS, then CSAT
    funnel: FunnelGlance
    surveys: SurveysInFlight


def dashboard(session: Session, settings: Settings, viewer: str, now: datetime) -> Dashboard:
    """The Home tab of `viewer` (a Slack user id) at `now`: their own customers at risk, and
    the team's scores, funnel and surveys. Only reads."""
    return Dashboard(
        viewer=viewer,
        now=now,
        risk=my_risk(session, viewer, now=now, threshold=settings.risk.threshold),
        scores=tuple(score_card(session, kind, now=now, zone=settings.timezone) for kind in KINDS),
        funnel=funnel_glance(
            session, since=now - FUNNEL_PERIOD, now=now, lifecycle=settings.lifecycle
        ),
        surveys=surveys_in_flight(session),
    )


# --- my customers at risk -------------------------------------------------------------------


def my_risk(session: Session, viewer: str, *, now: datetime, threshold: int) -> MyRisk:
    """The viewer's customers at or above `threshold` in the latest pass, as `/clm at-risk
    owner:@me` lists them (highest first), with the change since the pass before.

    The latest pass is looked up once, and every later statement reads that run by its id:
    on PostgreSQL each statement sees what was committed when it began, so a pass finishing
    meanwhile would otherwise lend the others its risks, its MRR or its "pass before"."""
    run = session.execute(
        select(_R.c.id, _R.c.day, _R.c.as_of).where(_R.c.id == latest_run_id(now))
    ).first()
    if run is None:
        return MyRisk(None, threshold, (), 0, 0.0, _owned(session, viewer))
    mine = and_(Customer.owner_slack_id == viewer, Customer.forgotten_at.is_(None))
    high = _S.c.risk >= threshold
    owned, total, mrr = session.execute(
        select(
            func.count(),
            func.count().filter(high),
            func.coalesce(func.sum(Customer.mrr).filter(high), 0),
        )
        .select_from(Customer.__table__)
        .outerjoin(_S, and_(_S.c.customer_id == Customer.id, _S.c.run_id == run.id))
        .where(mine)
    ).one()
    rows = session.execute(
        select(Customer.external_id, Customer.name, _S.c.risk, _S.c.reasons, Customer.mrr)
        .join(_S, _S.c.customer_id == Customer.id)
        .where(_S.c.run_id == run.id, high, mine)
        .order_by(*AT_RISK_ORDER)
        .limit(RISK_SHOWN)
    ).all()
    previous_day, before = _previous_risks(session, run.as_of, [r.external_id for r in rows])
    lines = tuple(
        RiskLine(
            r.external_id, r.name, r.risk, before.get(r.external_id), tuple(r.reasons or ()), r.mrr
        )
        for r in rows
    )
    return MyRisk(run.day, threshold, lines, int(total), float(mrr or 0), int(owned), previous_day)


def _owned(session: Session, viewer: str) -> int:
    return int(
        session.execute(
            select(func.count()).where(
                Customer.owner_slack_id == viewer, Customer.forgotten_at.is_(None)
            )
        ).scalar()
        or 0
    )


def _previous_risks(
    session: Session, latest_as_of: datetime, external_ids: list[str]
) -> tuple[date | None, dict[str, int]]:
    """The pass before the latest (the one finished last with an earlier `as_of` than the
    latest's, `latest_as_of`, as the digest measures a rise), and the risk it gave each of
    `external_ids`."""
    before = session.execute(
        select(_R.c.id, _R.c.day)
        .where(_R.c.finished_at.is_not(None), _R.c.as_of < latest_as_of)
        .order_by(_R.c.as_of.desc(), _R.c.id.desc())
        .limit(1)
    ).first()
    if before is None:
        return None, {}
    if not external_ids:
        return before.day, {}
    risks = session.execute(
        select(Customer.external_id, _S.c.risk)
        .join(_S, _S.c.customer_id == Customer.id)
        .where(_S.c.run_id == before.id, Customer.external_id.in_(external_ids))
    ).all()
    return before.day, {external_id: risk for external_id, risk in risks}


# --- NPS and CSAT ----------------------------------------------------------------------------


def score_card(session: Session, kind: Kind, *, now: datetime, zone: tzinfo) -> ScoreCard:
    """The team's `kind` over the last `SCORE_PERIOD`, the period before it, and the trend of
    the last `TREND_MONTHS` calendar months (in `zone`), from the queries `/clm nps` runs."""
    since = now - SCORE_PERIOD
    # The period before ends just before this one starts: no answer counts in both.
    previous = _current(session, kind, since - SCORE_PERIOD, since - timedelta(microseconds=1))
    first = now.astimezone(zone).date().replace(day=1)
    for _ in range(TREND_MONTHS - 1):
        first = (first - timedelta(days=1)).replace(day=1)
    spans = months(month_start(first, zone), now, zone)
    counts = month_counts(session, kind, spans, None)
    trend = tuple(
        MonthScore(span.month, span.start, span.end, to_score(kind, *found))
        for span, found in zip(spans, counts, strict=True)
    )
    return ScoreCard(kind, since, now, _current(session, kind, since, now), previous, trend)


def _current(session: Session, kind: Kind, since: datetime, now: datetime) -> Score:
    """Each customer's latest answer of `kind` in [since, now], scored (as `report` does)."""
    latest = latest_answers(session, kind, since, now, None)
    n, good, bad = session.execute(select(*tallies(kind, latest.c.score))).one()
    return to_score(kind, n, good, bad)


# --- the funnel --------------------------------------------------------------------------------


def funnel_glance(
    session: Session, *, since: datetime, now: datetime, lifecycle: LifecycleConfig
) -> FunnelGlance:
    """Customers per stage at `now`, and the conversions over [since, now], as
    `lifecycle.funnel` counts them (see there for what they mean), without working out
    every stay.

    The customers per stage start from one index scan of `customers.stage`, corrected by
    the history of the few whose stage changed since `since` (see `_movers`): those with a
    row in the period, whose order decides the conversions, and those with a row after
    `now` (an earlier `now`), whose stage then was another. Each of these is taken out of
    the stage `customers.stage` gives and put in the one their history gives at `now`:
    the two differ when a move was written before an import's future-dated first stage
    (`stage_since` may be up to a day ahead), and `lifecycle.funnel` goes by the history.
    A history row in a stage clmbot.toml no longer names puts its customer in no stage.

    Everyone else was in their stage all through the period: they count in its conversion
    base, and convert nowhere. That takes `customers.stage` to be the stage their latest
    row entered, which every writer keeps, save the move before a future-dated first stage
    above: once both rows are before `since`, such a customer counts in the stage of the
    move here and in that of the import's row in `lifecycle.funnel`.

    It also takes every customer to have a history: the imports, the one way customers
    come in, write their first stage. One written by another tool without any counts here
    in its stage's base, and in its stage even at a `now` before it was created, where
    `lifecycle.funnel` counts it in no base, and only from its creation. Finding them
    means looking in the history for every customer (a NOT EXISTS on its customer index:
    about 55 ms at 100,000 customers, on SQLite as on PostgreSQL, bench/bench_home.py's
    data), and `customers.created_at` has no index (reading it: 60 ms more on SQLite): too
    dear for a tab rebuilt at every opening, for customers no writer of ours makes.
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
    steps = tuple(
        Step(stages[i], stages[i + 1], base[i] + stayed[stages[i]], converted[i])
        for i in range(pairs)
    )
    return FunnelGlance(
        since, now, tuple(StageCount(s, at_now[s]) for s in lifecycle.stages), steps
    )


# A history row's stage that `clmbot.toml` no longer names (renamed, or dropped): not NULL,
# which stands for "no row" (before a customer's first), and matches no configured stage.
_UNCONFIGURED = -1


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
    if _can_materialise(session):
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


# --- surveys -----------------------------------------------------------------------------------


def surveys_in_flight(session: Session) -> SurveysInFlight:
    """Every survey not yet answered, expired or cancelled, by where it stands; and the latest
    runs as `/clm survey status` counts them."""
    counts = dict(
        session.execute(
            select(Survey.status, func.count())
            .where(Survey.status.in_((QUEUED, SENDING, SENT)))
            .group_by(Survey.status)
        ).all()
    )
    runs, total = run_statuses(session, limit=SURVEY_RUNS_SHOWN)
    return SurveysInFlight(
        queued=int(counts.get(QUEUED, 0)) + int(counts.get(SENDING, 0)),
        waiting=int(counts.get(SENT, 0)),
        runs=tuple(runs),
        total_runs=int(total),
    )
