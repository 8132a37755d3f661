"""Handling a Slack event once, however often Slack delivers it.

Slack re-sends an event it believes was missed (with `X-Slack-Retry-Num`), and Bolt passes
every copy on. The first copy claims the event id with a unique row; the others find it taken.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, delete
from sqlalchemy.dialects import postgresql, sqlite

from clmbot.store.models import ProcessedEvent

_TABLE = ProcessedEvent.__table__


# Slack retries within minutes; a week of ids is plenty, and keeps the table small.
KEEP = timedelta(days=7)


def claim_event(conn: Connection, event_id: str, now: datetime) -> bool:
    """True for the first delivery of `event_id`, False for every later one. In the caller's
    transaction: the claim stands or falls with the work done for the event."""
    dialect = sqlite if conn.dialect.name == "sqlite" else postgresql
    stmt = (
        dialect.insert(_TABLE)
        .values(event_id=event_id, received_at=now)
        .on_conflict_do_nothing(index_elements=["event_id"])
    )
    result = conn.execute(stmt, execution_options={"preserve_rowcount": True})
    if result.rowcount == 1:
        conn.execute(delete(_TABLE).where(_TABLE.c.received_at < now - KEEP))
    return result.rowcount == 1


def release_event(engine: Engine, event_id: str) -> None:
    with engine.begin() as conn:
        conn.execute(delete(_TABLE).where(_TABLE.c.event_id == event_id))
