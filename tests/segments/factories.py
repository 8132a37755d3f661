"""Small builders of rows for the segment tests: customers, their events, answers and moves,
written through the models with only the columns a test cares about."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlmodel import Session

from clmbot.config import DEFAULT_STAGES
from clmbot.segments.compile import compile_segment
from clmbot.segments.language import parse_segment
from clmbot.store.models import EXACT, Customer, Event, Feedback, StageChange
from tests.conftest import NOW

LONG_AGO = NOW - timedelta(days=3 * 365)


def customer(
    session: Session,
    external_id: str,
    *,
    name: str | None = None,
    stage: str = "retention",
    plan: str | None = None,
    region: str | None = None,
    mrr: float | None = None,
    signup: date | None = None,
    tags: Iterable[str] = (),
    attributes: dict[str, Any] | None = None,
    owner: str | None = None,
    email: str | None = None,
    created_at: datetime = LONG_AGO,
    forgotten_at: datetime | None = None,
) -> Customer:
    row = Customer(
        external_id=external_id,
        name=name or f"Customer {external_id}",
        email=email,
        stage=stage,
        plan=plan,
        region=region,
        mrr=mrr,
        signup_date=signup,
        tags=list(tags),
        attributes=attributes or {},
        owner_slack_id=owner,
        created_at=created_at,
        updated_at=created_at,
        forgotten_at=forgotten_at,
    )
    session.add(row)
    session.flush()
    return row


def event(session: Session, who: Customer, at: datetime, kind: str = "login", seq: int = 0) -> None:
    session.add(Event(customer_id=who.id, kind=kind, occurred_at=at, seq=seq))
    session.flush()


def answer(session: Session, who: Customer, kind: str, score: int, at: datetime) -> None:
    session.add(
        Feedback(customer_id=who.id, kind=kind, score=score, responded_at=at, source="import")
    )
    session.flush()


def move(
    session: Session,
    who: Customer,
    to_stage: str,
    at: datetime,
    *,
    from_stage: str | None = None,
    basis: str = EXACT,
) -> None:
    session.add(
        StageChange(
            customer_id=who.id,
            from_stage=from_stage,
            to_stage=to_stage,
            at=at,
            by="import" if basis != EXACT else "U0ADMIN",
            basis=basis,
        )
    )
    session.flush()


def matching(
    session: Session,
    text: str,
    *,
    now: datetime = NOW,
    zone: Any = UTC,
    actor_id: str | None = None,
    saved: dict[str, str] | None = None,
) -> set[str]:
    """The external ids `text` selects, through the parser and the compiler."""
    from sqlalchemy import select

    segment = parse_segment(text, stages=DEFAULT_STAGES, saved=saved)
    where = compile_segment(
        segment, now=now, dialect=session.get_bind().dialect.name, zone=zone, actor_id=actor_id
    )
    return set(session.scalars(select(Customer.external_id).where(where)))
