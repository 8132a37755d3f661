from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, select

from clmbot.config import LifecycleConfig
from clmbot.lifecycle import UnknownStage, funnel, move_stage
from clmbot.store.db import session_scope
from clmbot.store.models import Customer, StageChange

LIFECYCLE = LifecycleConfig()
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


def create(session: Session, ext: str, stage: str, at: datetime) -> Customer:
    customer = Customer(external_id=ext, name=ext, stage=stage, created_at=at, updated_at=at)
    session.add(customer)
    session.flush()
    session.add(StageChange(customer_id=customer.id, to_stage=stage, at=at, by="import"))
    return customer


def move(session: Session, customer: Customer, stage: str, at: datetime):
    return move_stage(
        session, customer, stage, by="U0ADMIN", reason="test", now=at, lifecycle=LIFECYCLE
    )


def test_a_move_is_recorded_with_who_and_why(engine):
    with session_scope(engine) as s:
        c = create(s, "A1", "purchase", day(0))
        result = move_stage(
            s, c, " Retention ", by="U0ADMIN", reason="renewed", now=day(3), lifecycle=LIFECYCLE
        )
    assert result.changed and (result.from_stage, result.to_stage) == ("purchase", "retention")
    with session_scope(engine) as s:
        history = s.exec(select(StageChange).order_by(StageChange.at)).all()
        assert [(h.from_stage, h.to_stage, h.at, h.by, h.reason) for h in history] == [
            (None, "purchase", day(0), "import", None),
            ("purchase", "retention", day(3), "U0ADMIN", "renewed"),
        ]
        customer = s.exec(select(Customer)).one()
        assert customer.stage == "retention" and customer.updated_at == day(3)


def test_moving_to_the_current_stage_does_nothing(engine):
    with session_scope(engine) as s:
        c = create(s, "A1", "purchase", day(0))
        result = move(s, c, "purchase", day(1))
    assert not result.changed
    with session_scope(engine) as s:
        assert len(s.exec(select(StageChange)).all()) == 1
        assert s.exec(select(Customer)).one().updated_at == day(0)


def test_an_unknown_stage_lists_the_valid_ones(engine):
    with session_scope(engine) as s:
        c = create(s, "A1", "purchase", day(0))
        with pytest.raises(UnknownStage) as err:
            move(s, c, "vip", day(1))
    assert str(err.value) == (
        "'vip' is not a stage; use one of: awareness, consideration, purchase, retention, "
        "advocacy, churned"
    )


def test_a_churned_customer_can_be_won_back(engine):
    with session_scope(engine) as s:
        c = create(s, "A1", "churned", day(0))
        assert move(s, c, "purchase", day(9)).changed


@pytest.fixture
def journeys(engine):
    """Four customers over 100 days:
    C1 awareness d0 → consideration d10 → purchase d20
    C2 awareness d0 → consideration d40
    C3 awareness d5 → churned d50
    C4 purchase d0 → retention d30 → advocacy d60
    """
    with session_scope(engine) as s:
        c1 = create(s, "C1", "awareness", day(0))
        c2 = create(s, "C2", "awareness", day(0))
        c3 = create(s, "C3", "awareness", day(5))
        c4 = create(s, "C4", "purchase", day(0))
        move(s, c1, "consideration", day(10))
        move(s, c1, "purchase", day(20))
        move(s, c4, "retention", day(30))
        move(s, c2, "consideration", day(40))
        move(s, c3, "churned", day(50))
        move(s, c4, "advocacy", day(60))
    return engine


def test_funnel_counts_converts_and_times(journeys):
    with session_scope(journeys) as s:
        result = funnel(s, since=day(15), now=day(100), lifecycle=LIFECYCLE)
    stats = {st.stage: st for st in result.stages}
    assert {k: v.customers for k, v in stats.items()} == {
        "awareness": 0,
        "consideration": 1,
        "purchase": 1,
        "retention": 0,
        "advocacy": 1,
        "churned": 1,
    }
    assert result.total == 4
    assert {k: v.entered for k, v in stats.items()} == {
        "awareness": 0,
        "consideration": 1,
        "purchase": 1,
        "retention": 1,
        "advocacy": 1,
        "churned": 1,
    }
    # stays that ended in the period: awareness C2 40 d and C3 45 d; consideration C1 10 d;
    # purchase C4 30 d; retention C4 30 d
    assert (stats["awareness"].median_days, stats["awareness"].stays) == (42.5, 2)
    assert stats["consideration"].median_days == 10
    assert stats["purchase"].median_days == 30 and stats["retention"].median_days == 30
    assert stats["advocacy"].median_days is None and stats["advocacy"].stays == 0
    conv = {(c.from_stage, c.to_stage): (c.converted, c.base) for c in result.conversions}
    assert conv == {
        ("awareness", "consideration"): (1, 2),  # C2 yes, C3 churned
        ("consideration", "purchase"): (1, 2),  # C1 yes, C2 still considering
        ("purchase", "retention"): (1, 2),  # C4 yes, C1 not yet
        ("retention", "advocacy"): (1, 1),  # C4
    }
    assert result.conversions[0].rate == 0.5


def test_funnel_as_of_an_earlier_day_sees_only_the_history_until_then(journeys):
    with session_scope(journeys) as s:
        result = funnel(s, since=day(0), now=day(35), lifecycle=LIFECYCLE)
    assert {st.stage: st.customers for st in result.stages if st.customers} == {
        "awareness": 2,
        "purchase": 1,
        "retention": 1,
    }


def test_skipping_a_stage_still_converts(engine):
    with session_scope(engine) as s:
        c = create(s, "S1", "awareness", day(1))
        move(s, c, "purchase", day(2))
        result = funnel(s, since=day(0), now=day(10), lifecycle=LIFECYCLE)
    conv = {(c.from_stage, c.to_stage): (c.converted, c.base) for c in result.conversions}
    assert conv[("awareness", "consideration")] == (1, 1)
    assert conv[("consideration", "purchase")] == (0, 0)


def test_customers_without_history_still_count(engine):
    with session_scope(engine) as s:
        s.add(
            Customer(
                external_id="H1", name="H1", stage="retention", created_at=day(0), updated_at=day(0)
            )
        )
        s.flush()
        result = funnel(s, since=day(0), now=day(10), lifecycle=LIFECYCLE)
    assert {st.stage: st.customers for st in result.stages}["retention"] == 1


def test_configured_stages_shape_the_funnel(engine):
    lifecycle = LifecycleConfig(stages=("trial", "paying", "lost"), terminal=("lost",))
    with session_scope(engine) as s:
        c = create(s, "T1", "trial", day(0))
        move_stage(s, c, "paying", by="U0ADMIN", reason=None, now=day(4), lifecycle=lifecycle)
        result = funnel(s, since=day(0), now=day(5), lifecycle=lifecycle)
    assert [st.stage for st in result.stages] == ["trial", "paying", "lost"]
    assert [(c.from_stage, c.to_stage, c.converted) for c in result.conversions] == [
        ("trial", "paying", 1)
    ]
    with pytest.raises(UnknownStage):
        move_stage(s, c, "retention", by="x", reason=None, now=day(6), lifecycle=lifecycle)


def test_a_move_exactly_at_the_start_of_the_period_counts_everywhere(engine):
    with session_scope(engine) as s:
        c = create(s, "E1", "awareness", day(0))
        move(s, c, "consideration", day(10))
        result = funnel(s, since=day(10), now=day(20), lifecycle=LIFECYCLE)
    stats = {st.stage: st for st in result.stages}
    assert stats["consideration"].entered == 1 and stats["awareness"].median_days == 10
    conv = {(c.from_stage, c.to_stage): (c.converted, c.base) for c in result.conversions}
    assert conv[("awareness", "consideration")] == (1, 1)
