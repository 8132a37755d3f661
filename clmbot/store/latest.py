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

from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    bindparam,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import aliased

from clmbot.store import versions
from clmbot.store.db import pg_lock_key
from clmbot.store.models import Customer, DataVersion, Event, Feedback

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


@cache
def is_current(table: str) -> ColumnElement[bool]:
    """Whether the values kept from `table` hold: nothing was written to it since they were
    worked out. Two uncorrelated subqueries, worked out once per statement and in its
    snapshot, so that a segment never mixes a kept value with a newer table. Made once per
    table (it holds no value of the ask): building it took a fifth of a kept segment's
    answer."""
    kept, now = aliased(DataVersion), aliased(DataVersion)
    recorded = select(kept.version).where(kept.name == KEPT + table).scalar_subquery()
    counted = select(now.version).where(now.name == table).scalar_subquery()
    return func.coalesce(recorded, -1) == func.coalesce(counted, 0)


TABLES = ("events", "feedback")
CHUNK = 5_000  # customers per transaction: their rows are locked until it commits


def refresh(engine: Engine) -> Refreshed:
    """Work the kept values out again from each table written since they last were. Cheap
    when nothing was (one read of the counts); else a pass over the customers, `CHUNK` per
    transaction: their latest from each such table, and one update of the rows that differ.
    In one transaction, a hundred thousand customers' rows stayed locked for seconds, and
    every stage move waited for it; and one update per row for all the values, not one per
    table, writes each row once (on PostgreSQL a row written is a row copied)."""
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
            with conn.begin():
                stale = _stale(conn)
                top = conn.execute(select(func.max(_C.c.id))).scalar() or 0
            if stale:
                for low in range(0, top + 1, CHUNK):
                    with conn.begin():
                        changed += _update(conn, low, low + CHUNK, tuple(stale))
                with conn.begin():
                    _record(conn, stale)
        finally:
            if postgres:
                conn.rollback()
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                conn.commit()
    return Refreshed(tuple(stale), changed)


def refresh_table(conn: Connection, table: str) -> int | None:
    """`refresh` of one table in the caller's transaction: the customers whose values moved,
    or None when nothing needed doing (or the database has no counts yet)."""
    stale = {t: n for t, n in _stale(conn).items() if t == table}
    if not stale:
        return None
    top = conn.execute(select(func.max(_C.c.id))).scalar() or 0
    moved = _update(conn, 0, top + 1, (table,))
    _record(conn, stale)
    return moved


def _stale(conn: Connection) -> dict[str, int]:
    """The tables written since their values were kept, with their counts now; none before
    `clmbot db upgrade` made the counts. The counts are read before the tables are: whatever
    they cover was committed before and is seen. A write in between makes a recorded count
    too low, and the values are not used until the next refresh."""
    names = [*TABLES, *(KEPT + t for t in TABLES)]
    found = versions.current(conn, names)
    if found is None:
        return {}
    rows = dict(conn.execute(select(_V.c.name, _V.c.version).where(_V.c.name.in_(names))).all())
    return {
        table: count
        for table, count in zip(TABLES, found[: len(TABLES)], strict=True)
        if rows.get(KEPT + table) != count
    }


def _record(conn: Connection, counts: dict[str, int]) -> None:
    """That the kept values hold up to these counts of writes."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    for table, count in counts.items():
        record = dialect.insert(_V).values(name=KEPT + table, version=count)
        conn.execute(record.on_conflict_do_update(index_elements=["name"], set_={"version": count}))


# The update changes no report's answer (a kept value is used only where it is the truth),
# so it does not count as a change of `customers`: counted, it would throw every kept
# report away.
_UNCOUNTED = versions.COUNTED_BY_CALLER


_KEPT = {
    "events": ("latest_event_at",),
    "feedback": ("latest_nps_at", "latest_nps", "latest_csat_at", "latest_csat"),
}


def _update(conn: Connection, low: int, high: int, tables: tuple[str, ...]) -> int:
    """Bring the kept values from `tables` up to date for the customers with ids in
    [low, high): their latest read by index ranges, compared here with what their rows
    hold, and the rows that differ updated by id, each once. (One UPDATE … FROM the
    aggregates let PostgreSQL's planner, misjudging the joins, compare every customer of
    the chunk with every answer.)"""
    names = [name for table in tables for name in _KEPT[table]]
    held = {
        row[0]: tuple(row[1:])
        for row in conn.execute(
            select(_C.c.id, *(_C.c[n] for n in names)).where(_C.c.id >= low, _C.c.id < high)
        )
    }
    if not held:
        return 0
    fresh: dict[int, dict[str, Any]] = {cid: dict.fromkeys(names) for cid in held}
    if "events" in tables:
        for cid, at in conn.execute(
            select(Event.customer_id, func.max(Event.occurred_at))
            .where(Event.customer_id >= low, Event.customer_id < high)
            .group_by(Event.customer_id)
        ):
            if cid in fresh:
                fresh[cid]["latest_event_at"] = at
    if "feedback" in tables:
        # Latest first within each customer and kind: the first seen is the one kept.
        for cid, kind, at, score in conn.execute(
            select(Feedback.customer_id, Feedback.kind, Feedback.responded_at, Feedback.score)
            .where(
                Feedback.kind.in_(("nps", "csat")),
                Feedback.customer_id >= low,
                Feedback.customer_id < high,
            )
            .order_by(Feedback.customer_id, Feedback.kind, Feedback.responded_at.desc())
        ):
            values = fresh.get(cid)
            if values is not None and values[f"latest_{kind}_at"] is None:
                values[f"latest_{kind}_at"] = at
                values[f"latest_{kind}"] = score
    changed = [
        {"cid": cid, **values}
        for cid, values in fresh.items()
        if tuple(values[n] for n in names) != held[cid]
    ]
    if changed:
        conn.execute(
            update(_C).where(_C.c.id == bindparam("cid")).values({n: bindparam(n) for n in names}),
            changed,
            execution_options=_UNCOUNTED,
        )
    return len(changed)
