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
(bench/bench_home.py). The costly part is the funnel: its counts come from the customers'
stage and the history of those who moved in the period only (`lifecycle.funnel_counts`,
which `/clm funnel` uses too).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo

from sqlalchemy import and_, func, select
from sqlmodel import Session

from clmbot.config import LifecycleConfig, Settings
from clmbot.feedback.months import month_start, months
from clmbot.feedback.queries import KINDS, Kind, latest_answers, tallies, to_score
from clmbot.feedback.reports import FEEDBACK_TABLES, MonthScore
from clmbot.feedback.scores import Score
from clmbot.feedback.trend import month_counts
from clmbot.lifecycle import DEFAULT_FUNNEL_PERIOD, funnel_counts
from clmbot.risk.stored import AT_RISK_ORDER, latest_run_id
from clmbot.store import cache
from clmbot.store.models import (
    QUEUED,
    SENDING,
    SENT,
    Customer,
    RiskRun,
    RiskScore,
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
    counted_at: datetime | None = None  # given as last counted, before moves made since

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
        .where(
            _R.c.finished_at.is_not(None),
            _R.c.as_of < latest_as_of,
            _R.c.scores_pruned_at.is_(None),  # its scores deleted: nothing to compare with
        )
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
    the last `TREND_MONTHS` calendar months (in `zone`), from the queries `/clm nps` runs;
    kept while the answers are unchanged (`clmbot.store.cache`)."""
    return cache.kept(
        session,
        ("score_card", kind, str(zone)),
        tables=FEEDBACK_TABLES,
        now=now,
        compute=lambda: _score_card(session, kind, now, zone),
    )


def _score_card(session: Session, kind: Kind, now: datetime, zone: tzinfo) -> ScoreCard:
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
    """Customers per stage at `now`, and the conversions over [since, now]: `/clm funnel`'s
    own counts (`lifecycle.funnel_counts`), without the stays' medians."""
    counts = funnel_counts(session, since=since, now=now, lifecycle=lifecycle)
    stages = lifecycle.funnel_stages
    steps = tuple(
        Step(stages[i], stages[i + 1], counts.base[i], counts.converted[i])
        for i in range(len(counts.base))
    )
    return FunnelGlance(
        since,
        now,
        tuple(StageCount(s, counts.at_now[s]) for s in lifecycle.stages),
        steps,
        counts.counted_at,
    )


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
