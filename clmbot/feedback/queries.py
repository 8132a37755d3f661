"""The SQL the reports share: the period, the tallies, and each customer's latest answer.

Everything is counted in the database (aggregates over an index), never by loading answers
into Python: a year of answers is tens of thousands of rows, and `/clm nps` must answer in
well under a second on SQLite as on PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, Subquery, and_, func, select
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import UnaryExpression
from sqlmodel import Session

from clmbot.feedback.scores import (
    CSAT_SATISFIED_MIN,
    NPS_PASSIVE_MIN,
    NPS_PROMOTER_MIN,
    Score,
    csat,
    nps,
)
from clmbot.store.models import Customer, Feedback

try:  # SQLAlchemy 2.1 spells DISTINCT ON as an extension; 2.0 as distinct(column)
    from sqlalchemy.dialects.postgresql import distinct_on
except ImportError:  # pragma: no cover - SQLAlchemy 2.0
    distinct_on = None

Kind = Literal["nps", "csat"]
KINDS: tuple[Kind, ...] = ("nps", "csat")


def check_kind(kind: str) -> Kind:
    if kind not in KINDS:
        raise ValueError(f"feedback kind must be nps or csat, not {kind!r}")
    return kind  # type: ignore[return-value]


def check_period(since: datetime, now: datetime) -> None:
    """Aware datetimes, `since` not after `now`: a naive time is a time-zone bug waiting."""
    if since.tzinfo is None or now.tzinfo is None:
        raise ValueError("since and now must be aware datetimes (UTC)")
    if since > now:
        raise ValueError("since must not be after now")


def in_period(kind: Kind, since: datetime, now: datetime) -> ColumnElement[bool]:
    """Answers of `kind` given in [since, now], both ends included."""
    return and_(Feedback.kind == kind, Feedback.responded_at >= since, Feedback.responded_at <= now)


def tallies(kind: Kind, score: Any) -> tuple[Any, Any, Any]:
    """`(n, good, bad)` over a score column: for NPS promoters and detractors, for CSAT the
    satisfied (4-5) and the rest (1-3). `count(*) FILTER` rather than `sum(CASE …)`: it is
    0, not NULL, over no rows, and on SQLite it measured a third faster."""
    if kind == "nps":
        good = score >= NPS_PROMOTER_MIN
        bad = score < NPS_PASSIVE_MIN
    else:
        good = score >= CSAT_SATISFIED_MIN
        bad = score < CSAT_SATISFIED_MIN
    return (
        func.count().label("n"),
        func.count().filter(good).label("good"),
        func.count().filter(bad).label("bad"),
    )


def to_score(kind: Kind, n: int | None, good: int | None, bad: int | None) -> Score:
    n, good, bad = n or 0, good or 0, bad or 0
    if kind == "nps":
        return nps(good, n - good - bad, bad)
    return csat(good, bad)


def latest_answers(
    session: Session,
    kind: Kind,
    since: datetime,
    now: datetime,
    where: ColumnElement[bool] | None,
    group: ColumnElement[Any] | None = None,
) -> Subquery:
    """Each customer's latest answer of `kind` in [since, now]: a subquery with the column
    `score` (and `grp`, the value of `group`, a column of `Customer`, when given), one row per
    customer who answered and matches `where`.

    The "latest row per customer" is written the fastest exact way each database knows,
    measured (bench/bench_feedback.py) against a `row_number()` window, a correlated `max()`
    and a `NOT EXISTS` a later answer, each 1.5 to 4 times slower:

    - PostgreSQL: `DISTINCT ON (customer_id)`, reading ix_feedback_kind_customer_time
      backwards, already in order (with a sort instead it was 3 times slower: the sort
      spilled to disk under the default work_mem). The planner picks the plan.
    - SQLite: bare columns beside `max()`, which SQLite documents to take their values from
      the row holding the maximum; the plan is chosen here, see `_sqlite_latest`.

    A customer answers a kind at most once per instant (the unique key customer, kind,
    time), so "the latest" is never a tie.
    """
    if session.get_bind().dialect.name == "postgresql":
        return _postgresql_latest(kind, since, now, where, group)
    return _sqlite_latest(session, kind, since, now, where, group)


def _postgresql_latest(
    kind: Kind,
    since: datetime,
    now: datetime,
    where: ColumnElement[bool] | None,
    group: ColumnElement[Any] | None,
) -> Subquery:
    columns: list[Any] = [Feedback.score.label("score")]
    if group is not None:
        # Joined before DISTINCT ON: a merge join along both primary orders, measured 3
        # times faster than a hash join of the customers after it.
        columns.append(group.label("grp"))
    query = (
        select(*columns)
        .where(in_period(kind, since, now))
        # Both descending: ix_feedback_kind_customer_time read backwards, with no sort.
        .order_by(Feedback.customer_id.desc(), Feedback.responded_at.desc())
    )
    if distinct_on is not None:
        query = query.ext(distinct_on(Feedback.customer_id))
    else:  # pragma: no cover - SQLAlchemy 2.0
        query = query.distinct(Feedback.customer_id)
    if where is not None or group is not None:
        query = query.join(Customer, Customer.id == Feedback.customer_id)
    if where is not None:
        query = query.where(where)
    return query.subquery("latest")


# Above this share of a kind's answers in the period, SQLite reads them all in customer order
# rather than sorting the period's (see `_sqlite_latest`).
_SQLITE_ORDERED_SHARE = 0.2


def _sqlite_latest(
    session: Session,
    kind: Kind,
    since: datetime,
    now: datetime,
    where: ColumnElement[bool] | None,
    group: ColumnElement[Any] | None,
) -> Subquery:
    """SQLite has two ways to the latest answers, and its planner (with or without ANALYZE)
    does not reliably take the faster, so the choice is made here, from the share of the
    kind's answers that fall in the period (estimated from their first and last times):

    - a large share (a year of two): read ix_feedback_kind_customer_time, already in customer
      order, skipping the answers outside the period: no sort. 12 months of 2 years, 100,000
      customers: 1.6 times faster than sorting, and 2.5 times with a group;
    - a small share (the last 30 days): read the period's slice of
      ix_feedback_kind_time_score and sort it by customer: 4 times faster than reading all.

    Each is forced with SQLite's documented unary "+", which keeps a term from using an
    index without changing its value: "+responded_at" keeps the range off the time index,
    "GROUP BY +customer_id" keeps the customer-ordered index from serving the grouping.
    The customers' group is joined after the grouping, on one row per customer.
    """
    ordered = _share_in_period(session, kind, since, now) >= _SQLITE_ORDERED_SHARE
    if ordered:
        at = _unindexed(Feedback.responded_at)
        period = and_(Feedback.kind == kind, at >= since, at <= now)
        by: Any = Feedback.customer_id
    else:
        period = in_period(kind, since, now)
        by = _unindexed(Feedback.customer_id)
    query = (
        select(
            Feedback.customer_id.label("customer_id"),
            Feedback.score.label("score"),
            func.max(Feedback.responded_at).label("latest_at"),
        )
        .where(period)
        .group_by(by)
    )
    if where is not None:
        query = query.join(Customer, Customer.id == Feedback.customer_id).where(where)
    latest = query.subquery("latest_answers")
    if group is None:
        return latest
    return (
        select(latest.c.score, group.label("grp"))
        .join_from(latest, Customer, Customer.id == latest.c.customer_id)
        .subquery("latest")
    )


def _unindexed(column: Any) -> ColumnElement[Any]:
    """`+column`: the same value, which SQLite will not look up through an index."""
    return UnaryExpression(column, operator=operators.custom_op("+"), type_=column.type)


def _share_in_period(session: Session, kind: Kind, since: datetime, now: datetime) -> float:
    """The share of the time between the kind's first and last answers that [since, now]
    covers: two index look-ups, a stand-in for the share of the answers themselves."""
    of_kind = select(Feedback.responded_at).where(Feedback.kind == kind)
    first, last = session.execute(
        select(
            of_kind.with_only_columns(func.min(Feedback.responded_at)).scalar_subquery(),
            of_kind.with_only_columns(func.max(Feedback.responded_at)).scalar_subquery(),
        )
    ).one()
    if first is None or last is None or last <= first:
        return 1.0
    covered = min(now, last) - max(since, first)
    return max(covered.total_seconds(), 0.0) / (last - first).total_seconds()
