"""`stages.csv`: stage history exported from a CRM, one row per move into a stage.

The rows join the history clmbot already has, in time order: a move is a customer entering a
stage at a time, so importing the same file twice finds every row already there. Where an
earlier import could only guess when a customer entered their first stage (from the signup
date, or not at all), a history that reaches back to that guess replaces it. Afterwards the
`from_stage` of each row follows the order of the rows, and a customer's current stage is
the one their latest row entered.
"""

from __future__ import annotations

from collections.abc import Hashable
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import Connection, select, update

from clmbot import history
from clmbot.forget import FORGOTTEN, forgotten_ids
from clmbot.importing import fields as f
from clmbot.importing.base import CUSTOMERS, IN_BATCH, CustomerIds, ImportContext, KeyedChecker
from clmbot.importing.csvstream import Header, Row
from clmbot.store.models import EXACT

HISTORY = history.HISTORY
# row, external id, stage, moved_at, by, reason, extra columns
_Move = tuple[Row, str, str, datetime, str, str | None, dict[str, str] | None]


class StagesChecker(KeyedChecker):
    key_names: ClassVar[str] = "customer, stage and moved_at"

    def _parse(self, fields: list[str]) -> tuple[str, str, datetime, str, str | None]:
        h, ctx = self.header, self.pctx
        ext = f.text("customer_external_id", h.get(fields, "customer_external_id"), 200)
        if not ext:
            raise f.FieldError("customer_external_id is empty")
        raw_stage = h.get(fields, "stage")
        stage = raw_stage.lower()
        if stage not in ctx.lifecycle.stages:
            raise f.FieldError(
                f"stage {f.show(raw_stage)} is not a stage; use one of: "
                f"{', '.join(ctx.lifecycle.stages)}"
            )
        at = f.timestamp("moved_at", h.get(fields, "moved_at"), ctx.zone, ctx.now)
        if at > ctx.now:
            raise f.FieldError(
                f"moved_at {h.get(fields, 'moved_at')} is after the import: a history is of "
                "what has happened (a time without an offset is in CLMBOT_TIMEZONE)"
            )
        by = f.text("by", h.get(fields, "by"), 100) or "import"
        reason = f.text("reason", h.get(fields, "reason"), 5000) or None
        return ext, stage, at, by, reason

    def _key(self, values: tuple[Any, ...]) -> Hashable:
        ext, stage, at, _, _ = values
        return ext, stage, at


class StagesImport:
    name: ClassVar[str] = "stages"
    known: ClassVar[set[str]] = {"customer_external_id", "stage", "moved_at", "by", "reason"}
    required: ClassVar[set[str]] = {"customer_external_id", "stage", "moved_at"}
    checker: ClassVar[type[StagesChecker]] = StagesChecker
    # `reason` is this file's own column (why the customer moved): rejects say theirs apart.
    reject_column: ClassVar[str] = "rejected_reason"

    def __init__(self, ctx: ImportContext, header: Header) -> None:
        self.ctx = ctx
        self.ids = CustomerIds(ctx.conn)
        self.touched: set[int] = set()
        self.order = {stage: i for i, stage in enumerate(ctx.lifecycle.stages)}

    def write(self, items: list[_Move]) -> None:
        ctx = self.ctx
        ids = self.ids.known(item[1] for item in items)
        gone = forgotten_ids(ctx.conn, {item[1] for item in items} - set(ids))
        values = []
        for row, ext, stage, at, by, reason, attrs in items:
            customer_id = ids.get(ext)
            if customer_id is None:
                ctx.reject(
                    row,
                    FORGOTTEN
                    if ext in gone
                    else f"no customer has external_id {ext}; import them with customers.csv first",
                )
                continue
            values.append(
                {
                    "customer_id": customer_id,
                    "from_stage": None,  # set from the order of the rows, at the end
                    "to_stage": stage,
                    "at": at,
                    "by": by,
                    "reason": reason,
                    "basis": EXACT,
                    "attributes": attrs,
                }
            )
        if not values or not ctx.writing:
            return
        inserted = history.merge(ctx.conn, values)
        ctx.report.inserted += inserted
        ctx.report.unchanged += len(values) - inserted
        self.touched.update(v["customer_id"] for v in values)

    def finish(self) -> None:
        if not self.ctx.writing or not self.touched:
            return
        conn, now = self.ctx.conn, self.ctx.now
        touched = sorted(self.touched)
        replaced = moved = 0
        for start in range(0, len(touched), IN_BATCH):
            batch = touched[start : start + IN_BATCH]
            replaced += history.drop_replaced_guesses(conn, batch, self.order)
            history.chain_from_stages(conn, batch)
            moved += _current_stage_from_history(conn, batch, now)
        if replaced:
            self.ctx.report.notes.append(
                f"{replaced} first stages that earlier imports had only guessed (from a signup "
                "date, or the day of the import) were replaced by this history"
            )
        if moved:
            self.ctx.report.notes.append(
                f"{moved} customers are now in the stage their latest history row entered"
            )


def _current_stage_from_history(conn: Connection, customer_ids: list[int], now: Any) -> int:
    latest = (
        select(HISTORY.c.to_stage)
        .where(HISTORY.c.customer_id == CUSTOMERS.c.id)
        .order_by(HISTORY.c.at.desc(), HISTORY.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    result = conn.execute(
        update(CUSTOMERS)
        .values(stage=latest, updated_at=now)
        .where(CUSTOMERS.c.id.in_(customer_ids), CUSTOMERS.c.stage != latest),
        execution_options={"preserve_rowcount": True},
    )
    return max(result.rowcount, 0)
