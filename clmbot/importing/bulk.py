"""Bulk upserts: one statement for a whole chunk, never one ORM object per row.

SQLite gets `INSERT … ON CONFLICT DO UPDATE … WHERE <something differs>` through the
driver's `executemany`; PostgreSQL gets the chunk `COPY`ed into a temporary table and one
`INSERT … SELECT … ON CONFLICT` from it. The statements are built by SQLAlchemy from the
table definitions (no SQL text assembled by hand), and values pass through the columns' own
type processors, so what lands is exactly what the ORM would have written.

The `WHERE` makes an unchanged row a no-op, which is what lets the callers tell "updated"
from "unchanged" (the driver's row count) and leaves a re-imported file without a trace.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    MetaData,
    Table,
    literal_column,
    or_,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import sqltypes
from sqlalchemy.types import TypeEngine

from clmbot.store import versions

Processor = Callable[[Any], Any]


def _driver_form(type_: TypeEngine[Any], dialect: Dialect) -> Processor | None:
    """How a value of `type_` goes to the driver: the type's own bind processor, but for JSON
    on PostgreSQL, where the rows go by `COPY` in its text form, the JSON text itself.

    SQLAlchemy wraps each JSON value in psycopg's `Jsonb`, which the driver then dumps one
    row at a time through its own machinery: two JSON columns of a million new customers
    were a quarter of the importer's time. As text, the empty ones (most) are written once
    per chunk (`_bound`), and the server reads any of them into the same JSONB value."""
    impl = type_.dialect_impl(dialect)
    if dialect.name == "postgresql" and isinstance(impl, sqltypes.JSON):
        null = None if impl.none_as_null else "null"
        dumps = getattr(dialect, "_json_serializer", None) or json.dumps

        def as_text(value: Any) -> str | None:
            return null if value is None else dumps(value)

        return as_text
    return impl.bind_processor(dialect)


def _processed(
    processors: Sequence[Processor | None], rows: Sequence[Sequence[Any]]
) -> Sequence[Sequence[Any]]:
    """`rows` in the driver's form. Column-wise: transposing with zip runs in C."""
    if not any(processors):
        return rows
    columns = [
        _bound(proc, column) if proc is not None else column
        for proc, column in zip(processors, zip(*rows, strict=True), strict=True)
    ]
    return list(zip(*columns, strict=True))


def _bound(proc: Processor, column: Sequence[Any]) -> list[Any]:
    """`proc` over a column, once per distinct value.

    The rows of a chunk share their import time, and most share their day, their empty
    tags and attributes: turning each one into text again was a third of a customers
    import. Finding the distinct values and reading them back both run in C.
    """
    try:
        memo = dict.fromkeys(column)
    except TypeError:  # JSON values: lists and dicts; the empty ones alike
        empties: dict[type, Any] = {}

        def one(value: Any) -> Any:
            if value or value is None:
                return proc(value)
            kind = type(value)
            if kind not in empties:
                empties[kind] = proc(value)
            return empties[kind]

        return list(map(one, column))
    kinds = {type(value) for value in memo} - {type(None)}
    if len(kinds) > 1:  # 1 == 1.0 == True: equal keys, yet each its own text in JSON
        return list(map(proc, column))
    for value in memo:
        memo[value] = proc(value)
    return list(map(memo.__getitem__, column))


class Upsert:
    """A prepared upsert into `table`, keyed on `key`, updating `update` when they differ."""

    def __init__(
        self,
        conn: Connection,
        table: Table,
        columns: Sequence[str],
        key: Sequence[str],
        update: Sequence[str],
        prebound: Sequence[str] = (),
        key_where: Any = None,
    ) -> None:
        """`prebound` columns come already in the driver's form
        (see `ParseContext.bind_processor`); `key_where` is the condition of a partial
        unique index that `key` names."""
        self.conn = conn
        self._prebound = set(prebound)
        self.table = table
        self.columns = list(columns)
        self.dialect = conn.dialect
        self._key = list(key)
        self._key_where = key_where
        self._update = list(update)
        if self.dialect.name == "sqlite":
            self._prepare_sqlite()
        else:
            self._prepare_postgresql()

    def _conflict_clause(self, stmt: Any) -> Any:
        excluded = stmt.excluded
        return stmt.on_conflict_do_update(
            index_elements=self._key,
            index_where=self._key_where,
            set_={c: excluded[c] for c in self._update},
            where=or_(*(self.table.c[c].is_distinct_from(excluded[c]) for c in self._update)),
        )

    def _prepare_sqlite(self) -> None:
        stmt = self._conflict_clause(sqlite.insert(self.table))
        compiled = stmt.compile(dialect=self.dialect, column_keys=self.columns)
        order = list(compiled.positiontup or [])
        if order != self.columns:
            raise AssertionError(f"bind order {order} differs from {self.columns}")
        self._sql = str(compiled)
        self._processors = self._bind_processors()
        name = self.table.name.replace('"', '""')
        self._rows_after = f'SELECT count(*) FROM "{name}" WHERE rowid > ?'

    def _prepare_postgresql(self) -> None:
        self._staging = Table(
            # One per key: an import may upsert into one table by two keys.
            ("_clmbot_import_" + self.table.name + "_" + "_".join(self._key))[:63],
            MetaData(),
            *(Column(c, self.table.c[c].type) for c in self.columns),
            prefixes=["TEMPORARY"],
            postgresql_on_commit="DROP",
        )
        self._staging.create(self.conn, checkfirst=True)
        cols = [self._staging.c[c] for c in self.columns]
        self._insert = self._conflict_clause(
            postgresql.insert(self.table).from_select(self.columns, select(*cols))
        ).returning(literal_column("(xmax = 0)", Boolean))
        self._copy = sql.SQL("COPY {} ({}) FROM STDIN").format(
            sql.Identifier(self._staging.name),
            sql.SQL(", ").join(map(sql.Identifier, self.columns)),
        )
        self._copy_direct = sql.SQL("COPY {} ({}) FROM STDIN").format(
            sql.Identifier(self.table.name),
            sql.SQL(", ").join(map(sql.Identifier, self.columns)),
        )
        self._all_new = True  # try the next chunk straight into the table (see `_copied`)
        self._processors = self._bind_processors()

    def _bind_processors(self) -> list[Callable[[Any], Any] | None]:
        return [
            None if c in self._prebound else _driver_form(self.table.c[c].type, self.dialect)
            for c in self.columns
        ]

    def _processed(self, rows: Sequence[Sequence[Any]]) -> Sequence[Sequence[Any]]:
        if not any(self._processors):
            return rows
        return _processed(self._processors, rows)

    def run(self, rows: Sequence[Sequence[Any]]) -> tuple[int, int | None]:
        """Upsert `rows` (tuples in `columns` order). Returns how many rows were inserted or
        changed, and how many of those were inserted."""
        if not rows:
            return 0, 0
        values = self._processed(rows)
        if self.dialect.name == "sqlite":
            cursor = self.conn.connection.driver_connection.cursor()
            try:
                # An updated row keeps its rowid: the rows past the largest before are the
                # inserted ones.
                highest = _write_past_the_end(cursor, self.table.name, self._sql, values)
                changed = cursor.rowcount
                if changed:
                    versions.touch(self.conn, self.table.name)  # the driver's, unseen
                cursor.execute(self._rows_after, (highest,))
                (inserted,) = cursor.fetchone()
                if changed > inserted:  # rows already stored were updated
                    versions.touch(self.conn, versions.rewritten(self.table.name))
                return changed, inserted
            finally:
                cursor.close()
        if self._all_new and self._copied(values):
            versions.touch(self.conn, self.table.name)  # a COPY, unseen
            return len(values), len(values)
        raw = self.conn.connection.driver_connection
        with raw.cursor() as cursor:
            cursor.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(self._staging.name)))
            with cursor.copy(self._copy) as copy:
                for row in values:
                    copy.write_row(row)
        # xmax is 0 on a row this statement inserted, the updating transaction's id otherwise.
        # Counted here, not by the statement's look (an upsert may only insert).
        inserted = (
            self.conn.execute(self._insert.execution_options(**versions.COUNTED_BY_CALLER))
            .scalars()
            .all()
        )
        if inserted:
            versions.touch(self.conn, self.table.name)
        if not all(inserted):  # rows already stored were updated
            versions.touch(self.conn, versions.rewritten(self.table.name))
        # A chunk of new rows only: the next one is likely new too (a file past what an
        # earlier import of it wrote), so it is tried straight into the table again.
        self._all_new = all(inserted)
        return len(inserted), sum(inserted)

    def _copied(self, values: Sequence[Sequence[Any]]) -> bool:
        """COPY the chunk straight into the table, as if no row of it were there yet: True if
        so, False (and nothing written) when a row was, which the upsert then handles.

        Through a temporary table, a chunk is written twice and the upsert checks every row
        for a conflict: 2.2 times a bare COPY at 10,000,000 events. A file imported for the
        first time, the large case, has no conflict; the unique keys tell when there is one,
        and the savepoint undoes the part of the chunk written until then. After that the
        chunks go through the upsert, until one of them turns out all new again.
        """
        raw = self.conn.connection.driver_connection
        savepoint = self.conn.begin_nested()
        try:
            with raw.cursor() as cursor, cursor.copy(self._copy_direct) as copy:
                for row in values:
                    copy.write_row(row)
        except psycopg.errors.UniqueViolation:
            savepoint.rollback()
            self._all_new = False
            return False
        savepoint.commit()
        return True


def _write_past_the_end(
    cursor: Any, table: str, statement: str, values: Sequence[Sequence[Any]]
) -> int:
    """Run `statement` for every row of `values` through SQLite's own executemany, and
    return the largest rowid before it. A new row takes a rowid past the largest (SQLite's
    rule while the largest is below 2**63 - 1), so the rows past it are the new ones: two
    look-ups at the end of the rowid b-tree, whatever the size of the table (counting it
    took seconds at 10M)."""
    name = table.replace('"', '""')
    cursor.execute(f'SELECT coalesce(max(rowid), 0) FROM "{name}"')  # our own table's name
    (highest,) = cursor.fetchone()
    cursor.executemany(statement, values)
    return int(highest)


class Insert:
    """A prepared plain insert of many new rows into `table`, through the driver: SQLite's
    `executemany`, PostgreSQL's `COPY` straight into the table.

    SQLAlchemy's own executemany, asked for the new ids in the order of the rows, inserts
    one row per statement on SQLite (nothing else keeps RETURNING in order there): half of
    a customers import went to it, and on PostgreSQL the history rows went one statement
    each. Here, with `key` (a unique column), `run` returns key -> new id: read back by a
    range of rowids on SQLite; on PostgreSQL taken from the table's sequence first, so that
    the rows can be copied in with their ids.
    """

    def __init__(
        self, conn: Connection, table: Table, columns: Sequence[str], key: str | None = None
    ) -> None:
        self.conn = conn
        self.table = table
        wanted = set(columns)
        # In the table's order, which the compiled statement binds in: rows come in this one.
        self.columns = [c.name for c in table.c if c.name in wanted]
        if len(self.columns) != len(wanted):
            raise ValueError(f"{table.name} has no column {sorted(wanted - set(self.columns))}")
        self.key = key
        self.dialect = conn.dialect
        self._processors = [_driver_form(table.c[c].type, self.dialect) for c in self.columns]
        if self.dialect.name == "sqlite":
            compiled = sqlite.insert(table).compile(dialect=self.dialect, column_keys=self.columns)
            if list(compiled.positiontup or []) != self.columns:
                raise AssertionError(f"bind order differs from {self.columns}")
            self._sql = str(compiled)
            name = table.name.replace('"', '""')
            if key is not None:
                key_name = key.replace('"', '""')
                self._new_ids = f'SELECT "{key_name}", rowid FROM "{name}" WHERE rowid > ?'
            return
        columns = ["id", *self.columns] if key is not None else self.columns
        self._copy = sql.SQL("COPY {} ({}) FROM STDIN").format(
            sql.Identifier(table.name), sql.SQL(", ").join(map(sql.Identifier, columns))
        )
        if key is not None:
            # The sequence behind `id` (serial or identity), by the name PostgreSQL gives it.
            found = conn.execute(
                text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": table.name}
            ).scalar()
            if found is None:
                raise AssertionError(f"{table.name}.id has no sequence")
            self._ids = text("SELECT nextval(CAST(:s AS regclass)) FROM generate_series(1, :n)")
            self._sequence = found

    def run(self, rows: Sequence[Sequence[Any]]) -> dict[Any, int]:
        """Insert `rows` (tuples in the order of `self.columns`, the table's); with a `key`,
        return key -> new id."""
        if not rows:
            return {}
        versions.touch(self.conn, self.table.name)  # the driver's writes go unseen
        values = _processed(self._processors, rows)
        if self.dialect.name == "sqlite":
            cursor = self.conn.connection.driver_connection.cursor()
            try:
                # The new rows, read back by a range of the rowid b-tree. (The id is the rowid.)
                highest = _write_past_the_end(cursor, self.table.name, self._sql, values)
                if self.key is None:
                    return {}
                cursor.execute(self._new_ids, (highest,))
                return dict(cursor.fetchall())
            finally:
                cursor.close()
        ids: dict[Any, int] = {}
        if self.key is not None:
            new = self.conn.execute(self._ids, {"s": self._sequence, "n": len(values)})
            position = self.columns.index(self.key)
            keyed = []
            # All at once: iterated, the result fetched them one call per row.
            for new_id, row in zip(new.scalars().all(), values, strict=True):
                ids[row[position]] = new_id
                keyed.append((new_id, *row))
            values = keyed
        raw = self.conn.connection.driver_connection
        with raw.cursor() as cursor, cursor.copy(self._copy) as copy:
            for row in values:
                copy.write_row(row)
        return ids
