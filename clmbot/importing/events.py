"""`events.csv`: the hot path (millions of rows), so the row loop is kept flat.

Several events of one kind at one moment are distinct events (two orders on one day). An
`event_id` column, when the file has one, is an event's identity; without it, the rows with
the same customer, kind and time are numbered in file order (`seq`), so that importing the
same file again changes nothing.

A customer first seen here is created: stage `purchase` if any of their events in the file
is a purchase (else the first stage), signup date the day of their earliest event. Both are
settled at the end of the import, since a later chunk can hold an earlier or a purchase event.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any, ClassVar

from sqlalchemy import bindparam, insert, text, update

from clmbot import history as stage_history
from clmbot.forget import forgotten_ids
from clmbot.importing import fields as f
from clmbot.importing.base import (
    CUSTOMERS,
    CustomerIds,
    ImportContext,
    ParseContext,
    Parsed,
    extras,
    row_problem,
)
from clmbot.importing.bulk import Upsert
from clmbot.importing.csvstream import MAX_CELL, Header, Row
from clmbot.importing.spill import SpillMap
from clmbot.store.models import SIGNUP, Event

EVENTS = Event.__table__
PURCHASE = "purchase"
# external id, kind, occurred_at as text (see `EventsChecker`), value, extra columns, seq (None
# when the row has an event id), event id. No datetime: rows cross a process boundary, and
# pickling a datetime costs five times its text.
_Event = tuple[str, str, Any, float | None, dict[str, str] | None, int | None, str | None]
# A checked row waiting for its number: row, external id, kind, time, value, extra columns,
# event id.
_Pending = tuple[Row, str, str, Any, float | None, dict[str, str] | None, str | None]
_WITH_EVENT_ID = text("event_id IS NOT NULL")


@dataclass
class _Created:
    """A customer this import created: what was written for them, and what the file has told
    about them so far."""

    signup: datetime
    purchased: bool
    id: int = 0
    written_stage: str = ""
    written_signup: datetime | None = None


def _postgresql_time(at: datetime) -> str:
    """An aware datetime as the text PostgreSQL reads as that instant: the form of SQLite's
    stored text, with its zone."""
    return at.astimezone(UTC).isoformat(" ", "microseconds")[:26] + "+00"


class EventsChecker:
    def __init__(self, header: Header, pctx: ParseContext) -> None:
        self.header = header
        self.pctx = pctx
        # hash of (customer, time, kind) -> rows seen so far, and hash of (kind, event id) ->
        # the line it was first seen on: an entry per row of the file, so kept in bounded
        # memory (see `SpillMap`).
        self.seen = SpillMap()
        self.event_ids = SpillMap()
        self.sqlite = pctx.dialect == "sqlite"
        # Times travel as text on both databases: SQLite stores it; PostgreSQL's COPY reads
        # it (a datetime cost five times as much to pickle, and the checker is the slower
        # side of a PostgreSQL import). One text per instant, either way: the seq key.
        self.zone_suffix = "" if self.sqlite else "+00"
        self.bind_time = (
            pctx.bind_processor(EVENTS, "occurred_at") if self.sqlite else _postgresql_time
        )

    def close(self) -> None:
        self.seen.close()
        self.event_ids.close()

    def parse(self, rows: list[Row]) -> Parsed[_Event]:
        pctx, header = self.pctx, self.header
        i_ext = header.index["customer_external_id"]
        i_kind = header.index["kind"]
        i_time = header.index["occurred_at"]
        i_value = header.index.get("value")
        i_event_id = header.index.get("event_id")
        ncols = len(header.names)
        has_extras = bool(header.extras)
        zone, latest, earliest = pctx.zone, pctx.now + f.FUTURE_SLACK, f.EARLIEST_YEAR
        fromiso = datetime.fromisoformat
        bind_time, suffix = self.bind_time, self.zone_suffix
        out: Parsed[_Event] = Parsed()
        rejects = out.rejects
        pending: list[_Pending] = []
        plain: list[int] = []  # the keys of rows without an event id, in order
        named: list[int] = []  # and of rows with one
        for row in rows:
            cells = row[1]
            # Fast path for the common row; the shared checks name the problem otherwise.
            joined = "".join(cells)
            if (
                len(cells) != ncols
                or not joined.isascii()
                or "\x00" in joined
                or "'" in joined
                or len(joined) > MAX_CELL
            ):
                problem = row_problem(header, row)
                if problem:
                    rejects.append((row, problem))
                    continue
            ext = cells[i_ext].strip()
            kind = cells[i_kind].strip().lower()
            raw_time = cells[i_time].strip()
            raw_value = cells[i_value].strip() if i_value is not None else ""
            event_id = cells[i_event_id].strip() if i_event_id is not None else ""
            try:
                if not ext:
                    raise f.FieldError("customer_external_id is empty")
                if not kind:
                    raise f.FieldError("kind is empty; use e.g. purchase, login, ticket")
                if len(ext) > 200 or len(kind) > 60:
                    raise f.FieldError("customer_external_id (200) or kind (60) is too long")
                try:
                    at = fromiso(raw_time)
                    if at.year < earliest:
                        raise ValueError
                    if at.tzinfo is None:
                        at = at.replace(tzinfo=zone)
                    if at > latest:
                        raise ValueError
                except (ValueError, OverflowError):
                    at = f.timestamp("occurred_at", raw_time, zone, pctx.now)  # says why
                if (
                    len(raw_time) == 20
                    and raw_time[19] == "Z"
                    and raw_time[10] == "T"
                    and raw_time[4] == raw_time[7] == "-"
                ):
                    # 2024-05-01T10:00:00Z, checked above, is the stored text but for two
                    # cuts: formatting the datetime instead costs more than the insert.
                    stored = raw_time[:10] + " " + raw_time[11:19] + ".000000" + suffix
                else:
                    stored = bind_time(at)
                value = f.number("value", raw_value) if raw_value else None
                if len(event_id) > 200:
                    raise f.FieldError("event_id is longer than 200 characters")
            except f.FieldError as exc:
                rejects.append((row, str(exc)))
                continue
            attrs = (extras(header, cells) or None) if has_extras else None
            if event_id:
                named.append(hash((kind, event_id)))
                pending.append((row, ext, kind, stored, value, attrs, event_id))
            else:
                plain.append(hash((ext, stored, kind)))  # stored: one text per instant
                pending.append((row, ext, kind, stored, value, attrs, None))
        self._number(pending, plain, named, out)
        return out

    def _number(
        self, pending: list[_Pending], plain: list[int], named: list[int], out: Parsed[_Event]
    ) -> None:
        """Number the rows of a chunk that share customer, time and kind, and refuse a second
        row with an event id seen before, in file order. Apart from checking: the keys of
        the whole chunk are first brought back from disk at once (see `SpillMap`)."""
        self.seen.load(plain)
        self.event_ids.load(named)
        seen, event_ids = self.seen.memory, self.event_ids.memory
        good, rejects = out.items, out.rejects
        had_rejects = bool(rejects)
        added = False
        i_plain = i_named = 0
        for row, ext, kind, stored, value, attrs, event_id in pending:
            if event_id is None:
                key = plain[i_plain]
                i_plain += 1
                seq = seen.get(key, 0)
                seen[key] = seq + 1
                good.append((ext, kind, stored, value, attrs, seq, None))
                continue
            key = named[i_named]
            i_named += 1
            first = event_ids.get(key)
            if first is not None:
                rejects.append(
                    (
                        row,
                        f"event_id {f.show(event_id)} of kind {kind} already appears on line "
                        f"{first}; an event id names one event",
                    )
                )
                added = True
                continue
            event_ids[key] = row[0]
            good.append((ext, kind, stored, value, attrs, None, event_id))
        if added and had_rejects:
            rejects.sort(key=_line)  # in file order, as they were found before
        self.seen.settle()
        self.event_ids.settle()


def _line(reject: tuple[Row, str]) -> int:
    return reject[0][0]


_external_id = itemgetter(0)  # of an `_Event`


class EventsImport:
    name: ClassVar[str] = "events"
    known: ClassVar[set[str]] = {"customer_external_id", "kind", "occurred_at", "value", "event_id"}
    required: ClassVar[set[str]] = {"customer_external_id", "kind", "occurred_at"}
    checker: ClassVar[type[EventsChecker]] = EventsChecker
    reject_column: ClassVar[str] = "reason"

    def __init__(self, ctx: ImportContext, header: Header) -> None:
        self.ctx = ctx
        self.header = header
        self.ids = CustomerIds(ctx.conn)
        self.created: dict[str, _Created] = {}
        # Attributes only when the file has extra columns: fewer values to bind per row, and a
        # file without them leaves attributes from an earlier file alone.
        extra = ["attributes"] if header.extras else []
        self.upsert = Upsert(
            ctx.conn,
            EVENTS,
            ["customer_id", "kind", "occurred_at", "value", "seq", *extra],
            key=["customer_id", "occurred_at", "kind", "seq"],
            update=["value", *extra],
            prebound=["occurred_at", "value", "seq"],  # bound by the checker; plain numbers
        )
        # Rows with an event id: that is their identity, so their customer and time may change.
        self.by_event_id = (
            Upsert(
                ctx.conn,
                EVENTS,
                ["customer_id", "kind", "occurred_at", "value", "event_id", *extra],
                key=["kind", "event_id"],
                key_where=_WITH_EVENT_ID,
                update=["customer_id", "occurred_at", "value", *extra],
                prebound=["occurred_at", "value", "event_id"],
            )
            if header.has("event_id")
            else None
        )
        self.sqlite = ctx.conn.dialect.name == "sqlite"
        stages = ctx.lifecycle.stages
        self.purchase_stage = PURCHASE if PURCHASE in stages else ctx.lifecycle.first_stage

    def write(self, items: list[_Event]) -> None:
        if not self.ctx.writing:
            return
        ids = self.ids.cache
        missing = set(map(_external_id, items)).difference(ids)  # in C: a set less a dict
        # Customers the database does not hold either. (Not `missing - set(cache)`: that
        # copied the whole cache, a million ids, once per chunk.)
        unknown: set[str] = set()
        if missing:
            known = self.ids.known(missing)
            unknown = missing.difference(known)
        if unknown:
            # A customer forgotten is not created again from their events: left out, said.
            gone = forgotten_ids(self.ctx.conn, unknown)
            if gone:
                self.ctx.report.forgotten += sum(1 for item in items if item[0] in gone)
                items = [item for item in items if item[0] not in gone]
                unknown -= gone
        if unknown or self.created:
            self._settle_customers(items, unknown)
        extras = self.header.extras
        if self.by_event_id is not None:
            named = [item for item in items if item[6] is not None]
            items = [item for item in items if item[6] is None]
            # customer_id, kind, occurred_at, value, event_id, attributes
            if extras:
                keyed = [(ids[e], k, at, v, eid, attrs) for e, k, at, v, attrs, _, eid in named]
            else:
                keyed = [(ids[e], k, at, v, eid) for e, k, at, v, _, _, eid in named]
            self.ctx.count(*self.by_event_id.run(keyed))
        if not items:
            return
        # In the upserts' column order: customer_id, kind, occurred_at, value, seq, attributes;
        # column by column, which runs in C.
        e, k, at, value, attrs, seq, _ = zip(*items, strict=True)
        customer = map(ids.__getitem__, e)
        columns = (customer, k, at, value, seq, attrs) if extras else (customer, k, at, value, seq)
        rows = list(zip(*columns, strict=True))
        self.ctx.count(*self.upsert.run(rows))

    def _settle_customers(self, items: list[_Event], unknown: set[str]) -> None:
        """Create the customers the database does not hold (`unknown`), and keep what the
        file says about every customer this import created."""
        news: dict[str, _Created] = {}
        created = self.created
        for ext, kind, stored, *_ in items:
            if ext not in unknown and ext not in created:
                continue
            at = self._instant(stored)
            seen = created.get(ext) or news.get(ext)
            if seen is None:
                news[ext] = _Created(signup=at, purchased=kind == PURCHASE)
            else:
                seen.signup = min(seen.signup, at)
                seen.purchased = seen.purchased or kind == PURCHASE
        if news:
            self._create(news)

    def _instant(self, stored: Any) -> datetime:
        """The aware datetime of a bound time (SQLite's text, or PostgreSQL's with "+00")."""
        if self.sqlite:
            return datetime.fromisoformat(stored).replace(tzinfo=UTC)
        return datetime.fromisoformat(stored)

    def _create(self, news: dict[str, _Created]) -> None:
        ctx = self.ctx
        rows = []
        for ext, c in news.items():
            c.written_stage = self.purchase_stage if c.purchased else ctx.lifecycle.first_stage
            c.written_signup = c.signup
            rows.append(
                {
                    "external_id": ext,
                    "name": ext,
                    "stage": c.written_stage,
                    "signup_date": c.signup.astimezone(ctx.zone).date(),
                    "tags": [],
                    "attributes": {},
                    "locale": "",
                    "created_at": ctx.now,
                    "updated_at": ctx.now,
                }
            )
        returned = ctx.conn.execute(
            insert(CUSTOMERS).returning(CUSTOMERS.c.id, CUSTOMERS.c.external_id), rows
        ).all()
        for customer_id, ext in returned:
            news[ext].id = customer_id
            self.ids.add(ext, customer_id)
        self.created.update(news)

    def finish(self) -> None:
        """Settle the created customers' stage and signup, and record how each began."""
        ctx = self.ctx
        if not self.created or not ctx.writing:
            return
        fixes = []
        history = []
        for c in self.created.values():
            stage = self.purchase_stage if c.purchased else ctx.lifecycle.first_stage
            signup_day = c.signup.astimezone(ctx.zone).date()
            if stage != c.written_stage or c.signup != c.written_signup:
                fixes.append({"_id": c.id, "stage": stage, "signup_date": signup_day})
            history.append(
                {
                    "customer_id": c.id,
                    "from_stage": None,
                    "to_stage": stage,
                    "at": c.signup.astimezone(UTC),
                    "by": "import",
                    "reason": f"created by import of {ctx.source_name}",
                    "basis": SIGNUP,
                }
            )
        if fixes:
            ctx.conn.execute(
                update(CUSTOMERS)
                .where(CUSTOMERS.c.id == bindparam("_id"))
                .values(stage=bindparam("stage"), signup_date=bindparam("signup_date")),
                fixes,
            )
        stage_history.add_many(ctx.conn, history)
        ctx.report.customers_created = len(self.created)
