"""What the digest's buttons do to an alert: Assign to me, Snooze, Contacted. Each is a
conditional UPDATE, so two people clicking at once, or a click replayed, leave one clear
state (the last click wins, and says who)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlmodel import Session

from clmbot.store.models import ASSIGNED, CONTACTED, RESOLVED, SNOOZED, Alert

VERBS = {"assign": ASSIGNED, "snooze": SNOOZED, "contacted": CONTACTED}


@dataclass(frozen=True)
class Acted:
    changed: bool
    channel_id: str | None
    message_ts: str | None


def act(
    session: Session, alert_id: int, verb: str, *, by: str, now: datetime, snooze: timedelta
) -> Acted | None:
    """None for an alert that does not exist (a forged value)."""
    found = session.execute(
        select(Alert.channel_id, Alert.message_ts).where(Alert.id == alert_id)
    ).first()
    if found is None or verb not in VERBS:
        return None
    values: dict[str, object] = {"status": VERBS[verb], "updated_by": by, "updated_at": now}
    values["snoozed_until"] = now + snooze if verb == "snooze" else None
    result = session.execute(
        update(Alert).where(Alert.id == alert_id, Alert.status != RESOLVED).values(**values),
        execution_options={"preserve_rowcount": True},
    )
    return Acted(result.rowcount == 1, found.channel_id, found.message_ts)
