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
from datetime import datetime, timedelta
from typing import Any, ClassVar

from sqlalchemy import Connection, and_, delete, exists, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from clmbot.importing import fields as f
from clmbot.importing.base import CUSTOMERS, IN_BATCH, CustomerIds, ImportContext, KeyedChecker
from clmbot.importing.csvstream import Header, Row
from clmbot.store.models import EXACT, IMPORTED, SIGNUP, AuditEntry, StageChange

HISTORY = StageChange.__table__
AUDIT = AuditEntry.__table__
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
        dialect = postgresql if ctx.conn.dialect.name == "postgresql" else sqlite
        insert = dialect.insert(HISTORY)
        # A row the history already has is left as it is, unless it is an import's guess of
        # the very same move: then the file's row is the truth about it.
        self.insert = insert.on_conflict_do_update(
            index_elements=["customer_id", "at", "to_stage"],
            set_={
                "by": insert.excluded.by,
                "reason": insert.excluded.reason,
                "basis": EXACT,
                "attributes": insert.excluded.attributes,
            },
            where=and_(HISTORY.c.by == "import", HISTORY.c.basis != EXACT),
        ).returning(HISTORY.c.id)

    def write(self, items: list[_Move]) -> None:
        ctx = self.ctx
        ids = self.ids.known(item[1] for item in items)
        values = []
        for row, ext, stage, at, by, reason, attrs in items:
            customer_id = ids.get(ext)
            if customer_id is None:
                ctx.reject(
                    row, f"no customer has external_id {ext}; import them with customers.csv first"
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
        inserted = len(ctx.conn.execute(self.insert, values).all())
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
            replaced += _drop_replaced_guesses(conn, batch, self.order)
            _chain_from_stages(conn, batch)
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


def _drop_replaced_guesses(conn: Connection, customer_ids: list[int], order: dict[str, int]) -> int:
    """Drop what the history makes of an import's guess of a first stage:

    - dated from the signup ("in S since the signup"): dropped when the history reaches back
      to that day, or when the move after it goes back in the lifecycle (consideration after
      "retention since the signup" shows the guess was wrong);
    - undated (only known to be S at the import): dropped when the history before the import
      already ends in S; otherwise it stays, as what that import saw.
    """
    history: dict[int, list[tuple[int, datetime, str, str | None]]] = {}
    query = (
        select(
            HISTORY.c.id,
            HISTORY.c.customer_id,
            HISTORY.c.at,
            HISTORY.c.to_stage,
            HISTORY.c.basis,
            HISTORY.c.from_stage,
            HISTORY.c.by,
        )
        .where(HISTORY.c.customer_id.in_(customer_ids))
        .order_by(HISTORY.c.customer_id, HISTORY.c.at, HISTORY.c.id)
    )
    for row_id, customer_id, at, stage, basis, from_stage, by in conn.execute(query):
        guess = from_stage is None and by == "import" and basis in (SIGNUP, IMPORTED)
        history.setdefault(customer_id, []).append((row_id, at, stage, basis if guess else None))
    drop = []
    for rows in history.values():
        others = [(at, stage) for _, at, stage, guessed in rows if guessed is None]
        for row_id, at, stage, guessed in rows:
            if guessed is None or not others:
                continue
            if guessed == SIGNUP:
                after = [s for a, s in others if a >= at + timedelta(days=1)]
                reaches_back = any(a < at + timedelta(days=1) for a, _ in others)
                goes_back = bool(after) and order.get(after[0], 0) < order.get(stage, 0)
                if reaches_back or goes_back:
                    drop.append(row_id)
            else:
                before = [s for a, s in others if a <= at]
                if before and before[-1] == stage:
                    drop.append(row_id)
    if drop:
        conn.execute(delete(HISTORY).where(HISTORY.c.id.in_(drop)))
    return len(drop)


def _chain_from_stages(conn: Connection, customer_ids: list[int]) -> None:
    """Each row's `from_stage` is the stage of the row before it, in time order; except the
    moves people made (in Slack or on the command line: those in the audit log), which keep
    the stage they saw."""
    ordered = (
        select(
            HISTORY.c.id,
            func.lag(HISTORY.c.to_stage)
            .over(partition_by=HISTORY.c.customer_id, order_by=(HISTORY.c.at, HISTORY.c.id))
            .label("previous"),
        )
        .where(HISTORY.c.customer_id.in_(customer_ids))
        .subquery()
    )
    conn.execute(
        update(HISTORY)
        .values(from_stage=ordered.c.previous)
        .where(
            HISTORY.c.id == ordered.c.id,
            HISTORY.c.from_stage.is_distinct_from(ordered.c.previous),
            ~exists().where(
                AUDIT.c.customer_id == HISTORY.c.customer_id,
                AUDIT.c.at == HISTORY.c.at,
                AUDIT.c.action == "stage",
            ),
        )
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
