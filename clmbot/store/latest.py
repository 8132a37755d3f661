"""Each customer's latest event and latest NPS and CSAT answers, kept on their row.

Segments ask "the latest event at or before now" (`inactive>60d`) and "the latest answer"
(`nps<7`) of every customer: one index probe per customer, which on PostgreSQL costs tens
of microseconds each. At 100,000 customers that was half a second per segment, and under a
team's stage moves (each one makes a kept segment out of date) two such segments took a
whole core of the database (bench_load). With the latest values on the row a segment reads
only `customers`.

They are kept by `refresh`, never by the writers: an import of ten million events would pay
for a million customer updates it does not need, and the import's time is measured against
a bare COPY. So the kept values may lag behind the tables, and a segment must know when
they do. `refresh` records, next to the counts of `clmbot.store.versions`, the count of the
table it read (`kept:events`, `kept:feedback`). A segment's SQL compares the two counts in
the same statement (`is_current`): equal, nothing was written to the table since, and the
kept value is the truth; unequal, it asks the table as before. The answer is the same
either way, only its cost differs.

The kept value is the latest of all, and a segment asks as of `now`: an event dated after
`now` (a typo'd year, a backtest's past `now`) makes the kept value later than `now`, and
that customer is asked the table too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    and_,
    func,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import aliased

from clmbot.store import versions
from clmbot.store.db import pg_lock_key
from clmbot.store.models import Customer, DataVersion, Event, Feedback

log = logging.getLogger(__name__)

KEPT = "kept:"  # prefix of the counts `refresh` records in `data_versions`
_C = Customer.__table__
_V = DataVersion.__table__
# One refresh at a time across copies of the bot (a PostgreSQL advisory lock, per schema).
LOCK_NAME = "clmbot latest values"


@dataclass(frozen=True)
class Refreshed:
    """What a refresh did: the tables it read again, and the customers whose values moved."""

    tables: tuple[str, ...]
    changed: int


def is_current(table: str) -> ColumnElement[bool]:
    """Whether the values kept from `table` hold: nothing was written to it since they were
    worked out. Two uncorrelated subqueries, worked out once per statement and in its
    snapshot, so that a segment never mixes a kept value with a newer table."""
    kept, now = aliased(DataVersion), aliased(DataVersion)
    recorded = select(kept.version).where(kept.name == KEPT + table).scalar_subquery()
    counted = select(now.version).where(now.name == table).scalar_subquery()
    return func.coalesce(recorded, -1) == func.coalesce(counted, 0)


TABLES = ("events", "feedback")
CHUNK = 5_000  # customers per transaction: their rows are locked until it commits


def refresh(engine: Engine) -> Refreshed:
    """Work the kept values out again from each table written since they last were. Cheap
    when nothing was (one read of the counts); else a pass over the table, `CHUNK` customers
    per transaction: a GROUP BY of their latest, and an update of the rows that differ. In
    one transaction, a hundred thousand customers' rows stayed locked for seconds, and every
    stage move waited for it."""
    done: list[str] = []
    changed = 0
    with engine.connect() as conn:
        postgres = conn.dialect.name == "postgresql"
        key = pg_lock_key(conn, LOCK_NAME) if postgres else 0
        if postgres:
            locked = conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar()
            conn.commit()
            if not locked:
                return Refreshed((), 0)  # another copy is at it
        try:
            for table in TABLES:
                with conn.begin():
                    found = _counts(conn, table)
                    top = conn.execute(select(func.max(_C.c.id))).scalar() or 0
                if found is None:
                    break  # before `clmbot db upgrade`
                if found[0] == found[1]:
                    continue
                for low in range(0, top + 1, CHUNK):
                    with conn.begin():
                        changed += _WORK[table](conn, low, low + CHUNK)
                with conn.begin():
                    _record(conn, table, found[1])
                done.append(table)
        finally:
            if postgres:
                conn.rollback()
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                conn.commit()
    return Refreshed(tuple(done), changed)


def refresh_table(conn: Connection, table: str) -> int | None:
    """`refresh` of one table in the caller's transaction: the customers whose values moved,
    or None when nothing needed doing (or the database has no counts yet)."""
    found = _counts(conn, table)
    if found is None or found[0] == found[1]:
        return None
    top = conn.execute(select(func.max(_C.c.id))).scalar() or 0
    moved = _WORK[table](conn, 0, top + 1)
    _record(conn, table, found[1])
    return moved


def _record(conn: Connection, table: str, count: int) -> None:
    """That the kept values hold up to `count` writes of `table`. The count was read before
    the table was: whatever it covers was committed before and seen. A write since makes it
    too low, and the values are not used until the next refresh."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    record = dialect.insert(_V).values(name=KEPT + table, version=count)
    conn.execute(record.on_conflict_do_update(index_elements=["name"], set_={"version": count}))


def _counts(conn: Connection, table: str) -> tuple[int, int] | None:
    found = versions.current(conn, (KEPT + table, table))
    if found is None:
        return None
    kept = conn.execute(select(_V.c.version).where(_V.c.name == KEPT + table)).scalar()
    return (-1 if kept is None else int(kept)), found[1]


# The update changes no report's answer (a kept value is used only where it is the truth),
# so it does not count as a change of `customers`: counted, it would throw every kept
# report away.
_UNCOUNTED = versions.COUNTED_BY_CALLER


def _events(conn: Connection, low: int, high: int) -> int:
    """Customers with ids in [low, high)."""
    latest = (
        select(Event.customer_id.label("cid"), func.max(Event.occurred_at).label("at"))
        .where(Event.customer_id >= low, Event.customer_id < high)
        .group_by(Event.customer_id)
        .subquery()
    )
    moved = conn.execute(
        update(_C)
        .where(_C.c.id == latest.c.cid, _C.c.latest_event_at.is_distinct_from(latest.c.at))
        .values(latest_event_at=latest.c.at),
        execution_options=_UNCOUNTED,
    ).rowcount
    # Customers whose events are all gone (none are deleted but with their customer; kept
    # for safety: the value must never outlive the rows it came from).
    gone = conn.execute(
        update(_C)
        .where(
            _C.c.id >= low,
            _C.c.id < high,
            _C.c.latest_event_at.is_not(None),
            ~select(literal(1)).where(Event.customer_id == _C.c.id).exists(),
        )
        .values(latest_event_at=None),
        execution_options=_UNCOUNTED,
    ).rowcount
    return int(moved or 0) + int(gone or 0)


def _answers(conn: Connection, low: int, high: int) -> int:
    """Customers with ids in [low, high)."""
    changed = 0
    for kind in ("nps", "csat"):
        at_column = _C.c[f"latest_{kind}_at"]
        score_column = _C.c[f"latest_{kind}"]
        last = (
            select(Feedback.customer_id.label("cid"), func.max(Feedback.responded_at).label("at"))
            .where(Feedback.kind == kind, Feedback.customer_id >= low, Feedback.customer_id < high)
            .group_by(Feedback.customer_id)
            .subquery()
        )
        # The score of that latest answer: (customer, kind, time) is the table's unique key.
        latest = (
            select(last.c.cid, last.c.at, Feedback.score)
            .join(
                Feedback,
                and_(
                    Feedback.customer_id == last.c.cid,
                    Feedback.kind == kind,
                    Feedback.responded_at == last.c.at,
                ),
            )
            .subquery()
        )
        changed += int(
            conn.execute(
                update(_C)
                .where(
                    _C.c.id == latest.c.cid,
                    (at_column.is_distinct_from(latest.c.at))
                    | (score_column.is_distinct_from(latest.c.score)),
                )
                .values({at_column: latest.c.at, score_column: latest.c.score}),
                execution_options=_UNCOUNTED,
            ).rowcount
            or 0
        )
        changed += int(
            conn.execute(
                update(_C)
                .where(
                    _C.c.id >= low,
                    _C.c.id < high,
                    at_column.is_not(None),
                    ~select(literal(1))
                    .where(Feedback.customer_id == _C.c.id, Feedback.kind == kind)
                    .exists(),
                )
                .values({at_column: None, score_column: None}),
                execution_options=_UNCOUNTED,
            ).rowcount
            or 0
        )
    return changed


_WORK = {"events": _events, "feedback": _answers}
