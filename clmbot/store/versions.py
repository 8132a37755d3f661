"""A count per table of the commits that changed it, kept in the database (`data_versions`),
so that every copy of the bot can tell whether a report it worked out earlier still holds.

The team-wide reports (the funnel, NPS and CSAT, a segment's count, the at-risk list) read
whole tables: at a million customers the funnel alone takes seconds. They are kept per
version (`clmbot.store.cache`) and worked out again only once a table they read changed.

No writer has to remember this: every INSERT, UPDATE, DELETE or TRUNCATE SQLAlchemy sends
is watched, the tables it names are noted on the connection, and the counts are raised just
before the transaction commits. That is the last moment, so that on PostgreSQL the row of a
busy table is locked only for the commit itself, not for a whole import; and it is inside
the transaction, so that whoever sees the new count also sees what changed. A rolled-back
transaction raises nothing. Writes that bypass SQLAlchemy (psycopg's COPY) call `touch`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, event

# The tables the kept reports read. Others (the audit log, replay guards, surveys in flight)
# change on every request and would only throw the kept reports away.
# `customers.stage` counts the updates of customers that set their stage and nothing else (a
# stage move) apart from `customers`: the reports that never read a stage (NPS, CSAT, the
# at-risk list) are kept through the moves a team makes all day, while those that do (the
# funnel, segments) read both counts.
STAGES = "customers.stage"
# `events.rewritten` counts the commits that changed or removed events already stored (an
# UPDATE, a DELETE, an upsert that updated a row), apart from `events`, which every import of
# new events raises: the risk pass keeps the events it read and reads only the new ones
# (`clmbot.risk.kept_events`), which holds only while no stored event changed.
EVENTS_REWRITTEN = "events.rewritten"
TRACKED = (
    "customers",
    STAGES,
    "stage_history",
    "events",
    EVENTS_REWRITTEN,
    "feedback",
    "risk_runs",
    "risk_scores",
)
TABLE = "data_versions"

_DIRTY = "clmbot_changed_tables"
_WROTE = "clmbot_wrote"  # the open transaction wrote something (any table): it holds locks
_WRITES = re.compile(r"^\s*(?:WITH|INSERT|UPDATE|DELETE|TRUNCATE|REPLACE)\b", re.IGNORECASE)
_PLAIN_INSERT = re.compile(r"^\s*INSERT\s+INTO\b", re.IGNORECASE)
_TARGETS = re.compile(
    r"\b(?:INTO|UPDATE|DELETE\s+FROM|TRUNCATE(?:\s+TABLE)?)\s+(?:ONLY\s+)?\"?(\w+)\"?",
    re.IGNORECASE,
)
# `UPDATE customers SET stage=?, updated_at=? WHERE ...`, as SQLAlchemy writes a stage move:
# every value a bound parameter, so the SET list holds no text of its own to mislead this.
_CUSTOMERS_SET = re.compile(
    r"^\s*UPDATE\s+\"?customers\"?\s+SET\s+(.*?)\s+WHERE\b", re.IGNORECASE | re.DOTALL
)
# (psycopg's parameters carry a cast: `%(stage)s::VARCHAR`.)
_SET_COLUMN = re.compile(r"\"?(\w+)\"?\s*=\s*(?:\?|%\(\w+\)s|:\w+)(?:::[A-Za-z ]+(?:\(\d+\))?)?")
STAGE_COLUMNS = frozenset({"stage", "updated_at"})  # what a move sets, counted as STAGES


# On a statement whose caller counts it (`touch` when its RETURNING rows say it wrote):
# SQLite cannot tell before they are read whether an upsert with RETURNING changed a row.
COUNTED_BY_CALLER = {"clmbot_counted_by_caller": True}


def install(engine: Engine) -> None:
    """Watch `engine`'s writes and count them at commit (see the module's docstring)."""
    event.listen(engine, "after_cursor_execute", _seen)
    event.listen(engine, "commit", _count)
    event.listen(engine, "rollback", _forget)
    # `Connection.info` is the pooled connection's: nothing noted may outlive a checkout.
    event.listen(engine, "checkin", _checked_in)


def _checked_in(_raw: Any, record: Any) -> None:
    _clear(record.info)


def _clear(info: dict[Any, Any]) -> None:
    """What a transaction noted of its writes, gone with it."""
    info.pop(_DIRTY, None)
    info.pop(_WROTE, None)


def holds_writes(conn: Connection) -> bool:
    """Whether `conn`'s open transaction holds what other writers wait for: on SQLite the
    write lock (taken by any write, or by BEGIN IMMEDIATE), on PostgreSQL the rows it wrote.
    A thread holding them must not give its turn to writers (`clmbot.turns`): they would
    wait for its lock holding every turn, and it for a turn to commit."""
    if conn.dialect.name == "sqlite":
        raw = conn.connection.dbapi_connection
        return bool(raw is not None and raw.in_transaction)
    return bool(conn.info.get(_WROTE))


def touch(conn: Connection, *tables: str) -> None:
    """Note a write SQLAlchemy did not see (a COPY) to `tables`, counted at commit."""
    conn.info.setdefault(_DIRTY, set()).update(t for t in tables if t in TRACKED)


def pending(conn: Connection, tables: Iterable[str]) -> bool:
    """Whether `conn`'s open transaction has itself written one of `tables`: a report it
    reads must then be worked out, not taken from before."""
    dirty = conn.info.get(_DIRTY)
    return bool(dirty) and not dirty.isdisjoint(tables)


def current(conn: Connection, tables: Sequence[str]) -> tuple[int, ...] | None:
    """The counts of `tables` as `conn` sees them; None when the database has no
    `data_versions` yet (before `clmbot db upgrade`), so nothing can be kept."""
    if not _has_table(conn.connection.dbapi_connection, conn.dialect.name):
        return None
    rows = dict(
        conn.exec_driver_sql(
            f"SELECT name, version FROM {TABLE}"  # a constant name, nothing from outside
        ).all()
    )
    return tuple(int(rows.get(t, 0)) for t in tables)  # a table never changed: no row yet


def _seen(
    conn: Connection,
    cursor: Any,
    statement: str,
    parameters: Any,
    context: Any,
    executemany: bool,
) -> None:
    if not _WRITES.match(statement):
        return
    if _TARGETS.search(statement):
        conn.info[_WROTE] = True
    if context is not None and context.execution_options.get("clmbot_counted_by_caller"):
        return
    # A statement that changed no row changes no report (a file imported again). With
    # RETURNING, SQLite counts rows only once they are read, so there such a one counts.
    if cursor.rowcount == 0 and not (
        conn.dialect.name == "sqlite" and "RETURNING" in statement.upper()
    ):
        return
    names = {m.group(1).lower() for m in _TARGETS.finditer(statement)}
    touched = names.intersection(TRACKED)
    if "customers" in touched and _sets_only_the_stage(statement):
        touched = (touched - {"customers"}) | {STAGES}
    if "events" in touched and not _inserts_only(statement):
        touched = touched | {EVENTS_REWRITTEN}
    if touched:
        conn.info.setdefault(_DIRTY, set()).update(touched)


def rewritten(table: str) -> str:
    """The count of `table`'s commits that changed rows already stored (tracked for events
    only; `touch` ignores the others)."""
    return f"{table}.rewritten"


def _inserts_only(statement: str) -> bool:
    """Whether `statement` can only add rows: an INSERT that updates nothing on a conflict."""
    # (`INSERT OR REPLACE` is no plain `INSERT INTO`: it deletes the row it replaces.)
    return bool(_PLAIN_INSERT.match(statement)) and "DO UPDATE" not in statement.upper()


def _sets_only_the_stage(statement: str) -> bool:
    """Whether `statement` is an UPDATE of customers setting their stage (and when they were
    updated) to bound values, and nothing else."""
    found = _CUSTOMERS_SET.match(statement)
    if found is None:
        return False
    names = set()
    for item in found.group(1).split(","):
        column = _SET_COLUMN.fullmatch(item.strip())
        if column is None:
            return False
        names.add(column.group(1).lower())
    return "stage" in names and names <= STAGE_COLUMNS


def _count(conn: Connection) -> None:
    dirty = conn.info.get(_DIRTY)
    _clear(conn.info)
    if not dirty:
        return
    raw = conn.connection.dbapi_connection
    if raw is None or not _has_table(raw, conn.dialect.name):
        return  # during `db upgrade`, before the table exists: nothing is kept yet
    mark = "?" if conn.dialect.name == "sqlite" else "%s"
    cursor = raw.cursor()
    try:
        # One row at a time, in one order: two commits never wait for each other in a circle.
        for name in sorted(dirty):
            cursor.execute(
                f"INSERT INTO {TABLE} (name, version) VALUES ({mark}, 1) ON CONFLICT (name) "
                f"DO UPDATE SET version = {TABLE}.version + 1",
                (name,),
            )
    finally:
        cursor.close()


def _forget(conn: Connection) -> None:
    _clear(conn.info)


def _has_table(raw: Any, dialect: str) -> bool:
    """Looked up every time rather than remembered: tests take a schema down and up again
    under one engine."""
    cursor = raw.cursor()
    try:
        if dialect == "sqlite":
            cursor.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (TABLE,)
            )
            return cursor.fetchone() is not None
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", (TABLE,))
        row = cursor.fetchone()
        return bool(row and row[0])
    finally:
        cursor.close()
