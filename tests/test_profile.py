from datetime import UTC, datetime, timedelta

from clmbot.profile import customer_profile
from clmbot.store.db import session_scope
from clmbot.store.models import Customer, Event, Feedback, StageChange

NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)


def test_the_profile_is_as_of_now(engine):
    with session_scope(engine) as s:
        c = Customer(
            external_id="A1", name="Acme", stage="retention", created_at=NOW, updated_at=NOW
        )
        s.add(c)
        s.flush()
        for days, stage, frm in ((50, "purchase", None), (10, "retention", "purchase")):
            s.add(
                StageChange(
                    customer_id=c.id,
                    from_stage=frm,
                    to_stage=stage,
                    at=NOW - timedelta(days=days),
                    by="import",
                )
            )
        for days, kind in ((40, "login"), (3, "purchase"), (-2, "login")):  # -2: the future
            s.add(Event(customer_id=c.id, kind=kind, occurred_at=NOW - timedelta(days=days)))
        for days, kind, score in ((30, "nps", 9), (5, "nps", 4), (-1, "nps", 10)):
            s.add(
                Feedback(
                    customer_id=c.id,
                    kind=kind,
                    score=score,
                    source="import",
                    responded_at=NOW - timedelta(days=days),
                )
            )
        s.flush()
        p = customer_profile(s, c, now=NOW)
    assert [h.to_stage for h in p.history] == ["retention", "purchase"] and p.history_total == 2
    assert p.stage_since == NOW - timedelta(days=10)
    assert (p.last_activity.kind, p.last_activity.at) == ("purchase", NOW - timedelta(days=3))
    assert p.events_last_30_days == 1
    assert p.latest_nps.score == 4 and p.latest_csat is None
