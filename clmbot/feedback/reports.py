"""`/clm nps` and `/clm csat`: the current score, its trend by month, and the score by group.

Two readings of the same answers, as PRODUCT.md puts it:

- "current" scores count each customer once, by their latest answer in the period: a
  customer asked three times is one voice, and what they think now is their latest answer;
- trends count every answer in its month: a month's score is what was said that month.

So the headline `current.n` is the customers who answered, and `responses` (the sum over the
trend) is the answers they gave.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from typing import Any, Literal

from sqlalchemy import ColumnElement, select
from sqlmodel import Session

from clmbot.feedback.months import MonthSpan, months
from clmbot.feedback.queries import (
    Kind,
    check_kind,
    check_period,
    latest_answers,
    tallies,
    to_score,
)
from clmbot.feedback.scores import Score
from clmbot.feedback.trend import month_counts
from clmbot.store import cache, versions
from clmbot.store.models import Customer

Group = Literal["stage", "plan", "region", "owner"]
GROUP_COLUMNS: dict[str, Any] = {
    "stage": Customer.stage,
    "plan": Customer.plan,
    "region": Customer.region,
    "owner": Customer.owner_slack_id,
}

# Below this many customers a group's score is mostly noise: at n = 30 an NPS interval is
# still ±20 to ±35 points wide. Such groups are flagged `small` and listed after the others.
SMALL_GROUP = 30


class _Scored:
    """What a trend month and a group line share: a score, read through `n` and `score`."""

    result: Score

    @property
    def n(self) -> int:
        return self.result.n

    @property
    def score(self) -> float | None:
        return self.result.score


@dataclass(frozen=True)
class MonthScore(_Scored):
    """One calendar month of the trend, in the team's zone. `month` is its first day;
    `start`..`end` (UTC) the part of it inside the period; `result` the score over every
    answer given then (n = 0 and score None for a month without answers)."""

    month: date
    start: datetime
    end: datetime
    result: Score


@dataclass(frozen=True)
class FeedbackReport:
    """`current`: each customer's latest answer in [since, now], so `current.n` is the
    number of customers who answered (`respondents`). `responses`: every answer in the
    period. `trend`: every month from the one holding `since` to the one holding `now`, in
    order, months without answers included."""

    kind: Kind
    since: datetime
    now: datetime
    current: Score
    responses: int
    respondents: int
    trend: tuple[MonthScore, ...]


@dataclass(frozen=True)
class GroupScore(_Scored):
    """One line of a grouped report. `value` is the customers' stage, plan, region or owner
    (a Slack user id); None for customers without one, to be shown as "none". `small`: fewer
    than `SMALL_GROUP` customers answered, so the score says little."""

    value: str | None
    result: Score
    small: bool


@dataclass(frozen=True)
class GroupedReport:
    """The current score (each customer's latest answer) split by `group`. `overall` is the
    same over everyone, for comparison: the lines add up to it. `lines`: see `report_by`."""

    kind: Kind
    group: Group
    since: datetime
    now: datetime
    overall: Score
    lines: tuple[GroupScore, ...]


def report(
    session: Session,
    kind: Kind,
    *,
    since: datetime,
    now: datetime,
    zone: tzinfo,
    where: ColumnElement[bool] | None = None,
) -> FeedbackReport:
    """The score of `kind` over [since, now] for the customers `where` selects (everyone when
    None): the current score, the response counts and the trend by calendar month in `zone`.

    Answers of forgotten customers count: forgetting erases who said it, not that it was said.
    Two aggregates: one over the customers' latest answers, one over every answer by month
    (on SQLite, two index look-ups before them choose the plan: see `latest_answers`).
    """
    kind = check_kind(kind)
    check_period(since, now)
    return cache.kept(
        session,
        ("report", kind, str(zone), cache.where_key(session, where)),
        tables=_tables(where),
        since=since,
        now=now,
        compute=lambda: _report(session, kind, since=since, now=now, zone=zone, where=where),
    )


def _tables(where: ColumnElement[bool] | None, *, by_stage: bool = False) -> tuple[str, ...]:
    """What a report reads: the answers and the customers (their stage too, by stage);
    with a segment, whatever its filters read besides."""
    return cache.tables_read(where, *FEEDBACK_TABLES, *((versions.STAGES,) if by_stage else ()))


FEEDBACK_TABLES = ("feedback", "customers")


def _report(
    session: Session,
    kind: Kind,
    *,
    since: datetime,
    now: datetime,
    zone: tzinfo,
    where: ColumnElement[bool] | None,
) -> FeedbackReport:
    latest = latest_answers(session, kind, since, now, where)
    n, good, bad = session.execute(select(*tallies(kind, latest.c.score))).one()
    current = to_score(kind, n, good, bad)
    trend = _trend(session, kind, months(since, now, zone), where)
    return FeedbackReport(
        kind=kind,
        since=since,
        now=now,
        current=current,
        responses=sum(m.n for m in trend),
        respondents=current.n,
        trend=tuple(trend),
    )


def report_by(
    session: Session,
    kind: Kind,
    group: Group,
    *,
    since: datetime,
    now: datetime,
    where: ColumnElement[bool] | None = None,
) -> GroupedReport:
    """The current score of `kind` over [since, now] for each stage, plan, region or owner
    (the customer's as it is now), for the customers `where` selects.

    Lines come best score first, the way a league table reads, so the worst groups sit
    just above the small ones at the bottom; but a group that cannot be trusted (`small`)
    never ranks above one that can: a plan with 2 answers at +100 is not the best plan.
    So the groups of `SMALL_GROUP` customers or more come first, by score, then the small
    ones, by score; ties by more customers first, then by name, "none" last.
    """
    kind = check_kind(kind)
    check_period(since, now)
    try:
        column = GROUP_COLUMNS[group]
    except KeyError:
        raise ValueError(f"group by one of {', '.join(GROUP_COLUMNS)}, not {group!r}") from None
    return cache.kept(
        session,
        ("report_by", kind, group, cache.where_key(session, where)),
        tables=_tables(where, by_stage=group == "stage"),
        since=since,
        now=now,
        compute=lambda: _report_by(session, kind, group, column, since, now, where),
    )


def _report_by(
    session: Session,
    kind: Kind,
    group: Group,
    column: Any,
    since: datetime,
    now: datetime,
    where: ColumnElement[bool] | None,
) -> GroupedReport:
    latest = latest_answers(session, kind, since, now, where, column)
    rows = session.execute(
        select(latest.c.grp, *tallies(kind, latest.c.score)).group_by(latest.c.grp)
    ).all()
    lines = [
        GroupScore(value, result, result.n < SMALL_GROUP)
        for value, result in ((r[0], to_score(kind, r[1], r[2], r[3])) for r in rows)
    ]
    lines.sort(key=_line_order)
    overall = to_score(
        kind,
        sum(r[1] for r in rows),
        sum(r[2] for r in rows),
        sum(r[3] for r in rows),
    )
    return GroupedReport(kind, group, since, now, overall, tuple(lines))


def _line_order(line: GroupScore) -> tuple[bool, float, int, bool, str]:
    score = line.score if line.score is not None else -1000.0
    return (line.small, -score, -line.n, line.value is None, line.value or "")


def _trend(
    session: Session, kind: Kind, spans: list[MonthSpan], where: ColumnElement[bool] | None
) -> list[MonthScore]:
    counts = month_counts(session, kind, spans, where)
    return [
        MonthScore(span.month, span.start, span.end, to_score(kind, *found))
        for span, found in zip(spans, counts, strict=True)
    ]
