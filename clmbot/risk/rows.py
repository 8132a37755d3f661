"""The risk pass's bulk reads, straight from the driver into arrays.

At a million customers and ten million events, SQLAlchemy's rows and Python datetimes cost
several times the query itself (turning each stored time into an aware datetime alone took
longer than the database's scan). So these read with the driver's own cursor: times as
integer microseconds since the epoch, parsed by numpy from SQLite's text, and events from
PostgreSQL by a binary COPY read as one fixed-width array.
"""

from __future__ import annotations

import gc
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Connection, select

from clmbot.store.models import EXACT, Feedback

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PG_EPOCH_US = 946_684_800_000_000  # PostgreSQL's binary times count from 2000-01-01
_CHUNK = 100_000  # rows fetched at a time: a chunk of Python tuples is ~50 MB
_F = Feedback.__table__

# One event as PostgreSQL's binary COPY sends it: the field count, then each field's length
# and value (id int8, customer_id int4, occurred_at as int8 microseconds, value float8, is a
# purchase).
_PG_EVENT = np.dtype(
    [
        ("fields", ">i2"),
        ("n0", ">i4"),
        ("id", ">i8"),
        ("n1", ">i4"),
        ("customer", ">i4"),
        ("n2", ">i4"),
        ("at", ">i8"),
        ("n3", ">i4"),
        ("value", ">f8"),
        ("n4", ">i4"),
        ("purchase", "u1"),
    ]
)
_PG_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
_PG_BLOCK = 4_000_000  # bytes of COPY output turned into columns at a time


@contextmanager
def quiet_gc() -> Iterator[None]:
    """No garbage collection while millions of rows arrive: none of them can be garbage,
    and the collector scanning them each time costs a quarter of the read."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _postgres(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


def _cursor(conn: Connection) -> Any:
    return conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]


def _sqlite_time(at: datetime) -> str:
    """`at` as SQLite holds it (`UTCDateTime`), to compare with stored text."""
    return at.astimezone(UTC).isoformat(" ", "microseconds")[:26]


def _sqlite_micros(texts: tuple[str, ...] | list[str]) -> np.ndarray:
    """Stored UTC times ("2026-11-24 12:00:00.000000") as microseconds since the epoch
    (numpy parses a million in 0.07 s; SQLite's own date functions took longer, and round
    the fraction to milliseconds)."""
    return np.array(texts, dtype="datetime64[us]").astype(np.int64)


def micros_column(conn: Connection, column: str) -> str:
    """A stored time as PostgreSQL's exact microseconds, or SQLite's text to parse."""
    if _postgres(conn):  # EXTRACT gives an exact numeric since PostgreSQL 14
        return f"(EXTRACT(EPOCH FROM {column}) * 1000000)::int8"
    return column


def micros_of(conn: Connection, values: Sequence[Any]) -> np.ndarray:
    """What `micros_column` read, as microseconds."""
    if _postgres(conn):
        return np.array(values, dtype=np.int64)
    return _sqlite_micros(list(values))


_SEP = "\x1f"  # the unit separator: between the texts of a column read joined
_TOO_LONG = "54000"  # PostgreSQL's "program limit exceeded": a text over a gigabyte


def _read_joined(
    conn: Connection, ints: Sequence[str], texts: Sequence[str], rest: str, params: Sequence[Any]
) -> tuple[list[np.ndarray], list[list[str]]] | None:
    """Columns read as one row: each column's values joined into one text by the database
    (`group_concat` on SQLite, `string_agg` on PostgreSQL), split again here. A million
    rows as Python tuples cost twice the query (three times on PostgreSQL); joined, they
    cost a split. One aggregate steps every column row by row, so the columns line up.
    None when a text held the separator (or a value was NULL, which both leave out): the
    counts then differ from the rows', and the caller reads rows instead. None too when the
    joined texts would pass the database's longest: on SQLite a gigabyte a text by default
    (some 37 million stage moves), on PostgreSQL a gigabyte for the whole row (some 25
    million customers); there the failed read is undone to a savepoint, so the transaction
    goes on (as a connection of SQLAlchemy's always is in one: a savepoint needs one)."""
    pg = _postgres(conn)
    if pg:
        joined = [f"string_agg(({c})::text, ',')" for c in ints]
        joined += [f"string_agg({c}, chr(31))" for c in texts]
    else:
        joined = [f"group_concat({c})" for c in ints]
        joined += [f"group_concat({c}, char(31))" for c in texts]
    cursor = _cursor(conn)
    try:
        if pg:
            cursor.execute("SAVEPOINT risk_joined")
        cursor.execute(f"SELECT count(*), {', '.join(joined)} {rest}", params)
        n, *found = cursor.fetchone()
        if pg:
            cursor.execute("RELEASE SAVEPOINT risk_joined")
    except sqlite3.DataError:  # "string or blob too big"
        return None
    except Exception as exc:
        if getattr(exc, "sqlstate", None) != _TOO_LONG:
            raise
        cursor.execute("ROLLBACK TO SAVEPOINT risk_joined")
        return None
    finally:
        cursor.close()
    numbers = [np.fromstring(text or "", dtype=np.int64, sep=",") for text in found[: len(ints)]]
    words = [text.split(_SEP) if text is not None else [] for text in found[len(ints) :]]
    if any(len(column) != n for column in (*numbers, *words)):
        return None
    return numbers, words


_CUSTOMERS = "FROM customers WHERE forgotten_at IS NULL"


def customers(conn: Connection) -> tuple[np.ndarray, list[str], list[str]]:
    """Every customer not forgotten: ids, external ids, names."""
    found = _read_joined(conn, ["id"], ["external_id", "name"], _CUSTOMERS, ())
    if found is not None:
        (ids,), (external, names) = found
        return ids, external, names
    cursor = _cursor(conn)
    cursor.execute(f"SELECT id, external_id, name {_CUSTOMERS}")
    found = cursor.fetchall()
    cursor.close()
    if not found:
        return np.zeros(0, dtype=np.int64), [], []
    ids, external, names = zip(*found, strict=True)
    return np.array(ids, dtype=np.int64), list(external), list(names)


def stage_rows(
    conn: Connection, as_of: datetime
) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray, np.ndarray]:
    """The stage history before `as_of` by customer, time and id: customer, stage (a code:
    its place in the sorted stage names, given too), time (microseconds), and whether the
    move is known to have happened then (`EXACT`).

    Customer, code and basis come packed in one integer, and numpy sorts the rows: Python
    objects a row, and SQLite's sort of a million, cost more than the query itself."""
    for _ in range(3):
        found = _stage_rows(conn, as_of)
        if found is not None:
            return found
    raise RuntimeError("new stages kept appearing in the stage history while it was read")


def _stage_rows(
    conn: Connection, as_of: datetime
) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray, np.ndarray] | None:
    """`stage_rows`, or None when a stage first used after its names were read turned up."""
    pg = _postgres(conn)
    cursor = _cursor(conn)
    cursor.execute("SELECT DISTINCT to_stage FROM stage_history")
    names = sorted(row[0] for row in cursor.fetchall())
    mark = "%s" if pg else "?"
    # A stage none of the names is (a move committed since they were read) gets the code
    # after the last, and the history is read again.
    new = len(names)
    code = (
        "CASE to_stage "
        + " ".join(f"WHEN {mark} THEN {i}" for i in range(len(names)))
        + f" ELSE {new} END"
        if names
        else str(new)
    )
    per = 2 * (len(names) + 1)
    customer = "customer_id::int8" if pg else "customer_id"
    exact = f"(basis = {mark})::int" if pg else f"(basis = {mark})"
    packed = f"{customer} * {per} + {code} * 2 + {exact}"
    source = f'FROM stage_history WHERE "at" < {mark}'
    params = (*names, EXACT, as_of if pg else _sqlite_time(as_of))
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    at = micros_column(conn, '"at"')
    # PostgreSQL works out the times as microseconds; SQLite's texts are parsed here.
    joined = (
        _read_joined(conn, ["id", packed, at], [], source, params)
        if pg
        else _read_joined(conn, ["id", packed], [at], source, params)
    )
    if joined is not None:
        numbers, texts = joined
        row_ids, packs = numbers[:2]
        if len(row_ids):
            parts.append((row_ids, packs, numbers[2] if pg else _sqlite_micros(texts[0])))
    else:
        cursor.execute(f"SELECT id, {packed}, {at} {source}", params)
        while chunk := cursor.fetchmany(_CHUNK):
            ids, packs, when = zip(*chunk, strict=True)
            del chunk
            parts.append(
                (
                    np.array(ids, dtype=np.int64),
                    np.array(packs, dtype=np.int64),
                    micros_of(conn, when),
                )
            )
    cursor.close()
    if not parts:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, names, empty, np.zeros(0, dtype=bool)
    row_id, packed, when = (np.concatenate(column) for column in zip(*parts, strict=True))
    del parts
    cid = packed // per
    order = np.lexsort((row_id, when, cid))
    rest = packed[order] % per
    codes = rest // 2
    if (codes == new).any():
        return None
    return cid[order], codes, names, when[order], (rest % 2).astype(bool)


Columns = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def events_after(conn: Connection, after_id: int) -> Columns:
    """Every event whose id is above `after_id`, whatever its time: event id, customer,
    time (microseconds), value (0 when missing), whether it is a purchase; by customer, time
    and event id, so that rows read apart and merged come out in one order."""
    if _postgres(conn):
        eid, ids, at, value, bought = _pg_events(conn, after_id)
    else:
        eid, ids, at, value, bought = _sqlite_events(conn, after_id)
    if len(ids) > 1:
        same = ids[1:] == ids[:-1]
        tie = same & (at[1:] == at[:-1])
        ordered = (ids[1:] > ids[:-1]) | (same & (at[1:] > at[:-1])) | (tie & (eid[1:] > eid[:-1]))
        if not ordered.all():
            order = np.lexsort((eid, at, ids))
            del ordered, same, tie
            # One column at a time: ten million rows are 250 MB a copy.
            eid, ids, at, value, bought = (c[order] for c in (eid, ids, at, value, bought))
    return eid, ids, at, value, bought


def _sqlite_events(conn: Connection, after_id: int) -> Columns:
    cursor = _cursor(conn)
    # A purchase is told by the customer's lowest bit: one Python object less per row.
    cursor.execute(
        "SELECT id, customer_id * 2 + (kind = 'purchase'), occurred_at, coalesce(value, 0.0) "
        "FROM events WHERE id > ?",
        (after_id,),
    )
    parts: list[Columns] = []
    while chunk := cursor.fetchmany(_CHUNK):
        eid, tagged, at, value = zip(*chunk, strict=True)
        del chunk
        both = np.array(tagged, dtype=np.int64)
        parts.append(
            (
                np.array(eid, dtype=np.int64),
                both >> 1,
                _sqlite_micros(at),
                np.array(value, dtype=np.float64),
                (both & 1).astype(bool),
            )
        )
    cursor.close()
    return _joined(parts)


def _joined(parts: list[Columns]) -> Columns:
    """Chunks of columns as whole columns, each column's chunks freed once it is whole."""
    if not parts:
        return _no_events()
    columns = [list(column) for column in zip(*parts, strict=True)]
    del parts
    out = []
    for column in columns:
        out.append(np.concatenate(column))
        column.clear()
    return out[0], out[1], out[2], out[3], out[4]


def _pg_events(conn: Connection, after_id: int) -> Columns:
    """A binary COPY, read a few megabytes at a time into columns (the whole stream of ten
    million rows would be 450 MB at once)."""
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    data = bytearray()
    header = False
    parts: list[Columns] = []
    with cursor.copy(
        "COPY (SELECT id, customer_id, occurred_at, coalesce(value, 0)::float8, "
        "kind = 'purchase' FROM events WHERE id > %s) TO STDOUT (FORMAT binary)",
        (after_id,),
    ) as copy:
        for block in copy:
            data += block
            if not header and len(data) >= 19:
                if not data.startswith(_PG_SIGNATURE):
                    raise RuntimeError("unexpected COPY output from PostgreSQL")
                extension = int.from_bytes(data[15:19], "big")
                if len(data) < 19 + extension:
                    continue
                del data[: 19 + extension]
                header = True
            if header and len(data) >= _PG_BLOCK:
                parts.append(_pg_rows(data))
    cursor.close()
    if not header or bytes(data[-2:]) != b"\xff\xff":
        raise RuntimeError("unexpected COPY output from PostgreSQL")
    del data[-2:]  # the trailer
    parts.append(_pg_rows(data))
    if data:
        raise RuntimeError("unexpected COPY row layout from PostgreSQL")
    return _joined(parts)


def _pg_rows(data: bytearray) -> Columns:
    """The whole rows at the start of `data` as columns, taken out of it."""
    whole = len(data) // _PG_EVENT.itemsize * _PG_EVENT.itemsize
    rows = np.frombuffer(bytes(data[:whole]), dtype=_PG_EVENT)
    del data[:whole]
    if len(rows) and not (
        (rows["fields"] == 5).all()
        and (rows["n0"] == 8).all()
        and (rows["n1"] == 4).all()
        and (rows["n2"] == 8).all()
        and (rows["n3"] == 8).all()
        and (rows["n4"] == 1).all()
    ):
        raise RuntimeError("unexpected COPY row layout from PostgreSQL")
    return (
        rows["id"].astype(np.int64),
        rows["customer"].astype(np.int64),
        rows["at"].astype(np.int64) + _PG_EPOCH_US,
        rows["value"].astype(np.float64),
        rows["purchase"].astype(bool),
    )


def _no_events() -> Columns:
    empty = np.zeros(0, dtype=np.int64)
    return empty, empty, empty, np.zeros(0), np.zeros(0, dtype=bool)


def answers(conn: Connection, as_of: datetime) -> Any:
    """The answers of the year before `as_of`, by customer, latest first."""
    return conn.execute(
        select(_F.c.customer_id, _F.c.kind, _F.c.responded_at, _F.c.score)
        .where(_F.c.responded_at < as_of, _F.c.responded_at > as_of - timedelta(days=365))
        .order_by(_F.c.customer_id, _F.c.responded_at.desc())
    )
