"""Rows for the feedback tests, built through the models with only what a test cares about."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from sqlmodel import Session

from clmbot.store.models import Customer, Feedback

T0 = datetime(2026, 1, 1, tzinfo=UTC)
_numbers = itertools.count(1)


def customer(
    session: Session,
    external_id: str | None = None,
    *,
    name: str | None = None,
    stage: str = "retention",
    plan: str | None = None,
    region: str | None = None,
    owner: str | None = None,
    forgotten: bool = False,
) -> Customer:
    number = next(_numbers)
    external_id = external_id or f"C{number:05d}"
    row = Customer(
        external_id=external_id,
        name=name or f"Customer {external_id}",
        stage=stage,
        plan=plan,
        region=region,
        owner_slack_id=owner,
        created_at=T0,
        updated_at=T0,
        forgotten_at=T0 if forgotten else None,
    )
    session.add(row)
    session.flush()
    return row


def answer(
    session: Session,
    who: Customer,
    kind: str,
    score: int,
    at: datetime,
    comment: str | None = None,
) -> Feedback:
    row = Feedback(
        customer_id=who.id,
        kind=kind,
        score=score,
        comment=comment,
        responded_at=at,
        source="import",
    )
    session.add(row)
    session.flush()
    return row
