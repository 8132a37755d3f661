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
from clmbot.risk.stored import AtRisk, at_risk, latest_run_id
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
    owner:@me` lists them (highest first), with the change since the pass before."""
    mine = Customer.owner_slack_id == viewer
    page = at_risk(session, now=now, threshold=threshold, where=mine, limit=RISK_SHOWN)
    if page.day is None:
        return MyRisk(None, threshold, (), 0, 0.0, _owned(session, viewer))
    latest = latest_run_id(now)
    scored = and_(_S.c.customer_id == Customer.id, _S.c.run_id == latest)
    owned, mrr = session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(Customer.mrr).filter(_S.c.risk >= threshold), 0),
        )
        .select_from(Customer.__table__)
        .outerjoin(_S, scored)
        .where(mine, Customer.forgotten_at.is_(None))
    ).one()
    previous_day, before = _previous_risks(session, now, page.rows)
    lines = tuple(
        RiskLine(r.external_id, r.name, r.risk, before.get(r.external_id), r.reasons, r.mrr)
        for r in page.rows
    )
    return MyRisk(page.day, threshold, lines, page.total, float(mrr or 0), int(owned), previous_day)


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
    session: Session, now: datetime, rows: list[AtRisk]
) -> tuple[date | None, dict[str, int]]:
    """The pass before the latest (the one finished last with an earlier `as_of`, as the
    digest measures a rise), and the risk it gave each of `rows`."""
    latest_as_of = select(_R.c.as_of).where(_R.c.id == latest_run_id(now)).scalar_subquery()
    before = session.execute(
        select(_R.c.id, _R.c.day)
        .where(_R.c.finished_at.is_not(None), _R.c.as_of < latest_as_of)
        .order_by(_R.c.as_of.desc(), _R.c.id.desc())
        .limit(1)
    ).first()
    if before is None:
        return None, {}
    if not rows:
        return before.day, {}
    risks = session.execute(
        select(Customer.external_id, _S.c.risk)
        .join(_S, _S.c.customer_id == Customer.id)
        .where(_S.c.run_id == before.id, Customer.external_id.in_([r.external_id for r in rows]))
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

    A customer's stage is the one their latest history row entered: every writer keeps it
    so (moves, and the imports of customers and of stage history). So the customers per
    stage are one index scan of `customers`, corrected by the history of the few whose
    stage changed since `since` (see `_movers`): those with a row in the period, whose order
    decides the conversions, and those with a row after `now` (an earlier `now`), whose
    stage then was another. Everyone else was in their stage all through the period: they
    count in its conversion base, and convert nowhere.

    This takes every customer to have a history: the imports, the one way customers come
    in, write their first stage. (One written by another tool without any would count in
    its stage's base here, and not in `lifecycle.funnel`'s.)
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
        current, then, count, counts = row[0], row[1], int(row[2]), row[3:]
        if current is not None:
            at_now[lifecycle.stages[current]] -= count
            stayed[lifecycle.stages[current]] -= count
        if then is not None:
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


def _movers(
    session: Session, since: datetime, now: datetime, lifecycle: LifecycleConfig
) -> list[Any]:
    """The customers with a history row at or after `since` ("movers"), counted by their
    stage now (the one their latest row entered) and their stage at `now` (their latest row
    up to then; None before their first), as indexes in `lifecycle.stages`: (current, then,
    movers, then for each pair of consecutive funnel stages A → B: those in A at some time
    in [since, now], and of them those who, after first being in A in it, entered B or a
    later funnel stage in it).

    A mover's period is the stage they were in when it began (`s0`: their latest row before
    it, if any), then their rows in it, in order (time, then id, as `lifecycle.funnel`
    orders them). A is reached when s0 or one of the rows is A; converted when a row entering
    a later stage follows. (A row that enters the stage the row before it entered starts no
    stay in `lifecycle.funnel`, and changes neither answer: the stay it continues counts
    already, and the first row entering a later stage always follows one of another stage.)

    A mover's rows in the period are numbered from the latest back (`back`: 1 is the
    latest), and apart from them their rows after `now` (when `now` is in the past): one
    window gives the order in the period, the stage at `now` and the stage now. s0 is looked
    up once per mover, after the grouping; the grouped rows are materialised first, or
    SQLite would inline the look-up into every expression that reads it.
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
            case(every, value=_H.c.to_stage).label("stage"),
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
        func.max(case((and_(~period, moves.c.back == 1), moves.c.stage))).label("after_stage"),
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
    per = select(grouped, s0.label("s0")).cte("movers").prefix_with("MATERIALIZED")
    p0 = case(position, value=per.c.s0)
    totals: list[Any] = [
        func.coalesce(per.c.after_stage, per.c.then_stage).label("current"),
        func.coalesce(per.c.then_stage, case(every, value=per.c.s0)).label("then"),
        func.count(),
    ]
    for i in range(pairs):
        first, later = per.c[f"first{i}"], per.c[f"later{i}"]
        totals.append(func.count().filter(or_(p0 == i, first.is_not(None))))
        totals.append(func.count().filter(later.is_not(None), or_(p0 == i, later < first)))
    return list(session.execute(select(*totals).group_by(totals[0], totals[1])))


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
