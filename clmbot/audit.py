"""The audit log: every change made through Slack or the CLI, with who, what, when, where."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session

from clmbot.store.models import AuditEntry


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
