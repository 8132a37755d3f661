"""Running a segment: the summary `/clm segment` shows, and every row for `… export`.

The WHERE clause comes from `compile_segment`; these functions only count, add up and read.
A summary is two queries, whatever the segment: one aggregate (count and MRR by stage) and
one for the first few customers. Both evaluate the filters once per customer; the filters'
subqueries each probe one index (see `clmbot.segments.compile`).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, TextIO

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Float,
    String,
    case,
    cast,
    false,
    func,
    literal,
    null,
    select,
    text,
    union_all,
)
from sqlmodel import Session

from clmbot.files import neutralise
from clmbot.store import cache, versions
from clmbot.store.models import Customer

EXPORT_COLUMNS = (
    "external_id",
    "name",
    "email",
    "stage",
    "owner_slack_id",
    "plan",
    "region",
    "mrr",
    "signup_date",
    "tags",
)
_BATCH = 1000  # rows fetched at a time by an export


@dataclass(frozen=True)
class CustomerRow:
    """One customer in a summary's sample."""

    external_id: str
    name: str
    stage: str
    plan: str | None
    mrr: float | None
    owner_slack_id: str | None


@dataclass(frozen=True)
class SegmentSummary:
    """`count` customers match; `mrr` is the MRR they hold: customers in a terminal stage
    (churned) are counted but their MRR is not, it is what they paid, not what they pay.
    `churned_mrr` is that MRR, for "and N MRR lost". `by_stage` in the lifecycle's order,
    stages without customers left out (stages no longer configured come last, by name).
    `sample`: the first customers, live ones first, then by MRR (highest first, none last),
    name and external id."""

    count: int
    mrr: float
    churned_mrr: float
    by_stage: tuple[tuple[str, int], ...]
    sample: tuple[CustomerRow, ...]


def summarise(
    session: Session,
    where: ColumnElement[bool],
    *,
    stages: Sequence[str],
    terminal: Sequence[str] = (),
    sample: int = 10,
) -> SegmentSummary:
    """The summary of the customers `where` selects (from `compile_segment`, which already
    fixes "as of when"). `stages`, `terminal`: `Settings.lifecycle.stages` and `.terminal`.

    One statement: the matching customers are found once (a materialised CTE) and then
    counted and sampled, because finding them is the expensive part (a subquery per customer
    for nps, inactive, …). Counts per stage are sums of CASEs rather than a GROUP BY, which
    SQLite would sort; stages the lifecycle no longer names are grouped apart (rarely any).
    Kept while nothing it could read changed (`clmbot.store.cache`).
    """
    return cache.kept(
        session,
        ("segment", cache.where_key(session, where), tuple(stages), tuple(terminal), sample),
        tables=cache.tables_read(where, "customers", versions.STAGES),  # it shows the stage
        compute=lambda: _summarise(session, where, list(stages), terminal, sample),
    )


def _summarise(
    session: Session,
    where: ColumnElement[bool],
    stages: list[str],
    terminal: Sequence[str],
    sample: int,
) -> SegmentSummary:
    _plan_for_latency(session)
    rows = (
        select(
            Customer.external_id,
            Customer.name,
            Customer.stage,
            Customer.plan,
            Customer.mrr,
            Customer.owner_slack_id,
        )
        .where(where)
        .cte("segment_rows")
    )
    if _can_materialise(session):
        rows = rows.prefix_with("MATERIALIZED")
    ended = rows.c.stage.in_(list(terminal)) if terminal else false()
    held = func.sum(case((ended, None), else_=rows.c.mrr))
    lost = func.sum(case((ended, rows.c.mrr), else_=None))
    # Typed NULLs: PostgreSQL types a UNION's columns from its first parts.
    row_nulls = [cast(null(), t) for t in (String, String, String, String, Float, String)]
    per_stage = [func.sum(case((rows.c.stage == s, 1), else_=0)) for s in stages]
    stage_nulls = [cast(null(), BigInteger)] * len(stages)
    parts = [
        select(literal("all"), *row_nulls, func.count(), held, lost, *per_stage).select_from(rows),
        select(
            literal("other"),
            *row_nulls[:2],
            rows.c.stage,
            *row_nulls[3:],
            func.count(),
            held,
            lost,
            *stage_nulls,
        )
        .where(rows.c.stage.not_in(stages))
        .group_by(rows.c.stage),
    ]
    if sample > 0:

        def sample_order(table: Any) -> list[Any]:
            ended = table.c.stage.in_(list(terminal)) if terminal else false()
            return [
                case((ended, 1), else_=0),
                table.c.mrr.desc().nulls_last(),
                table.c.name,
                table.c.external_id,
            ]

        first = select(rows).order_by(*sample_order(rows)).limit(sample).subquery()
        # A UNION keeps no order: each sample row carries its rank (over ten rows, not all).
        rank = func.row_number().over(order_by=sample_order(first))
        parts.append(
            select(
                literal("sample"),
                *first.c,
                rank,
                cast(null(), Float),
                cast(null(), Float),
                *stage_nulls,
            ).select_from(first)
        )
    result = session.execute(union_all(*parts)).all()
    counts: dict[str, int] = {}
    total, mrr, churned_mrr = 0, 0.0, 0.0
    shown: list[tuple[int, CustomerRow]] = []
    for part, ext, name, stage, plan, amount, owner, n, held_sum, lost_sum, *by in result:
        if part == "all":
            total, mrr, churned_mrr = int(n), float(held_sum or 0), float(lost_sum or 0)
            counts.update({s: int(c or 0) for s, c in zip(stages, by, strict=True)})
        elif part == "other":
            counts[stage] = int(n)
        else:
            shown.append((n, CustomerRow(ext, name, stage, plan, amount, owner)))
    order = {stage: i for i, stage in enumerate(stages)}
    by_stage = tuple(
        (stage, counts[stage])
        for stage in sorted(counts, key=lambda s: (order.get(s, len(order)), s))
        if counts[stage] > 0
    )
    shown.sort(key=lambda ranked: ranked[0])
    return SegmentSummary(total, mrr, churned_mrr, by_stage, tuple(row for _, row in shown))


def _plan_for_latency(session: Session) -> None:
    """No JIT compilation on PostgreSQL for the rest of this transaction: a segment's plan
    looks costly (a subquery per customer) and JIT then spends a second compiling a query
    that runs in a fraction of that."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL jit = off"))


def _can_materialise(session: Session) -> bool:
    """`AS MATERIALIZED` is PostgreSQL 12's and SQLite 3.35's; older SQLites (Debian 11's)
    compute the CTE once per use instead: slower, the same answer."""
    dialect = session.connection().dialect  # connected: the version is known
    return dialect.name != "sqlite" or (dialect.server_version_info or (0,)) >= (3, 35)


def count(session: Session, where: ColumnElement[bool]) -> int:
    """How many customers `where` selects: for `/clm segments`, one number per saved one;
    kept while nothing it could read changed (`clmbot.store.cache`)."""

    def work_out() -> int:
        _plan_for_latency(session)
        return int(session.scalar(select(func.count()).select_from(Customer).where(where)) or 0)

    return cache.kept(
        session,
        ("segment_count", cache.where_key(session, where)),
        tables=cache.tables_read(where),
        compute=work_out,
    )


@dataclass(frozen=True)
class ExportRow:
    external_id: str
    name: str
    email: str | None
    stage: str
    owner_slack_id: str | None
    plan: str | None
    region: str | None
    mrr: float | None
    signup_date: date | None
    tags: tuple[str, ...]


def iter_rows(session: Session, where: ColumnElement[bool]) -> Iterator[ExportRow]:
    """Every customer `where` selects, by name then external id, read a batch at a time so
    that an export of the whole customer base does not sit in memory."""
    _plan_for_latency(session)
    result = session.execute(
        select(
            Customer.external_id,
            Customer.name,
            Customer.email,
            Customer.stage,
            Customer.owner_slack_id,
            Customer.plan,
            Customer.region,
            Customer.mrr,
            Customer.signup_date,
            Customer.tags,
        )
        .where(where)
        .order_by(Customer.name, Customer.external_id)
        .execution_options(yield_per=_BATCH)
    )
    for row in result:
        *head, tags = row
        yield ExportRow(*head, tags=tuple(str(t) for t in (tags or ())))


def write_csv(rows: Iterable[ExportRow], out: TextIO) -> int:
    """`rows` as CSV (`EXPORT_COLUMNS`, tags joined by `;`) on `out`, opened with
    `newline=""`; every cell a spreadsheet would run as a formula is neutralised. Returns the
    number of rows written."""
    writer = csv.writer(out)
    writer.writerow(EXPORT_COLUMNS)
    written = 0
    for row in rows:
        cells = (
            row.external_id,
            row.name,
            row.email or "",
            row.stage,
            row.owner_slack_id or "",
            row.plan or "",
            row.region or "",
            _amount(row.mrr),
            row.signup_date.isoformat() if row.signup_date else "",
            ";".join(row.tags),
        )
        writer.writerow([neutralise(cell) for cell in cells])
        written += 1
    return written


def _amount(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
