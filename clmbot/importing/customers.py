"""`customers.csv`: upsert by external id; a changed stage is a row in the stage history.

An empty cell means "this file does not say" and keeps what is stored, so a partial export
from another tool cannot wipe e-mails or owners it did not carry. Tags given replace the
stored tags; extra columns are merged into the customer's attributes.
"""

from __future__ import annotations

from typing import Any, ClassVar

from sqlalchemy import bindparam, insert, select, update

from clmbot.importing import fields as f
from clmbot.importing.base import (
    CUSTOMERS,
    IN_BATCH,
    ImportContext,
    ParseContext,
    Parsed,
    extras,
    row_problem,
)
from clmbot.importing.csvstream import Header, Row
from clmbot.store.models import StageChange

HISTORY = StageChange.__table__

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


class CustomersChecker:
    def __init__(self, header: Header, pctx: ParseContext) -> None:
        self.header = header
        self.now = pctx.now
        self.stages = pctx.lifecycle.stages
        self.first_line: dict[str, int] = {}

    def _parse(self, fields: list[str]) -> dict[str, Any]:
        h, now = self.header, self.now
        external_id = h.get(fields, "external_id")
        if not external_id:
            raise f.FieldError("external_id is empty; every customer needs one")
        values: dict[str, Any] = {"external_id": f.text("external_id", external_id, 200)}
        name = h.get(fields, "name")
        if not name:
            raise f.FieldError("name is empty; every customer needs a name")
        values["name"] = f.text("name", name, 300)
        parsers = {
            "email": lambda v: f.email("email", v),
            "slack_user_id": lambda v: f.slack_user("slack_user_id", v),
            "owner_slack_id": lambda v: f.slack_user("owner_slack_id", v),
            "stage": self._stage,
            "plan": lambda v: f.text("plan", v, 100),
            "region": lambda v: f.text("region", v, 100),
            "mrr": lambda v: f.number("mrr", v, minimum=0),
            "signup_date": lambda v: f.day("signup_date", v, now),
            "locale": lambda v: f.locale("locale", v),
            "timezone": lambda v: f.zone_name("timezone", v),
        }
        for column, parse in parsers.items():
            cell = h.get(fields, column)
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

    def parse(self, rows: list[Row]) -> Parsed[dict[str, Any]]:
        out: Parsed[dict[str, Any]] = Parsed()
        for row in rows:
            problem = row_problem(self.header, row)
            if problem:
                out.rejects.append((row, problem))
                continue
            try:
                values = self._parse(row[1])
            except f.FieldError as exc:
                out.rejects.append((row, str(exc)))
                continue
            ext = values["external_id"]
            if ext in self.first_line:
                out.rejects.append(
                    (
                        row,
                        f"external_id {ext} already appears on line {self.first_line[ext]}; "
                        "keep one row per customer",
                    )
                )
                continue
            self.first_line[ext] = row[0]
            out.items.append(values)
        return out


class CustomersImport:
    name: ClassVar[str] = "customers"
    known: ClassVar[set[str]] = {"external_id", "tags", *_FIELDS}
    required: ClassVar[set[str]] = {"external_id", "name"}
    checker: ClassVar[type[CustomersChecker]] = CustomersChecker

    def __init__(self, ctx: ImportContext, header: Header) -> None:
        self.ctx = ctx
        self.header = header

    def _existing(self, external_ids: list[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        cols = [CUSTOMERS.c.id, CUSTOMERS.c.external_id, CUSTOMERS.c.tags, CUSTOMERS.c.attributes]
        cols += [CUSTOMERS.c[c] for c in _FIELDS]
        for start in range(0, len(external_ids), IN_BATCH):
            batch = external_ids[start : start + IN_BATCH]
            query = select(*cols).where(CUSTOMERS.c.external_id.in_(batch))
            for row in self.ctx.conn.execute(query).mappings():
                found[row["external_id"]] = dict(row)
        return found

    def write(self, parsed: list[dict[str, Any]]) -> None:
        ctx, report = self.ctx, self.ctx.report
        if not ctx.writing:
            return
        existing = self._existing([v["external_id"] for v in parsed])
        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        history: list[dict[str, Any]] = []
        for values in parsed:
            old = existing.get(values["external_id"])
            if old is None:
                inserts.append(self._new_row(values))
                continue
            merged = self._merge(old, values)
            if merged == {k: old[k] for k in merged}:
                report.unchanged += 1
                continue
            if merged["stage"] != old["stage"]:
                history.append(self._move(old["id"], old["stage"], merged["stage"]))
            updates.append({"_id": old["id"], **merged, "updated_at": ctx.now})
        if inserts:
            returned = ctx.conn.execute(
                insert(CUSTOMERS).returning(CUSTOMERS.c.id, CUSTOMERS.c.stage), inserts
            ).all()
            history.extend(self._move(cid, None, stage) for cid, stage in returned)
            report.inserted += len(inserts)
        if updates:
            stmt = (
                update(CUSTOMERS)
                .where(CUSTOMERS.c.id == bindparam("_id"))
                .values({k: bindparam(k) for k in updates[0] if k != "_id"})
            )
            ctx.conn.execute(stmt, updates)
            report.updated += len(updates)
        if history:
            ctx.conn.execute(insert(HISTORY), history)

    def _new_row(self, values: dict[str, Any]) -> dict[str, Any]:
        row: dict[str, Any] = dict.fromkeys(_FIELDS)
        row.update(
            stage=self.ctx.lifecycle.first_stage,
            locale="en",
            tags=[],
            created_at=self.ctx.now,
            updated_at=self.ctx.now,
        )
        row.update(values)
        return row

    @staticmethod
    def _merge(old: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
        merged = {c: values.get(c, old[c]) for c in _FIELDS}
        merged["tags"] = values.get("tags", old["tags"])
        merged["attributes"] = {**(old["attributes"] or {}), **values["attributes"]}
        return merged

    def _move(self, customer_id: int, from_stage: str | None, to_stage: str) -> dict[str, Any]:
        reason = (
            f"created by import of {self.ctx.source_name}"
            if from_stage is None
            else f"import of {self.ctx.source_name}"
        )
        return {
            "customer_id": customer_id,
            "from_stage": from_stage,
            "to_stage": to_stage,
            "at": self.ctx.now,
            "by": "import",
            "reason": reason,
        }

    def finish(self) -> None:
        """Customers are written chunk by chunk; nothing is left for the end."""
