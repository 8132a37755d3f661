"""Forgetting a customer: their personal data erased, what they count for kept.

A forgotten customer stays a row (a tombstone) so that every number they were part of stays
true: the funnel, NPS and CSAT, the stage history, the events. What identifies them or was
written by them goes: name, e-mail, Slack id, tags, extra attributes (of the customer, their
events, answers and stage moves), their comments and survey replies, the reasons typed for
their stage moves, and the values in the audit log's entries about them. Their external id
is replaced by a one-way hash of it, so that an import of an old CSV can tell them (and
leave them out, saying so) without the id itself being kept.

The hash is unsalted: someone holding the database and a list of candidate ids could test
them. It keeps no more than that an id was once a customer who asked to be forgotten.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, func, select, update
from sqlmodel import Session

from clmbot.store.lookups import LOOKUP_BATCH, one_of, planned_for_values
from clmbot.store.models import (
    AuditEntry,
    Customer,
    Event,
    Feedback,
    StageChange,
    Survey,
    SurveyRun,
)

PREFIX = "forgotten:"
ERASED_NAME = "a forgotten customer"
# Why an import leaves a row out.
FORGOTTEN = "this customer was forgotten (clmbot forget): an import does not bring them back"
# What an audit entry about a forgotten customer keeps: what happened, never what was typed.
_ERASED = "(erased)"
_AUDIT_KEPT = frozenset(("from", "to", "kind", "count", "run_id", "queued", "verb"))


def tombstone(external_id: str) -> str:
    """What a forgotten customer's external id becomes: a hash, the same for the same id."""
    return PREFIX + hashlib.sha256(external_id.encode("utf-8")).hexdigest()[:40]


def forgotten_ids(conn: Connection, external_ids: Iterable[str]) -> set[str]:
    """Which of `external_ids` belong to customers who were forgotten."""
    wanted = set(external_ids)
    found: set[str] = set()
    if not wanted:
        return found
    column = Customer.__table__.c.external_id
    with planned_for_values(conn):  # the look-ups, and "anyone?", planned for the table now
        if not _anyone_forgotten(conn):
            return found  # usually nobody is: no id is hashed (a twentieth of a large import)
        stones = {tombstone(e): e for e in wanted}
        keys = list(stones)
        for start in range(0, len(keys), LOOKUP_BATCH):
            batch = keys[start : start + LOOKUP_BATCH]
            query = select(column).where(one_of(column, batch, conn.dialect.name))
            found.update(stones[stone] for (stone,) in conn.execute(query))
    return found


def _anyone_forgotten(conn: Connection) -> bool:
    """One look in the partial index of the forgotten (migration 0014)."""
    table = Customer.__table__
    anyone = select(table.c.id).where(table.c.forgotten_at.is_not(None)).limit(1)
    return conn.execute(anyone).first() is not None


@dataclass(frozen=True)
class Erased:
    """How much was erased besides the customer's own fields: what the answer tells."""

    comments: int
    survey_replies: int
    stage_reasons: int
    audit_entries: int


def forget(session: Session, customer: Customer, *, now: datetime) -> Erased:
    """Erase `customer`'s personal data, in the caller's transaction (with its audit entry,
    which the caller writes without the erased values)."""
    cid = customer.id
    comments = _erase(session, Feedback, cid, comment=None, attributes={})
    replies = _erase(session, Survey, cid, comment=None, channel_id=None, message_ts=None)
    reasons = _erase(session, StageChange, cid, reason=None, attributes={})
    session.execute(update(Event).where(Event.customer_id == cid).values(attributes={}))
    audited = 0
    for entry in session.execute(select(AuditEntry).where(AuditEntry.customer_id == cid)).scalars():
        kept = {k: v for k, v in entry.detail.items() if k in _AUDIT_KEPT}
        if kept != entry.detail:
            entry.detail = {**kept, "erased": True}
            audited += 1
    # What someone typed that named them where it is not tied to them alone: a survey run's
    # target, an audit entry about many customers (`survey nps ZX-4471`). Forgetting is rare,
    # and these are few: read in Python, matched without regard to case.
    names = [n.lower() for n in _identifiers(customer) if len(n) >= 3]
    for entry in session.execute(
        select(AuditEntry).where(AuditEntry.customer_id.is_(None))
    ).scalars():
        detail = {k: _ERASED if _names(v, names) else v for k, v in entry.detail.items()}
        if detail != entry.detail:
            entry.detail = {**detail, "erased": True}
            audited += 1
    for run in session.execute(select(SurveyRun)).scalars():
        if _names(run.target, names):
            run.target = _ERASED
    customer.external_id = tombstone(customer.external_id)
    customer.name = ERASED_NAME
    customer.email = None
    customer.slack_user_id = None
    customer.tags = []
    customer.attributes = {}
    customer.locale = ""
    customer.timezone = None
    customer.forgotten_at = now
    customer.updated_at = now
    session.add(customer)
    session.flush()
    return Erased(comments, replies, reasons, audited)


def _identifiers(customer: Customer) -> list[str]:
    return [
        v
        for v in (customer.external_id, customer.name, customer.email, customer.slack_user_id)
        if v
    ]


def _names(value: object, names: list[str]) -> bool:
    text = str(value).lower()
    return any(n in text for n in names)


def _erase(session: Session, model: type, cid: int | None, **values: object) -> int:
    """Set `values` on the customer's rows of `model`; how many held something to erase."""
    first = next(iter(values))
    column = getattr(model, first)
    held = session.execute(
        select(func.count()).where(model.customer_id == cid, column.is_not(None))  # type: ignore[attr-defined]
    ).scalar_one()
    session.execute(update(model).where(model.customer_id == cid).values(**values))  # type: ignore[attr-defined]
    return int(held)
