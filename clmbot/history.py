"""The stage history's one writer: every row of `stage_history` is written, re-dated or
dropped here, by a person's move (`add`) or by an import (the bulk forms).

History is never rewritten by a person: a wrong move is corrected by another move. Imports
may only replace their own guesses (a first stage dated from a signup, or not dated at all)
with what a later file knows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, bindparam, delete, exists, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from clmbot.store import versions
from clmbot.store.models import EXACT, IMPORTED, SIGNUP, AuditEntry, StageChange

HISTORY = StageChange.__table__
AUDIT = AuditEntry.__table__


def add(
    conn: Connection,
    *,
    customer_id: int,
    from_stage: str | None,
    to_stage: str,
    at: datetime,
    by: str,
    reason: str | None,
    basis: str = EXACT,
) -> None:
    """One move, in the caller's transaction."""
    add_many(
        conn,
        [
            {
                "customer_id": customer_id,
                "from_stage": from_stage,
                "to_stage": to_stage,
                "at": at,
                "by": by,
                "reason": reason,
                "basis": basis,
            }
        ],
    )


def add_many(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Many moves at once (an import): one executemany. Each row holds the columns of
    `stage_history` (customer_id, from_stage, to_stage, at, by, reason, basis)."""
    if rows:
        conn.execute(insert(HISTORY), list(rows))


def redate(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Give imports' guesses the date a later file knows: rows of `_hid`, `_at`, `_basis`."""
    if rows:
        conn.execute(
            update(HISTORY)
            .where(HISTORY.c.id == bindparam("_hid"))
            .values(at=bindparam("_at"), basis=bindparam("_basis")),
            list(rows),
        )


def merge(conn: Connection, rows: Sequence[dict[str, Any]]) -> int:
    """A CRM's history joining ours; returns how many rows were new.

    A row the history already has is left as it is, unless it is an import's guess of the
    very same move: then the file's row is the truth about it.
    """
    if not rows:
        return 0
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(HISTORY)
    stmt = stmt.on_conflict_do_update(
        index_elements=["customer_id", "at", "to_stage"],
        set_={
            "by": stmt.excluded.by,
            "reason": stmt.excluded.reason,
            "basis": EXACT,
            "attributes": stmt.excluded.attributes,
        },
        where=and_(HISTORY.c.by == "import", HISTORY.c.basis != EXACT),
    ).returning(HISTORY.c.id)
    merged = len(
        conn.execute(stmt.execution_options(**versions.COUNTED_BY_CALLER), list(rows)).all()
    )
    if merged:
        versions.touch(conn, HISTORY.name)
    return merged


def drop_replaced_guesses(conn: Connection, customer_ids: list[int], order: dict[str, int]) -> int:
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


def chain_from_stages(conn: Connection, customer_ids: list[int]) -> None:
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
