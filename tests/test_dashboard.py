"""The Home tab's numbers, on hand-made data, on SQLite and PostgreSQL: the viewer's own
customers at risk (and nobody else's), the team's NPS and CSAT against the period before,
the funnel (equal to `lifecycle.funnel`'s, also on random histories), the surveys in
flight."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete, event, insert, select
from sqlmodel import Session

from clmbot.config import Settings
from clmbot.dashboard import (
    RISK_SHOWN,
    SURVEY_RUNS_SHOWN,
    TREND_MONTHS,
    dashboard,
    funnel_glance,
    my_risk,
    score_card,
    surveys_in_flight,
)
from clmbot.importing.runner import import_file
from clmbot.lifecycle import funnel, move_stage
from clmbot.risk.stored import at_risk
from clmbot.store.db import session_scope
from clmbot.store.models import (
    ANSWERED,
    CANCELLED,
    EXACT,
    EXPIRED,
    IMPORTED,
    QUEUED,
    SENDING,
    SENT,
    SIGNUP,
    Customer,
    Feedback,
    RiskRun,
    RiskScore,
    StageChange,
    Survey,
    SurveyRun,
)
from tests.conftest import NOW
from tests.funnel_reference import reference_funnel
from tests.helpers import write_csv

ME, YOU = "U0ME", "U0YOU"
UTCZ = Settings().timezone  # UTC: the months are the calendar's
STAGES = ["awareness", "consideration", "purchase", "retention", "advocacy", "churned"]
# Stages a history may still hold after clmbot.toml renamed or dropped them.
UNCONFIGURED = ["trial", "onboarding"]
EXAMPLES = max(int(os.environ.get("CLMBOT_FUZZ_EXAMPLES") or 1000) // 20, 5)


def add_customer(
    session: Session,
    external_id: str,
    *,
    owner: str | None = None,
    mrr: float | None = None,
    stage: str = "retention",
    forgotten: bool = False,
) -> int:
    row = Customer(
        external_id=external_id,
        name=f"Customer {external_id}",
        stage=stage,
        owner_slack_id=owner,
        mrr=mrr,
        created_at=NOW - timedelta(days=400),
        updated_at=NOW,
        forgotten_at=NOW if forgotten else None,
    )
    session.add(row)
    session.flush()
    assert row.id is not None
    return row.id


def add_run(session: Session, at: datetime, risks: dict[int, int], *, done: bool = True) -> None:
    run = RiskRun(
        day=at.date(),
        as_of=at,
        by="test",
        started_at=at,
        finished_at=at if done else None,
        scored=len(risks),
    )
    session.add(run)
    session.flush()
    for customer_id, risk in risks.items():
        reasons = [f"reason {risk}", "no purchase for 64 days, usually every 21", "third"]
        session.add(RiskScore(run_id=run.id, customer_id=customer_id, risk=risk, reasons=reasons))
    session.flush()


# --- my customers at risk ---------------------------------------------------------------------


def test_the_viewer_sees_their_own_customers_at_risk_and_nobody_elses(engine: Engine) -> None:
    with session_scope(engine) as s:
        a = add_customer(s, "A", owner=ME, mrr=100)
        b = add_customer(s, "B", owner=ME, mrr=250.5)
        low = add_customer(s, "LOW", owner=ME, mrr=1000)
        theirs = add_customer(s, "THEIRS", owner=YOU, mrr=9000)
        gone = add_customer(s, "GONE", owner=ME, mrr=5000, forgotten=True)
        more = [add_customer(s, f"M{i}", owner=ME, mrr=10 * i) for i in range(5)]
        nobody = add_customer(s, "NOBODY", mrr=7)
        yesterday = {a: 80, low: 40, theirs: 90, gone: 99, **dict.fromkeys(more, 72)}
        add_run(s, NOW - timedelta(days=1), yesterday)
        today = {a: 90, b: 75, low: 50, theirs: 95, gone: 99, nobody: 100}
        add_run(s, NOW, {**today, **{m: 71 + i for i, m in enumerate(more)}})
        add_run(s, NOW + timedelta(days=1), {a: 0}, done=False)  # tomorrow's, unfinished

    with session_scope(engine) as s:
        risk = my_risk(s, ME, now=NOW, threshold=70)
    assert risk.day == NOW.date() and risk.previous_day == (NOW - timedelta(days=1)).date()
    assert risk.total == 7  # A, B and the five M; not LOW (50), THEIRS, GONE nor NOBODY
    assert risk.owned == 8  # GONE is forgotten
    assert risk.mrr == pytest.approx(100 + 250.5 + sum(10 * i for i in range(5)))
    assert [line.external_id for line in risk.lines] == ["A", "B", "M4", "M3", "M2"]
    assert len(risk.lines) == RISK_SHOWN
    first, second, third = risk.lines[:3]
    assert (first.risk, first.previous, first.change) == (90, 80, 10)
    assert (second.risk, second.previous, second.change) == (75, None, None)  # new
    assert (third.risk, third.change) == (75, 3)
    assert first.reasons[0] == "reason 90" and first.mrr == 100

    with session_scope(engine) as s:
        theirs_seen = my_risk(s, YOU, now=NOW, threshold=70)
    assert [line.external_id for line in theirs_seen.lines] == ["THEIRS"]
    assert theirs_seen.owned == 1 and theirs_seen.mrr == 9000


def test_the_viewers_customers_are_listed_as_clm_at_risk_lists_them(engine: Engine) -> None:
    """The Home tab reads the pass it looked up itself; its order must stay `/clm at-risk`'s,
    ties included (the same risk; the same, or no, MRR)."""
    with session_scope(engine) as s:
        risks: dict[int, int] = {}
        for i, (risk, mrr) in enumerate(
            [(80, 10.0), (80, None), (80, 10.0), (90, None), (75, 500.0), (80, 30.0), (70, 1.0)]
        ):
            risks[add_customer(s, f"T{6 - i}", owner=ME, mrr=mrr)] = risk
        add_run(s, NOW, risks)
        got = my_risk(s, ME, now=NOW, threshold=70)
        want = at_risk(s, now=NOW, threshold=70, where=Customer.owner_slack_id == ME, limit=99)
    assert got.total == want.total == len(risks)
    assert [(x.external_id, x.risk, x.mrr) for x in got.lines] == [
        (x.external_id, x.risk, x.mrr) for x in want.rows[:RISK_SHOWN]
    ]


def test_a_pass_finishing_while_the_tab_is_built_is_not_mixed_in(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL each statement sees what was committed when it began: a pass that
    finishes after the first one looked up the latest must not lend the others its risks, its
    MRR or its "pass before". Here the new pass lands right after the session's first
    statement."""
    with session_scope(engine) as s:
        a = add_customer(s, "A", owner=ME, mrr=100)
        b = add_customer(s, "B", owner=ME, mrr=200)
        add_run(s, NOW - timedelta(days=2), {a: 60, b: 10})
        add_run(s, NOW - timedelta(days=1), {a: 80, b: 20})
    with session_scope(engine) as s:
        execute = s.execute
        statements = 0

        def racing(statement: Any, *args: Any, **kwargs: Any) -> Any:
            nonlocal statements
            result = execute(statement, *args, **kwargs).freeze()  # read before the pass lands
            statements += 1
            if statements == 1:
                add_run(s, NOW, {a: 95, b: 90})
            return result()

        monkeypatch.setattr(s, "execute", racing)
        risk = my_risk(s, ME, now=NOW, threshold=70)
    assert risk.day == (NOW - timedelta(days=1)).date()
    assert risk.previous_day == (NOW - timedelta(days=2)).date()
    assert [(x.external_id, x.risk, x.previous) for x in risk.lines] == [("A", 80, 60)]
    assert (risk.total, risk.mrr, risk.owned) == (1, 100.0, 2)


def test_before_any_risk_pass_the_viewer_is_told_so(engine: Engine) -> None:
    with session_scope(engine) as s:
        add_customer(s, "A", owner=ME, mrr=100)
        add_run(s, NOW, {}, done=False)  # started, not finished: not a pass yet
        risk = my_risk(s, ME, now=NOW, threshold=70)
    assert risk.day is None and risk.lines == () and risk.total == 0 and risk.owned == 1


def test_a_first_pass_has_no_change(engine: Engine) -> None:
    with session_scope(engine) as s:
        a = add_customer(s, "A", owner=ME)
        add_run(s, NOW, {a: 88})
        risk = my_risk(s, ME, now=NOW, threshold=70)
    assert risk.previous_day is None
    assert [(line.risk, line.change, line.mrr) for line in risk.lines] == [(88, None, None)]


# --- NPS and CSAT ------------------------------------------------------------------------------


def test_scores_against_the_period_before_and_by_month(engine: Engine) -> None:
    with session_scope(engine) as s:
        ids = {name: add_customer(s, name) for name in "VWXYZ"}

        def say(name: str, kind: str, score: int, days: float) -> None:
            at = NOW - timedelta(days=days)
            s.add(
                Feedback(customer_id=ids[name], kind=kind, score=score, responded_at=at, source="t")
            )

        # The last 90 days: X promoter, Y detractor (their latest), Z passive: NPS 0.
        say("X", "nps", 10, 10)
        say("Y", "nps", 9, 20)
        say("Y", "nps", 6, 5)
        say("Z", "nps", 8, 30)
        # The 90 days before: X detractor, W and V promoters: NPS +33.
        say("X", "nps", 3, 100)
        say("W", "nps", 10, 120)
        say("V", "nps", 9, 170)
        say("V", "nps", 0, 400)  # long before: in neither
        say("X", "csat", 5, 1)
        say("Y", "csat", 2, 40)
        s.flush()
        nps = score_card(s, "nps", now=NOW, zone=UTCZ)
        csat = score_card(s, "csat", now=NOW, zone=UTCZ)

    assert nps.current.n == 3 and nps.current.score == pytest.approx(0.0)
    assert nps.previous.n == 3 and nps.previous.score == pytest.approx(100 / 3)
    assert nps.change == pytest.approx(-100 / 3)
    assert nps.current.low is not None and nps.current.low < 0 < (nps.current.high or 0)
    # Six calendar months, this one included; every answer in its month.
    assert [m.month.isoformat() for m in nps.trend] == [
        "2026-06-01",
        "2026-07-01",
        "2026-08-01",
        "2026-09-01",
        "2026-10-01",
        "2026-11-01",
    ]
    assert len(nps.trend) == TREND_MONTHS
    by_month = {m.month.month: (m.n, m.score) for m in nps.trend}
    assert by_month[11] == (3, pytest.approx(100 / 3))  # Y 9 and 6, X 10: every answer
    assert by_month[10] == (1, pytest.approx(0.0))  # Z 8
    assert by_month[8] == (1, pytest.approx(-100.0))  # X 3
    assert by_month[7][0] == 1 and by_month[6][0] == 1  # W 10, V 9
    assert by_month[9] == (0, None)
    assert csat.current.n == 2 and csat.current.score == pytest.approx(50.0)
    assert csat.previous.n == 0 and csat.change is None


# --- the funnel --------------------------------------------------------------------------------


def history(
    session: Session,
    external_id: str,
    moves: list[tuple[str, float, str]],
    *,
    stage: str | None = None,
) -> None:
    """A customer and their moves (stage, days before NOW, basis), in the order given: ids
    follow that order, so two moves at one time are ordered as written. Their stage is the
    one their latest move entered, as every writer keeps it, unless `stage` says otherwise."""
    latest = max(range(len(moves)), key=lambda i: (-moves[i][1], i))
    cid = add_customer(session, external_id, stage=stage or moves[latest][0])
    for stage, days, basis in moves:
        session.add(
            StageChange(
                customer_id=cid, to_stage=stage, at=NOW - timedelta(days=days), by="t", basis=basis
            )
        )
        session.flush()


def same_as_the_funnel(session: Session, since: datetime, now: datetime) -> None:
    """The tab's funnel, and `/clm funnel`'s whole answer, equal the plain Python
    reference's."""
    lifecycle = Settings().lifecycle
    want = reference_funnel(session, since=since, now=now, lifecycle=lifecycle)
    assert funnel(session, since=since, now=now, lifecycle=lifecycle) == want
    got = funnel_glance(session, since=since, now=now, lifecycle=lifecycle)
    assert [(s.stage, s.customers) for s in got.stages] == [
        (s.stage, s.customers) for s in want.stages
    ]
    assert [(c.from_stage, c.to_stage, c.base, c.converted) for c in got.steps] == [
        (c.from_stage, c.to_stage, c.base, c.converted) for c in want.conversions
    ]


def test_the_funnel_counts_as_lifecycle_funnel_does(engine: Engine) -> None:
    with session_scope(engine) as s:
        # Moved within the period, from a stage entered before it.
        history(s, "A", [("awareness", 200, SIGNUP), ("consideration", 10, EXACT)])
        # Skipped a stage: still converted from consideration (to purchase or further).
        history(s, "B", [("consideration", 100, EXACT), ("retention", 5, EXACT)])
        # Did not move in the period: in the base of their stage, converted nowhere.
        history(s, "C", [("awareness", 300, SIGNUP), ("purchase", 200, EXACT)])
        # Two moves at one time: ordered by id (the order written), not by stage.
        history(
            s,
            "D",
            [("awareness", 300, SIGNUP), ("purchase", 3, EXACT), ("consideration", 3, EXACT)],
        )
        # A stage written twice in a row, then churned.
        history(
            s,
            "E",
            [("purchase", 120, EXACT), ("purchase", 30, IMPORTED), ("churned", 2, EXACT)],
        )
        # Went back, then forward again, within the period.
        history(
            s,
            "F",
            [
                ("consideration", 150, EXACT),
                ("awareness", 40, EXACT),
                ("consideration", 20, EXACT),
                ("advocacy", 1, EXACT),
            ],
        )
        # Only moves in the period, from nothing before.
        history(s, "G", [("awareness", 50, SIGNUP), ("consideration", 49, EXACT)])
        same_as_the_funnel(s, NOW - timedelta(days=90), NOW)
        same_as_the_funnel(s, NOW - timedelta(days=4), NOW)
        same_as_the_funnel(s, NOW - timedelta(days=400), NOW)
        got = funnel_glance(
            s, since=NOW - timedelta(days=90), now=NOW, lifecycle=Settings().lifecycle
        )
    assert {s.stage: s.customers for s in got.stages} == {
        "awareness": 0,
        "consideration": 3,  # A; D (the later of its two rows at one time); G
        "purchase": 1,
        "retention": 1,
        "advocacy": 1,
        "churned": 1,
    }
    assert got.total == 6 + 1


row = st.tuples(
    st.sampled_from(STAGES + UNCONFIGURED),
    st.integers(min_value=0, max_value=60),  # days before NOW: ties happen
    st.sampled_from([EXACT, EXACT, SIGNUP, IMPORTED]),
)


def test_a_slow_funnel_given_as_last_counted_says_when(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A funnel slow to count (a million customers) is given at once after a move, as last
    counted, while it is counted again: the tab's glance says when, as `/clm funnel` does
    (it said nothing, and showed the counts before the move as current)."""
    from clmbot.store import cache

    lifecycle = Settings().lifecycle
    with session_scope(engine) as s:
        history(s, "A", [("awareness", 200, SIGNUP), ("consideration", 10, EXACT)])
        history(s, "B", [("consideration", 100, EXACT)])
    monkeypatch.setattr(cache, "SLOW", 0.0)
    monkeypatch.setattr(cache, "REFRESH_FACTOR", 10**6)
    since = NOW - timedelta(days=90)
    with session_scope(engine) as s:
        first = funnel_glance(s, since=since, now=NOW, lifecycle=lifecycle)
    assert first.counted_at is None
    with session_scope(engine) as s:
        b = s.scalars(select(Customer).where(Customer.external_id == "B")).one()
        move_stage(s, b, "purchase", by="U2", reason=None, now=NOW, lifecycle=lifecycle)
    later = timedelta(seconds=20)
    with session_scope(engine) as s:
        given = funnel_glance(s, since=since + later, now=NOW + later, lifecycle=lifecycle)
    assert given.counted_at == NOW and given.stages == first.stages


@hsettings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    histories=st.lists(
        st.tuples(st.lists(row, min_size=1, max_size=6), st.integers(0, 5)),
        min_size=1,
        max_size=8,
    ),
    since_days=st.integers(1, 70),
    back=st.integers(-5, 40),
)
def test_the_funnel_matches_lifecycle_funnel_on_random_histories(
    engine: Engine,
    histories: list[tuple[list[tuple[str, int, str]], int]],
    since_days: int,
    back: int,
) -> None:
    """Every customer has a history (some of it in stages clmbot.toml no longer names), and
    their stage is what its latest row entered, or, for one who moved in the period, maybe
    what an earlier row did (a move written before an import's future-dated first stage).
    Then the two agree exactly, as of any `now` (some rows after it, some customers not
    there yet)."""
    with session_scope(engine) as s:
        s.execute(delete(StageChange))
        s.execute(delete(Customer))
        for n, (moves, pick) in enumerate(histories):
            seen: set[tuple[int, str]] = set()
            kept = []
            for stage, days, basis in moves:
                if (days, stage) not in seen:  # the unique key: customer, time, stage
                    seen.add((days, stage))
                    kept.append((stage, float(days), basis))
            moved = min(days for _, days, _ in kept) <= back + since_days  # a row >= since
            stage = kept[pick % len(kept)][0] if moved else None
            history(s, f"C{n}", kept, stage=stage)
        now = NOW - timedelta(days=back)
        same_as_the_funnel(s, now - timedelta(days=since_days), now)


def test_stages_no_longer_configured_count_nowhere(engine: Engine) -> None:
    """A stage renamed or dropped from clmbot.toml is still in the history: whoever is in it
    is in no configured stage, and it neither ends nor starts a conversion."""
    with session_scope(engine) as s:
        # In a dropped stage now: not still in awareness.
        history(s, "A", [("awareness", 200, SIGNUP), ("trial", 10, EXACT)])
        # In a dropped stage before the period, then on: moved from nowhere configured.
        history(s, "B", [("awareness", 300, SIGNUP), ("trial", 150, EXACT), ("purchase", 5, EXACT)])
        # Through a dropped stage within the period: still converted from consideration.
        history(
            s,
            "C",
            [("consideration", 120, EXACT), ("onboarding", 20, EXACT), ("retention", 4, EXACT)],
        )
        same_as_the_funnel(s, NOW - timedelta(days=90), NOW)
        got = funnel_glance(
            s, since=NOW - timedelta(days=90), now=NOW, lifecycle=Settings().lifecycle
        )
    counts = {x.stage: x.customers for x in got.stages}
    assert (counts["awareness"], counts["purchase"], counts["retention"]) == (0, 1, 1)
    assert got.total == 2  # A is in no configured stage
    assert [(x.base, x.converted) for x in got.steps[:2]] == [(1, 0), (1, 1)]


def test_a_dropped_stage_after_now_leaves_the_stage_at_now(engine: Engine) -> None:
    """As of a month ago, a customer who has since entered a dropped stage was in
    consideration: counted there, and in its conversion base."""
    with session_scope(engine) as s:
        history(
            s,
            "A",
            [("awareness", 200, SIGNUP), ("consideration", 60, EXACT), ("trial", 10, EXACT)],
        )
        then = NOW - timedelta(days=30)
        same_as_the_funnel(s, then - timedelta(days=90), then)
        got = funnel_glance(
            s, since=then - timedelta(days=90), now=then, lifecycle=Settings().lifecycle
        )
    assert [(x.stage, x.customers) for x in got.stages[:2]] == [
        ("awareness", 0),
        ("consideration", 1),
    ]
    assert [(x.base, x.converted) for x in got.steps[:2]] == [(1, 1), (1, 0)]


def test_a_move_written_before_an_imports_future_dated_first_stage(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    """`customers.csv` may date a first stage up to a day ahead (`stage_since`); a move made
    before that time is written before it in the history, so the customer's stage (the
    move's) is not the one their latest row entered. The Home tab still counts them as
    `lifecycle.funnel` does: one customer, once, in the stage the history gives."""
    imported = NOW - timedelta(days=7)
    path = write_csv(
        tmp_path / "customers.csv",
        f"""
        external_id,name,stage,stage_since
        A1,Acme,awareness,{(imported + timedelta(hours=12)).isoformat()}
        """,
    )
    import_file(engine, "customers", path, settings, now=imported)
    with session_scope(engine) as s:
        customer = s.execute(select(Customer).where(Customer.external_id == "A1")).scalar_one()
        move_stage(
            s,
            customer,
            "consideration",
            by=ME,
            reason=None,
            now=imported + timedelta(hours=1),
            lifecycle=settings.lifecycle,
        )
    with session_scope(engine) as s:
        assert s.execute(select(Customer.stage)).scalar_one() == "consideration"
        same_as_the_funnel(s, NOW - timedelta(days=90), NOW)
        got = funnel_glance(
            s, since=NOW - timedelta(days=90), now=NOW, lifecycle=settings.lifecycle
        )
    assert got.total == 1
    assert all(x.customers >= 0 for x in got.stages)
    assert all(0 <= x.converted <= x.base <= 1 for x in got.steps)


def test_customers_without_history(engine: Engine) -> None:
    """A customer without any history row (written by another tool) is in their stage at
    every `now`, and in its base: looking for them costs a look in the history per customer
    (see `lifecycle.funnel_counts`)."""
    with session_scope(engine) as s:
        history(s, "A", [("awareness", 200, SIGNUP), ("consideration", 10, EXACT)])
        add_customer(s, "NONE", stage="consideration")
        s.add(
            Customer(
                external_id="LATER",
                name="Later",
                stage="awareness",
                created_at=NOW + timedelta(days=1),
                updated_at=NOW + timedelta(days=1),
            )
        )
        s.flush()
        same_as_the_funnel(s, NOW - timedelta(days=90), NOW)


def test_without_as_materialized_on_an_older_sqlite(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite before 3.35 (Debian 11's) rejects `AS MATERIALIZED`: the glance asks without it
    there, for the same numbers; PostgreSQL (12 and later) always gets it."""
    with session_scope(engine) as s:
        history(s, "A", [("awareness", 200, SIGNUP), ("consideration", 10, EXACT)])
        history(s, "B", [("consideration", 100, EXACT), ("retention", 5, EXACT)])
    sql: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        sql.append(statement)

    old = engine.dialect.name == "sqlite"
    if old:
        monkeypatch.setattr(engine.dialect, "server_version_info", (3, 34, 1))
    event.listen(engine, "before_cursor_execute", seen)
    try:
        with session_scope(engine) as s:
            same_as_the_funnel(s, NOW - timedelta(days=90), NOW)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    ctes = [q for q in sql if "movers" in q or "WITH stays" in q]
    assert len(ctes) >= 2 and all(("MATERIALIZED" in q) is not old for q in ctes)


# --- surveys -------------------------------------------------------------------------------------


def test_the_surveys_in_flight(engine: Engine) -> None:
    with session_scope(engine) as s:
        customers = [add_customer(s, f"S{i}") for i in range(12)]
        run_ids = []
        for k in range(SURVEY_RUNS_SHOWN + 2):
            run = SurveyRun(
                kind="nps",
                target=f"plan:p{k}",
                created_by=ME,
                created_at=NOW - timedelta(days=10 - k),
                queued=0,
                skipped={},
            )
            s.add(run)
            s.flush()
            run_ids.append(run.id)
        statuses = [QUEUED, SENDING, SENT, SENT, SENT, ANSWERED, ANSWERED, EXPIRED, CANCELLED]
        rows = [
            {
                "run_id": run_ids[-1] if i < 6 else run_ids[0],
                "customer_id": customers[i],
                "kind": "nps",
                "status": status,
                "queued_at": NOW,
                "not_before": NOW,
            }
            for i, status in enumerate(statuses)
        ]
        s.execute(insert(Survey), rows)
        flight = surveys_in_flight(s)
    assert (flight.queued, flight.waiting) == (2, 3)
    assert flight.total_runs == SURVEY_RUNS_SHOWN + 2
    assert len(flight.runs) == SURVEY_RUNS_SHOWN
    newest = flight.runs[0]
    assert newest.run_id == run_ids[-1]
    assert (newest.queued, newest.sent, newest.answered) == (2, 3, 1)
    assert newest.response_rate == pytest.approx(1 / 4)


def test_the_whole_dashboard_on_an_empty_database(engine: Engine) -> None:
    with session_scope(engine) as s:
        board = dashboard(s, Settings(), ME, NOW)
    assert board.viewer == ME and board.now == NOW
    assert board.risk.day is None and board.risk.owned == 0
    assert [c.kind for c in board.scores] == ["nps", "csat"]
    assert all(c.current.n == 0 and c.change is None for c in board.scores)
    assert board.funnel.total == 0 and all(step.rate is None for step in board.funnel.steps)
    assert board.surveys.total_runs == 0 and board.surveys.runs == ()


def test_it_is_read_only(engine: Engine) -> None:
    from tests.helpers import snapshot

    with session_scope(engine) as s:
        history(s, "A", [("awareness", 200, SIGNUP), ("consideration", 10, EXACT)])
    before = snapshot(engine)
    with session_scope(engine) as s:
        dashboard(s, Settings(), ME, NOW)
    assert snapshot(engine) == before


def test_time_is_an_argument(engine: Engine) -> None:
    """As of a month ago: last month's moves are in the period, this week's are not yet, and
    a customer who came this week is not there."""
    with session_scope(engine) as s:
        history(s, "A", [("awareness", 200, SIGNUP), ("consideration", 40, EXACT)])
        history(s, "B", [("awareness", 200, SIGNUP), ("purchase", 3, EXACT)])
        history(s, "C", [("consideration", 2, SIGNUP)])
        then = NOW - timedelta(days=30)
        lifecycle = Settings().lifecycle
        got = funnel_glance(s, since=then - timedelta(days=20), now=then, lifecycle=lifecycle)
        same_as_the_funnel(s, then - timedelta(days=20), then)
        board_then = dashboard(s, Settings(), ME, then)
    assert [(x.stage, x.customers) for x in got.stages[:3]] == [
        ("awareness", 1),  # B, not yet in purchase
        ("consideration", 1),  # A; C is not a customer yet
        ("purchase", 0),
    ]
    assert (got.steps[0].base, got.steps[0].converted) == (2, 1)  # A moved on, B did not
    assert board_then.now == then and board_then.funnel.since == then - timedelta(days=90)
    assert board_then.scores[0].trend[-1].month == datetime(2026, 10, 1, tzinfo=UTC).date()
