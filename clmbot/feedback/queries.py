"""The SQL the reports share: the period, the tallies, and each customer's latest answer.

Everything is counted in the database (aggregates over an index), never by loading answers
into Python: a year of answers is tens of thousands of rows, and `/clm nps` must answer in
well under a second on SQLite as on PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, Select, Subquery, and_, func, select

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
    dialect: str,
    kind: Kind,
    since: datetime,
    now: datetime,
    where: ColumnElement[bool] | None,
    group: ColumnElement[Any] | None = None,
) -> Subquery:
    """Each customer's latest answer of `kind` in [since, now]: a subquery with the column
    `score` (and `group`, a column of `Customer` labelled "grp", when given), one row per
    customer who answered and matches `where`.

    The "latest row per group" is written the fastest exact way each database knows, both
    measured against a `row_number()` window and a correlated `max()` (see
    bench/bench_feedback.py): PostgreSQL's `DISTINCT ON`, reading
    `ix_feedback_kind_customer_latest` in order with no sort; and SQLite's bare columns
    beside `max()`, which SQLite documents to take their values from the row holding the
    maximum. A customer answers a kind at most once per instant (the unique key customer,
    kind, time), so "the latest" is never a tie.
    """
    columns: list[Any] = [Feedback.score.label("score")]
    if group is not None:
        columns.append(group.label("grp"))
    query: Select[Any]
    if dialect == "postgresql":
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
    else:
        query = (
            select(*columns, func.max(Feedback.responded_at).label("latest_at"))
            .where(in_period(kind, since, now))
            .group_by(Feedback.customer_id)
        )
    if where is not None or group is not None:
        query = query.join(Customer, Customer.id == Feedback.customer_id)
    if where is not None:
        query = query.where(where)
    return query.subquery("latest")
