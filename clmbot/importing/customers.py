"""`customers.csv`: upsert by external id; a changed stage is a row in the stage history.

An empty cell means "this file does not say" and keeps what is stored, so a partial export
from another tool cannot wipe e-mails or owners it did not carry. Tags given replace the
stored tags; extra columns are merged into the customer's attributes.

When a customer entered their stage is taken from the file, never made up: `stage_since`
dates the current stage, else `signup_date` dates a new customer's first stage. Without
either, the row is dated at the import and marked as such (`basis = "import"`), so that a
first import does not look like every customer entering their stage today. A later file
that brings the date re-dates that guess.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from datetime import date, datetime
from operator import itemgetter
from typing import Any, ClassVar

from sqlalchemy import bindparam, select, update

from clmbot import history as stage_history
from clmbot.forget import forgotten_ids
from clmbot.importing import fields as f
from clmbot.importing.base import (
    CUSTOMERS,
    IN_BATCH,
    ImportContext,
    KeyedChecker,
    ParseContext,
    extras,
    no_customers_yet,
)
from clmbot.importing.bulk import Insert
from clmbot.importing.csvstream import Header, Row
from clmbot.periods import midnight
from clmbot.store.lookups import LOOKUP_BATCH, one_of, planned_for_values
from clmbot.store.models import EXACT, IMPORTED, SIGNUP

HISTORY = stage_history.HISTORY

# Columns a file may set, besides external_id; `tags` and `attributes` are handled apart.
_FIELDS = (
    "name",
    "email",
    "slack_user_id",
    "stage",
    "owner_slack_id",
    "plan",
    "region",
    "mrr",
    "signup_date",
    "locale",
    "timezone",
)

# What a new customer's row and a history row are written with.
_NEW_COLUMNS = ("external_id", *_FIELDS, "tags", "attributes", "created_at", "updated_at")
_HISTORY_COLUMNS = ("customer_id", "from_stage", "to_stage", "at", "by", "reason", "basis")


class CustomersChecker(KeyedChecker):
    """A second row of one customer is refused, naming the line of the first."""

    key_names = "external_id"

    def __init__(self, header: Header, pctx: ParseContext) -> None:
        super().__init__(header, pctx)
        self.now = pctx.now
        self.zone = pctx.zone
        self.stages = pctx.lifecycle.stages
        now, zone = self.now, self.zone
        parsers: dict[str, Callable[[str], Any]] = {
            "email": lambda v: f.email("email", v),
            "slack_user_id": lambda v: f.slack_user("slack_user_id", v),
            "owner_slack_id": lambda v: f.slack_user("owner_slack_id", v),
            "stage": self._stage,
            "plan": lambda v: f.text("plan", v, 100),
            "region": lambda v: f.text("region", v, 100),
            "mrr": lambda v: f.number("mrr", v, minimum=0),
            "signup_date": lambda v: f.day("signup_date", v, now),
            "stage_since": lambda v: f.timestamp("stage_since", v, zone, now),
            "locale": lambda v: f.locale("locale", v),
            "timezone": lambda v: f.zone_name("timezone", v),
        }
        # The columns this file has, each with its position and parser: made once per file,
        # not once per row (a quarter of checking a row went to making them).
        self._parsers = [
            (column, header.index[column], parse)
            for column, parse in parsers.items()
            if header.has(column)
        ]

    def _parse(self, fields: list[str]) -> dict[str, Any]:
        h = self.header
        external_id = h.get(fields, "external_id")
        if not external_id:
            raise f.FieldError("external_id is empty; every customer needs one")
        values: dict[str, Any] = {"external_id": f.text("external_id", external_id, 200)}
        name = h.get(fields, "name")
        if not name:
            raise f.FieldError("name is empty; every customer needs a name")
        values["name"] = f.text("name", name, 300)
        for column, pos, parse in self._parsers:
            cell = fields[pos].strip()
            if cell:
                values[column] = parse(cell)
        if h.has("tags") and h.get(fields, "tags"):
            values["tags"] = f.tags(h.get(fields, "tags"))
        values["attributes"] = extras(h, fields)
        return values

    def _stage(self, value: str) -> str:
        stage = value.lower()
        if stage not in self.stages:
            raise f.FieldError(
                f"stage {value!r} is not a stage; use one of: {', '.join(self.stages)}"
            )
        return stage

    def _key(self, values: dict[str, Any]) -> Hashable:
        return values["external_id"]  # one entry per customer of the file

    def _repeated(self, values: dict[str, Any], first: int) -> str:
        return (
            f"external_id {values['external_id']} already appears on line {first}; "
            "keep one row per customer"
        )

    def _item(self, row: Row, values: dict[str, Any]) -> dict[str, Any]:
        return values


class CustomersImport:
    name: ClassVar[str] = "customers"
    known: ClassVar[set[str]] = {"external_id", "tags", "stage_since", *_FIELDS}
    required: ClassVar[set[str]] = {"external_id", "name"}
    checker: ClassVar[type[CustomersChecker]] = CustomersChecker
    reject_column: ClassVar[str] = "reason"

    def __init__(self, ctx: ImportContext, header: Header) -> None:
        self.ctx = ctx
        self.header = header
        self.inserter = Insert(ctx.conn, CUSTOMERS, _NEW_COLUMNS, key="external_id")
        self.history = Insert(ctx.conn, HISTORY, _HISTORY_COLUMNS)
        self._new_values = itemgetter(*self.inserter.columns)
        # What a new customer has where the file says nothing. (Tags as a tuple: shared by
        # every row, so nothing may change it in place; written as the same '[]'.)
        self._defaults: dict[str, Any] = dict.fromkeys(_FIELDS)
        self._defaults.update(
            stage=ctx.lifecycle.first_stage,
            locale="",
            tags=(),
            created_at=ctx.now,
            updated_at=ctx.now,
        )
        self._history_values = itemgetter(*self.history.columns)
        self._midnights: dict[date, datetime] = {}
        # No customer yet: every row of the file is new (the checker lets each external id
        # through once), so none is looked up, nor among the forgotten.
        self._first = no_customers_yet(ctx.conn)

    def _existing(self, external_ids: list[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        cols = [CUSTOMERS.c.id, CUSTOMERS.c.external_id, CUSTOMERS.c.tags, CUSTOMERS.c.attributes]
        cols += [CUSTOMERS.c[c] for c in _FIELDS]
        dialect = self.ctx.conn.dialect.name
        with planned_for_values(self.ctx.conn):
            for start in range(0, len(external_ids), LOOKUP_BATCH):
                batch = external_ids[start : start + LOOKUP_BATCH]
                query = select(*cols).where(one_of(CUSTOMERS.c.external_id, batch, dialect))
                for row in self.ctx.conn.execute(query).mappings():
                    found[row["external_id"]] = dict(row)
        return found

    def write(self, parsed: list[dict[str, Any]]) -> None:
        ctx, report = self.ctx, self.ctx.report
        if not ctx.writing:
            return
        existing: dict[str, dict[str, Any]] = {}
        gone: set[str] = set()
        if not self._first:
            existing = self._existing([v["external_id"] for v in parsed])
            gone = forgotten_ids(
                ctx.conn, [v["external_id"] for v in parsed if v["external_id"] not in existing]
            )
        if gone:
            report.forgotten += sum(1 for v in parsed if v["external_id"] in gone)
            parsed = [v for v in parsed if v["external_id"] not in gone]
        histories = self._histories([old["id"] for old in existing.values()])
        inserts: list[dict[str, Any]] = []
        starts: list[dict[str, Any]] = []  # the first stage of each new customer, in order
        updates: list[dict[str, Any]] = []
        moves: list[dict[str, Any]] = []
        redates: list[dict[str, Any]] = []
        for values in parsed:
            old = existing.get(values["external_id"])
            if old is None:
                row = self._new_row(values)
                inserts.append(row)
                starts.append(self._start(values, row["stage"]))
                continue
            merged = self._merge(old, values)
            history = histories.get(old["id"], [])
            if merged["stage"] != old["stage"]:
                moves.append(self._move(old["id"], old["stage"], merged["stage"], values, history))
            else:
                redate = self._redate(values, merged["stage"], history)
                if redate is not None:
                    redates.append(redate)
            if merged == {k: old[k] for k in merged}:
                if redates and redates[-1]["_cid"] == old["id"]:
                    report.updated += 1
                else:
                    report.unchanged += 1
                continue
            updates.append({"_id": old["id"], **merged, "updated_at": ctx.now})
        if inserts:
            ids = self.inserter.run([self._new_values(row) for row in inserts])
            for row, start in zip(inserts, starts, strict=True):
                start["customer_id"] = ids[row["external_id"]]
                moves.append(start)
            report.inserted += len(inserts)
        if updates:
            stmt = (
                update(CUSTOMERS)
                .where(CUSTOMERS.c.id == bindparam("_id"))
                .values({k: bindparam(k) for k in updates[0] if k != "_id"})
            )
            ctx.conn.execute(stmt, updates)
            report.updated += len(updates)
        stage_history.redate(ctx.conn, redates)
        self.history.run([self._history_values(move) for move in moves])

    def _histories(self, customer_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
        """The stage history of customers already stored, oldest first: where a move the file
        reveals may be dated, and which undated first stage it may date."""
        found: dict[int, list[dict[str, Any]]] = {}
        cols = [HISTORY.c.id, HISTORY.c.customer_id, HISTORY.c.at, HISTORY.c.basis]
        cols += [HISTORY.c.by, HISTORY.c.from_stage, HISTORY.c.to_stage]
        for start in range(0, len(customer_ids), IN_BATCH):
            batch = customer_ids[start : start + IN_BATCH]
            query = (
                select(*cols)
                .where(HISTORY.c.customer_id.in_(batch))
                .order_by(HISTORY.c.customer_id, HISTORY.c.at, HISTORY.c.id)
            )
            for row in self.ctx.conn.execute(query).mappings():
                found.setdefault(row["customer_id"], []).append(dict(row))
        return found

    def _new_row(self, values: dict[str, Any]) -> dict[str, Any]:
        row = {**self._defaults, **values}  # merged in C: this runs for every new customer
        row.pop("stage_since", None)
        return row

    def _best_date(self, values: dict[str, Any]) -> tuple[datetime, str] | None:
        """When the file says the customer entered their current stage, and how it knows."""
        if "stage_since" in values:
            return values["stage_since"], EXACT
        if "signup_date" in values:
            return self._midnight(values["signup_date"]), SIGNUP
        return None

    def _midnight(self, day: date) -> datetime:
        """The day's start in the team's zone, as UTC: worked out once per day, since a
        million customers share a few thousand signup days."""
        at = self._midnights.get(day)
        if at is None:
            at = midnight(day, self.ctx.zone)
            self._midnights[day] = at
        return at

    def _start(self, values: dict[str, Any], stage: str) -> dict[str, Any]:
        at, basis = self._best_date(values) or (self.ctx.now, IMPORTED)
        return self._history_row(0, None, stage, at, basis, created=True)

    def _move(
        self,
        customer_id: int,
        from_stage: str,
        to_stage: str,
        values: dict[str, Any],
        history: list[dict[str, Any]],
    ) -> dict[str, Any]:
        """A stage the file changes: dated by `stage_since` when that fits after the stored
        history, else at the import, marked as only known from it."""
        since = values.get("stage_since")
        latest = history[-1]["at"] if history else None
        if since is not None and (latest is None or since > latest):
            return self._history_row(customer_id, from_stage, to_stage, since, EXACT)
        return self._history_row(customer_id, from_stage, to_stage, self.ctx.now, IMPORTED)

    def _redate(
        self, values: dict[str, Any], stage: str, history: list[dict[str, Any]]
    ) -> dict[str, Any] | None:
        """A customer whose whole history is the first stage an import guessed, in the stage
        the file gives, dated better now: the guess takes the file's date."""
        if len(history) != 1:
            return None
        (only,) = history
        if only["by"] != "import" or only["from_stage"] is not None or only["basis"] == EXACT:
            return None
        best = self._best_date(values)
        if best is None or only["to_stage"] != stage or (only["at"], only["basis"]) == best:
            return None
        if only["basis"] == SIGNUP and best[1] == IMPORTED:
            return None
        return {"_hid": only["id"], "_at": best[0], "_basis": best[1], "_cid": only["customer_id"]}

    def _history_row(
        self,
        customer_id: int,
        from_stage: str | None,
        to_stage: str,
        at: datetime,
        basis: str,
        *,
        created: bool = False,
    ) -> dict[str, Any]:
        prefix = "created by import of " if created else "import of "
        return {
            "customer_id": customer_id,
            "from_stage": from_stage,
            "to_stage": to_stage,
            "at": at,
            "by": "import",
            "reason": prefix + self.ctx.source_name,
            "basis": basis,
        }

    @staticmethod
    def _merge(old: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
        merged = {c: values.get(c, old[c]) for c in _FIELDS}
        merged["tags"] = values.get("tags", old["tags"])
        merged["attributes"] = {**(old["attributes"] or {}), **values["attributes"]}
        return merged

    def finish(self) -> None:
        """Customers are written chunk by chunk; nothing is left for the end."""
