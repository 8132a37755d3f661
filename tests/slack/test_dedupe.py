from datetime import timedelta

from clmbot.slack.dedupe import KEEP, claim_event
from tests.helpers import rows


def test_an_event_is_claimed_once_and_old_claims_are_dropped(engine, now):
    assert claim_event(engine, "Ev1", now) is True
    assert claim_event(engine, "Ev1", now) is False
    later = now + KEEP + timedelta(minutes=1)
    assert claim_event(engine, "Ev2", later) is True
    assert rows(engine, "slack_events", "event_id") == [("Ev2",)]
