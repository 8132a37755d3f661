from datetime import UTC, datetime, timedelta

from clmbot.profile import customer_profile
from clmbot.store.db import session_scope
from clmbot.store.models import Customer, Event, Feedback, RiskRun, RiskScore, StageChange

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


def test_the_card_shows_the_latest_answers_with_comments_and_the_latest_finished_risk(engine):
    """The answers and the risk come in the one statement with the counts: each value from
    its own row, nothing later than `now`, no run that did not finish."""
    with session_scope(engine) as s:
        c = Customer(
            external_id="B1", name="Bolt", stage="retention", created_at=NOW, updated_at=NOW
        )
        other = Customer(
            external_id="B2", name="Other", stage="retention", created_at=NOW, updated_at=NOW
        )
        s.add_all([c, other])
        s.flush()
        for days, kind, score, comment in (
            (9, "csat", 5, "great"),
            (2, "csat", 2, "slow support"),
            (-1, "csat", 1, "from tomorrow"),
            (4, "nps", 6, None),
        ):
            s.add(
                Feedback(
                    customer_id=c.id,
                    kind=kind,
                    score=score,
                    comment=comment,
                    source="import",
                    responded_at=NOW - timedelta(days=days),
                )
            )
        s.add(  # someone else's later answer is not this card's
            Feedback(
                customer_id=other.id,
                kind="csat",
                score=4,
                comment="fine",
                source="import",
                responded_at=NOW - timedelta(days=1),
            )
        )
        runs = []
        for days, finished in ((3, True), (1, True), (0.5, False), (-1, True)):
            at = NOW - timedelta(days=days)
            run = RiskRun(
                day=at.date(),
                as_of=at,
                by="test",
                started_at=at,
                scored=2,
                at_risk=1,
                finished_at=at if finished else None,
            )
            s.add(run)
            s.flush()
            runs.append(run)
        for run, risk in zip(runs, (10, 80, 90, 99), strict=True):
            s.add(RiskScore(run_id=run.id, customer_id=c.id, risk=risk, reasons=[f"reason {risk}"]))
        s.add(RiskScore(run_id=runs[1].id, customer_id=other.id, risk=5, reasons=[]))
        s.flush()
        p = customer_profile(s, c, now=NOW)
        none = customer_profile(s, other, now=NOW - timedelta(days=5))
    assert (p.latest_csat.score, p.latest_csat.comment) == (2, "slow support")
    assert p.latest_csat.responded_at == NOW - timedelta(days=2)
    assert (p.latest_nps.score, p.latest_nps.comment) == (6, None)
    assert (p.risk, p.risk_reasons) == (80, ("reason 80",))
    assert none.risk is None and none.risk_reasons == () and none.latest_csat is None
