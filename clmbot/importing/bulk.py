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

from collections.abc import Callable, Sequence
from typing import Any

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
)
from sqlalchemy.dialects import postgresql, sqlite


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
        self._max_rowid = f'SELECT coalesce(max(rowid), 0) FROM "{name}"'
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
        self._processors = self._bind_processors()

    def _bind_processors(self) -> list[Callable[[Any], Any] | None]:
        return [
            None
            if c in self._prebound
            else self.table.c[c].type.dialect_impl(self.dialect).bind_processor(self.dialect)
            for c in self.columns
        ]

    def _processed(self, rows: Sequence[Sequence[Any]]) -> Sequence[Sequence[Any]]:
        if not any(self._processors):
            return rows
        # Column-wise: transposing with zip and mapping each processor runs in C.
        columns = [
            list(map(proc, column)) if proc is not None else column
            for proc, column in zip(self._processors, zip(*rows, strict=True), strict=True)
        ]
        return list(zip(*columns, strict=True))

    def run(self, rows: Sequence[Sequence[Any]]) -> tuple[int, int | None]:
        """Upsert `rows` (tuples in `columns` order). Returns how many rows were inserted or
        changed, and how many of those were inserted."""
        if not rows:
            return 0, 0
        values = self._processed(rows)
        if self.dialect.name == "sqlite":
            cursor = self.conn.connection.driver_connection.cursor()
            try:
                # A new row takes a rowid past the largest (SQLite's rule while the largest
                # is below 2**63 - 1); an updated row keeps its own. So the rows past the
                # largest before are the inserted ones: two look-ups at the end of the rowid
                # b-tree, whatever the size of the table (counting it took seconds at 10M).
                cursor.execute(self._max_rowid)
                (highest,) = cursor.fetchone()
                cursor.executemany(self._sql, values)
                changed = cursor.rowcount
                cursor.execute(self._rows_after, (highest,))
                (inserted,) = cursor.fetchone()
                return changed, inserted
            finally:
                cursor.close()
        raw = self.conn.connection.driver_connection
        with raw.cursor() as cursor:
            cursor.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(self._staging.name)))
            with cursor.copy(self._copy) as copy:
                for row in values:
                    copy.write_row(row)
        # xmax is 0 on a row this statement inserted, the updating transaction's id otherwise.
        inserted = self.conn.execute(self._insert).scalars().all()
        return len(inserted), sum(inserted)
