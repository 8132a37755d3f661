from datetime import timedelta

from clmbot.slack.dedupe import KEEP, claim_event
from tests.helpers import rows


def test_an_event_is_claimed_once_and_old_claims_are_dropped(engine, now):
    with engine.begin() as conn:
        assert claim_event(conn, "Ev1", now) is True
    with engine.begin() as conn:
        assert claim_event(conn, "Ev1", now) is False
    later = now + KEEP + timedelta(minutes=1)
    with engine.begin() as conn:
        assert claim_event(conn, "Ev2", later) is True
    assert rows(engine, "slack_events", "event_id") == [("Ev2",)]


def test_a_claim_rolled_back_with_its_work_was_never_made(engine, now):
    try:
        with engine.begin() as conn:
            assert claim_event(conn, "Ev1", now) is True
            raise RuntimeError("the answer could not be worked out")
    except RuntimeError:
        pass
    with engine.begin() as conn:
        assert claim_event(conn, "Ev1", now) is True
