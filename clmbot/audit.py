"""The audit log: every change made through Slack or the CLI, with who, what, when, where."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from clmbot.commands.spec import Actor
from clmbot.results import AuditLine
from clmbot.store.models import AuditEntry, Customer


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    at: datetime,
    customer_id: int | None = None,
    channel: str | None = None,
    **detail: Any,
) -> AuditEntry:
    """Add an entry in the caller's transaction: the change and its record commit together."""
    entry = AuditEntry(
        at=at,
        actor=actor,
        action=action,
        customer_id=customer_id,
        channel=channel,
        detail={k: v for k, v in detail.items() if v is not None},
    )
    session.add(entry)
    return entry


def record_by(
    session: Session,
    actor: Actor,
    action: str,
    *,
    at: datetime,
    customer_id: int | None = None,
    **detail: Any,
) -> AuditEntry:
    """`record` for a change a person made through a front door: who and from where."""
    return record(
        session,
        actor=actor.id,
        action=action,
        at=at,
        customer_id=customer_id,
        channel=actor.channel,
        **detail,
    )


def entries(
    session: Session, *, since: datetime, until: datetime, limit: int = 200
) -> list[AuditLine]:
    """The changes made between `since` and `until`, newest first, with the customer each
    concerned (by name and id as they are now; "a forgotten customer" once erased)."""
    query = (
        select(AuditEntry, Customer.name, Customer.external_id)
        .join(Customer, Customer.id == AuditEntry.customer_id, isouter=True)
        .where(AuditEntry.at >= since, AuditEntry.at <= until)
        .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
        .limit(limit)
    )
    return [
        AuditLine(
            at=entry.at,
            actor=entry.actor,
            action=entry.action,
            channel=entry.channel,
            customer=f"{name} ({ext})" if name is not None else None,
            detail=dict(entry.detail),
        )
        for entry, name, ext in session.execute(query)
    ]
