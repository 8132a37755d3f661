"""What every kind of import shares: the context it runs in, its report, and the customer
look-up by external id that events and feedback need."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, Generic, Protocol, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Connection,
    Table,
    func,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect

from clmbot.config import LifecycleConfig
from clmbot.files import restore
from clmbot.importing.csvstream import MAX_CELL, Header, RejectWriter, Row, has_nul, not_utf8
from clmbot.importing.fields import FieldError
from clmbot.importing.spill import SpillMap
from clmbot.store.lookups import LOOKUP_BATCH, one_of, planned_for_values
from clmbot.store.models import Customer

T = TypeVar("T")
CUSTOMERS = Customer.__table__
# Stay far below SQLite's limit on bound parameters in one statement.
IN_BATCH = 500


@dataclass
class CheckingStats:
    """How the rows were checked: for the report, and the benchmark's memory figure."""

    second_process: bool = False
    checker_peak_rss_mb: float | None = None
    bytes_read: int = 0  # of the file, by whoever read it: to tell a file that changed


@dataclass
class ImportReport:
    kind: str
    path: Path
    rows: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    customers_created: int = 0
    # Rows of customers who were forgotten (`clmbot forget`): left out, never brought back.
    forgotten: int = 0
    seconds: float = 0.0
    rejected_path: Path | None = None
    strict_aborted: bool = False
    notes: list[str] = field(default_factory=list)
    checking: CheckingStats = field(default_factory=CheckingStats)

    @property
    def ok(self) -> bool:
        return self.rejected == 0 and self.forgotten == 0

    def summary(self) -> str:
        if self.strict_aborted:
            head = (
                f"{self.kind}: nothing imported (--strict): {self.rejected} of {self.rows} "
                f"rows rejected"
            )
        else:
            head = (
                f"{self.kind}: {self.rows} rows: {self.inserted} inserted, {self.updated} updated, "
                f"{self.unchanged} unchanged, {self.rejected} rejected"
            )
            if self.customers_created:
                head += f"; {self.customers_created} new customers created"
        head += f" in {self.seconds:.1f} s"
        lines = [head]
        if self.rejected_path is not None:
            lines.append(f"rejected rows, each with its reason: {self.rejected_path}")
        if self.forgotten:
            lines.append(
                f"{self.forgotten} rows left out: they are of customers who were forgotten "
                "(clmbot forget), whom an import does not bring back"
            )
        lines.extend(self.notes)
        return "\n".join(lines)


@dataclass(frozen=True)
class ParseContext:
    """What checking rows needs, and nothing more: small and picklable, since the rows of a
    large file are checked in a second process (see runner)."""

    now: datetime
    zone: ZoneInfo
    lifecycle: LifecycleConfig
    dialect: str  # "sqlite" or "postgresql": the form some values are bound in

    def bind_processor(self, table: Table, column: str) -> Callable[[Any], Any]:
        """What turns a value of `column` into the driver's form (identity if nothing)."""
        dialect = _DIALECTS[self.dialect]
        proc = table.c[column].type.dialect_impl(dialect).bind_processor(dialect)
        return proc or _identity


def _identity(value: Any) -> Any:
    return value


_DIALECTS: dict[str, Dialect] = {
    "sqlite": sqlite.dialect(),
    "postgresql": postgresql.psycopg.dialect(),
}


@dataclass
class ImportContext:
    conn: Connection
    now: datetime
    zone: ZoneInfo
    lifecycle: LifecycleConfig
    source_name: str
    rejects: RejectWriter
    report: ImportReport
    strict: bool = False
    # Rows the bulk upserts inserted or changed, and of those inserted (None: not known, to be
    # counted from the table), for the report.
    changed: int = 0
    inserted: int | None = 0

    def count(self, changed: int, inserted: int | None) -> None:
        self.changed += changed
        self.inserted = (
            None if inserted is None or self.inserted is None else (self.inserted + inserted)
        )

    def parse_context(self) -> ParseContext:
        return ParseContext(self.now, self.zone, self.lifecycle, self.conn.dialect.name)

    def reject(self, row: Row, reason: str) -> None:
        self.rejects.write(row, reason)
        self.report.rejected += 1

    @property
    def writing(self) -> bool:
        """False once --strict has seen a bad row: keep reading to report every bad row,
        but stop writing what will be rolled back anyway."""
        return not (self.strict and self.report.rejected)


def row_problem(header: Header, row: Row) -> str | None:
    """The checks every row gets (field count, encoding, NUL bytes): what is wrong, or None.

    A row that passes has the cells a rejected file guarded against spreadsheets restored
    (`'=x` back to `=x`), in place, so that a corrected rejected file imports as it is.
    """
    cells = row[1]
    if len(cells) != len(header.names):
        return (
            f"has {len(cells)} fields, the header has {len(header.names)}; "
            "check for an unquoted comma or a missing cell"
        )
    bad = not_utf8(cells)
    if bad:
        return f"{bad}; save the file as UTF-8"
    bad = has_nul(cells)
    if bad:
        return bad
    # Both looks at every cell only when the row as a whole says it may be needed: they
    # were a third of checking a customers row.
    joined = "".join(cells)
    if len(joined) > MAX_CELL:
        longest = max(range(len(cells)), key=lambda pos: len(cells[pos]))
        if len(cells[longest]) > MAX_CELL:
            return (
                f"column {longest + 1} is {len(cells[longest]):,} characters long; a cell may "
                f"hold at most {MAX_CELL:,}"
            )
    if "'" in joined:
        for pos, cell in enumerate(cells):
            if cell[:1] == "'":
                cells[pos] = restore(cell)
    return None


@dataclass
class Parsed(Generic[T]):
    """One chunk, checked: the rows to write, and the rows refused with their reasons."""

    items: list[T] = field(default_factory=list)
    rejects: list[tuple[Row, str]] = field(default_factory=list)


def extras(header: Header, fields: list[str]) -> dict[str, str]:
    """Extra columns, kept as attributes; an empty cell says nothing and is not kept."""
    return {name: fields[pos].strip() for name, pos in header.extras if fields[pos].strip()}


class KeyedChecker:
    """A checker for files whose rows have a key (customer, kind and time):
    each row is checked (`_parse`), and a second row with the key of an earlier one is
    refused, naming the line of the first (`_repeated`). Checked rows are `_item`s: by
    default `(row, *values, extra columns)`."""

    key_names: ClassVar[str]  # "customer, kind and responded_at", for the message

    def __init__(self, header: Header, pctx: ParseContext) -> None:
        self.header = header
        self.pctx = pctx
        self.first_line = SpillMap()  # hash of a row's key -> the line it is first on

    def _parse(self, fields: list[str]) -> tuple[Any, ...]:
        raise NotImplementedError

    def _key(self, values: Any) -> Hashable:
        raise NotImplementedError

    def _repeated(self, values: Any, first: int) -> str:
        return f"same {self.key_names} as line {first}; keep one"

    def _item(self, row: Row, values: Any) -> Any:
        return (row, *values, extras(self.header, row[1]) or None)

    def parse(self, rows: list[Row]) -> Parsed[Any]:
        out: Parsed[Any] = Parsed()
        checked: list[tuple[Row, Any]] = []
        for row in rows:
            problem = row_problem(self.header, row)
            if problem:
                out.rejects.append((row, problem))
                continue
            try:
                values = self._parse(row[1])
            except FieldError as exc:
                out.rejects.append((row, str(exc)))
                continue
            checked.append((row, values))
        # One entry per row of the file, so in bounded memory (see `SpillMap`).
        keys = [hash(self._key(values)) for _, values in checked]
        self.first_line.load(keys)
        first_line = self.first_line.memory
        had_rejects, added = bool(out.rejects), False
        for (row, values), key in zip(checked, keys, strict=True):
            first = first_line.get(key)
            if first is not None:
                out.rejects.append((row, self._repeated(values, first)))
                added = True
                continue
            first_line[key] = row[0]
            out.items.append(self._item(row, values))
        if added and had_rejects:
            out.rejects.sort(key=lambda reject: reject[0][0])  # in file order
        self.first_line.settle()
        return out

    def close(self) -> None:
        self.first_line.close()


class RowChecker(Protocol):
    """Checks the rows of one kind of file, a chunk at a time, without the database: it may
    run in another process than the import (see runner)."""

    def __init__(self, header: Header, pctx: ParseContext) -> None: ...
    def parse(self, rows: list[Row]) -> Parsed[Any]: ...
    def close(self) -> None:
        """Free what the checker kept of the rows (it may hold a file on disk)."""


class ImportKind(Protocol):
    """One kind of file: its columns, its row checker, and the writing of checked rows
    inside the import's transaction."""

    name: ClassVar[str]
    known: ClassVar[set[str]]
    required: ClassVar[set[str]]
    checker: ClassVar[type[RowChecker]]
    # The column a rejected file adds with each row's reason.
    reject_column: ClassVar[str]

    def __init__(self, ctx: ImportContext, header: Header) -> None: ...
    def write(self, items: list[Any]) -> None: ...
    def finish(self) -> None: ...


def no_customers_yet(conn: Connection) -> bool:
    """Whether the database holds no customer, asked by an import under its lock: then every
    customer there will be during the import is one it creates itself, since only imports
    create customers and they take turns. (A first import of a million customers asked the
    database 200 times for 5,000 ids each, and found none.)"""
    return conn.execute(select(CUSTOMERS.c.id).limit(1)).first() is None


# `CustomerIds` reads every id at once when a file has asked for more than this share of the
# customers there are (and at least `READ_ALL_FROM` of them).
READ_ALL_SHARE = 0.1
READ_ALL_FROM = 20_000
READ_AT_ONCE = 50_000  # rows per fetch while reading them all


class CustomerIds:
    """external_id -> customers.id, asked of the database once per id and remembered.

    A file of events for most customers asks for nearly all of them, a chunk at a time: at a
    million customers, 630,000 ids in 150 look-ups of index probes, 6 s on PostgreSQL, where
    reading the whole table's ids takes about one. So once a file has asked for a tenth of
    the customers, the rest are read in one go; a small file into a large database never
    gets there, and costs only its own look-ups."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._ids: dict[str, int] = {}
        # With no customer yet, every customer is one `add`ed here: nothing to ask.
        self._complete = no_customers_yet(conn)
        self._asked = 0
        self._customers: int | None = None  # at most how many there are, once needed

    @property
    def cache(self) -> dict[str, int]:
        """Every id looked up or added so far; read it, do not change it."""
        return self._ids

    def known(self, external_ids: Iterable[str]) -> dict[str, int]:
        """The cache, after looking up those of `external_ids` it does not hold yet."""
        cache = self._ids
        if self._complete:
            return cache
        missing = list(set(external_ids).difference(cache))  # in C
        if not missing:
            return cache
        self._asked += len(missing)
        if self._asked >= READ_ALL_FROM and self._asked > READ_ALL_SHARE * self._how_many():
            # Every customer, as of now: later ones are this import's own (`add`), since
            # only imports create customers and they take turns.
            every = select(CUSTOMERS.c.external_id, CUSTOMERS.c.id)
            # Streamed (a server-side cursor on PostgreSQL): never all rows held twice.
            streamed = self._conn.execute(every.execution_options(yield_per=READ_AT_ONCE))
            for part in streamed.partitions():
                cache.update(part)
            self._complete = True
            return cache
        dialect = self._conn.dialect.name
        with planned_for_values(self._conn):
            for start in range(0, len(missing), LOOKUP_BATCH):
                batch = missing[start : start + LOOKUP_BATCH]
                query = select(CUSTOMERS.c.external_id, CUSTOMERS.c.id).where(
                    one_of(CUSTOMERS.c.external_id, batch, dialect)
                )
                cache.update(self._conn.execute(query).all())
        return cache

    def _how_many(self) -> int:
        """The largest customer id: at least the number of customers, from the primary key's
        last entry (counting them would read the whole table)."""
        if self._customers is None:
            highest = self._conn.execute(select(func.max(CUSTOMERS.c.id))).scalar()
            self._customers = highest or 0
        return self._customers

    def add(self, external_id: str, customer_id: int) -> None:
        self._ids[external_id] = customer_id
