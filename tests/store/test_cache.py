"""Reports kept while nothing they read changed: given again to the same question, worked
out again after a change committed by any copy of the bot, carried to a later period only
when no move lies between, never given to an earlier `now`, worked out once under a burst."""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy import text as sa_text
from sqlmodel import Session, select

from clmbot import lifecycle
from clmbot.config import LifecycleConfig, Settings
from clmbot.feedback.reports import report, report_by
from clmbot.lifecycle import funnel, move_stage, work_out_funnel
from clmbot.risk.stored import at_risk
from clmbot.segments import count, resolve
from clmbot.segments.compile import compile_segment
from clmbot.segments.language import parse_segment
from clmbot.segments.query import summarise
from clmbot.store import cache
from clmbot.store.db import make_engine, session_scope
from clmbot.store.models import Customer, Event, Feedback, SavedSegment, StageChange
from tests.helpers import until

LIFECYCLE = LifecycleConfig()
T0 = datetime(2026, 1, 1, tzinfo=UTC)
NOW = T0 + timedelta(days=60)
SINCE = NOW - timedelta(days=30)


def shop(engine: Engine) -> None:
    """Three customers; two moved within the 30 days before NOW."""
    with session_scope(engine) as s:
        for ext, stage in (("A1", "awareness"), ("A2", "awareness"), ("A3", "purchase")):
            c = Customer(external_id=ext, name=ext, stage=stage, created_at=T0, updated_at=T0)
            s.add(c)
            s.flush()
            s.add(StageChange(customer_id=c.id, to_stage=stage, at=T0, by="import"))
        s.flush()
        for ext, at in (("A1", NOW - timedelta(days=10)), ("A2", NOW - timedelta(days=5))):
            moved = s.exec(select(Customer).where(Customer.external_id == ext)).one()
            move_stage(s, moved, "consideration", by="U1", reason=None, now=at, lifecycle=LIFECYCLE)


def ask(engine: Engine, since: datetime = SINCE, now: datetime = NOW):  # type: ignore[no-untyped-def]
    with session_scope(engine) as s:
        return funnel(s, since=since, now=now, lifecycle=LIFECYCLE)


def truth(engine: Engine, since: datetime = SINCE, now: datetime = NOW):  # type: ignore[no-untyped-def]
    with session_scope(engine) as s:
        return work_out_funnel(s, since=since, now=now, lifecycle=LIFECYCLE)


def test_the_same_question_gets_the_kept_answer(engine: Engine) -> None:
    shop(engine)
    first = ask(engine)
    assert ask(engine) is first
    assert ask(engine, SINCE + timedelta(seconds=30), NOW + timedelta(seconds=30)) is first
    assert first == truth(engine)


def test_a_move_through_another_copy_is_counted_at_once(engine: Engine, db_url: str) -> None:
    shop(engine)
    before = ask(engine)
    other = make_engine(db_url)
    try:
        with session_scope(other) as s:
            c = s.exec(select(Customer).where(Customer.external_id == "A3")).one()
            at = NOW - timedelta(hours=1)
            move_stage(s, c, "retention", by="U2", reason=None, now=at, lifecycle=LIFECYCLE)
    finally:
        other.dispose()
    after = ask(engine)
    assert after is not before and after == truth(engine)
    assert {s.stage: s.customers for s in after.stages}["retention"] == 1


def test_an_answer_counted_is_in_the_next_report(engine: Engine, settings: Settings) -> None:
    shop(engine)

    def nps() -> int:
        with session_scope(engine) as s:
            return report(s, "nps", since=SINCE, now=NOW, zone=settings.timezone).current.n

    assert nps() == 0
    with session_scope(engine) as s:
        c = s.exec(select(Customer)).first()
        assert c is not None
        s.add(Feedback(customer_id=c.id, kind="nps", score=9, responded_at=NOW, source="t"))
    assert nps() == 1


def test_nps_is_kept_through_a_stage_move_and_the_funnel_and_nps_by_stage_are_not(
    engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop(engine)
    worked: list[str] = []
    real = cache.kept

    def watched(session, key, **kw):  # type: ignore[no-untyped-def]
        compute = kw["compute"]
        kw["compute"] = lambda: worked.append(key[0]) or compute()
        return real(session, key, **kw)

    monkeypatch.setattr(cache, "kept", watched)

    def ask_all() -> tuple[int, int, list[str]]:
        with session_scope(engine) as s:
            plain = report(s, "nps", since=SINCE, now=NOW, zone=settings.timezone)
            by = report_by(s, "nps", "stage", since=SINCE, now=NOW)
            flow = funnel(s, since=SINCE, now=NOW, lifecycle=LIFECYCLE)
        return plain.current.n, len(by.lines), [st.stage for st in flow.stages if st.customers]

    ask_all()
    worked.clear()
    with session_scope(engine) as s:
        moved = s.exec(select(Customer).where(Customer.external_id == "A3")).one()
        move_stage(s, moved, "retention", by="U1", reason=None, now=NOW, lifecycle=LIFECYCLE)
    *_, stages = ask_all()
    assert sorted(worked) == ["report_by", "work_out_funnel"]
    assert "retention" in stages


def test_a_segment_count_follows_the_customers(engine: Engine, settings: Settings) -> None:
    shop(engine)

    def pro() -> int:
        with session_scope(engine) as s:
            _, where = resolve(s, "plan:pro", settings=settings, now=NOW)
            return count(s, where)

    assert pro() == 0
    with session_scope(engine) as s:
        for c in s.exec(select(Customer)).all():
            c.plan = "pro"
            s.add(c)
    assert pro() == 3


# What each filter reads, found in its compiled condition (subqueries included).
READS = {
    "stage:retention": {"customers", "customers.stage"},
    "plan:pro": {"customers"},
    "-plan:pro": {"customers"},
    "region:emea": {"customers"},
    "tag:vip": {"customers"},
    "owner:@me": {"customers"},
    "mrr>100": {"customers"},
    "signup<2024-01-01": {"customers"},
    "attr.industry:retail": {"customers"},
    "nps<7": {"customers", "feedback"},
    "csat<3": {"customers", "feedback"},
    "risk>50": {"customers", "risk_runs", "risk_scores"},
    "inactive>60d": {"customers", "events"},
    "in-stage>30d": {"customers", "customers.stage", "stage_history"},
    "nps<7 stage:retention": {"customers", "customers.stage", "feedback"},
}


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
@pytest.mark.parametrize("text", sorted(READS))
def test_a_segment_reads_the_tables_its_filters_name(text: str, dialect: str) -> None:
    segment = parse_segment(text, stages=LIFECYCLE.stages)
    where = compile_segment(segment, now=NOW, dialect=dialect, actor_id="U1")
    assert set(cache.tables_read(where)) == READS[text]
    assert set(cache.tables_read(where, "risk_runs")) == READS[text] | {"risk_runs"}
    assert cache.tables_read(None, "feedback", "customers") == ("customers", "feedback")


def test_sql_the_condition_holds_as_text_reads_everything() -> None:
    assert cache.tables_read(Customer.plan == "pro", "feedback") == ("customers", "feedback")
    assert cache.tables_read(sa_text("plan = 'pro'")) == cache.ALL_TABLES  # type: ignore[arg-type]


def test_a_kept_segment_follows_each_table_its_filters_read(
    engine: Engine, settings: Settings
) -> None:
    """A change to what a filter reads is counted at once; with each filter reading only its
    own tables, none may be missed."""
    shop(engine)

    def members(text: str) -> int:
        with session_scope(engine) as s:
            _, where = resolve(s, text, settings=settings, now=NOW)
            return count(s, where)

    def a3(s: Session) -> Customer:
        return s.exec(select(Customer).where(Customer.external_id == "A3")).one()

    asked = ("stage:retention", "nps<7", "inactive>30d", "in-stage<2d", "plan:pro")
    before = {text: members(text) for text in asked}
    assert before == {
        "stage:retention": 0,
        "nps<7": 0,
        "inactive>30d": 3,
        "in-stage<2d": 0,
        "plan:pro": 0,
    }
    with session_scope(engine) as s:
        move_stage(s, a3(s), "retention", by="U1", reason=None, now=NOW, lifecycle=LIFECYCLE)
    assert members("stage:retention") == 1 and members("in-stage<2d") == 1
    with session_scope(engine) as s:
        s.add(
            Feedback(customer_id=a3(s).id, kind="nps", score=3, responded_at=NOW, source="import")
        )
    assert members("nps<7") == 1
    with session_scope(engine) as s:
        s.add(Event(customer_id=a3(s).id, kind="login", occurred_at=NOW, seq=0))
    assert members("inactive>30d") == 2
    with session_scope(engine) as s:
        a3(s).plan = "pro"
    assert members("plan:pro") == 1


def test_reports_on_a_segment_that_reads_no_stage_are_kept_through_a_move(
    engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop(engine)
    worked: list[tuple[str, str]] = []
    real = cache.kept

    def watched(session, key, **kw):  # type: ignore[no-untyped-def]
        compute = kw["compute"]
        kw["compute"] = lambda: worked.append((key[0], asking)) or compute()
        return real(session, key, **kw)

    monkeypatch.setattr(cache, "kept", watched)
    asking = ""

    def ask_all() -> None:
        nonlocal asking
        for asking in ("plan:pro", "stage:retention"):
            with session_scope(engine) as s:
                _, where = resolve(s, asking, settings=settings, now=NOW)
                report(s, "nps", since=SINCE, now=NOW, zone=settings.timezone, where=where)
                at_risk(s, now=NOW, threshold=70, where=where)
                count(s, where)
                summarise(s, where, stages=LIFECYCLE.stages)

    ask_all()
    worked.clear()
    with session_scope(engine) as s:
        moved = s.exec(select(Customer).where(Customer.external_id == "A3")).one()
        move_stage(s, moved, "retention", by="U1", reason=None, now=NOW, lifecycle=LIFECYCLE)
    ask_all()
    # The summary lists each customer's stage: a move changes it whatever the segment.
    assert sorted(worked) == [
        ("at_risk", "stage:retention"),
        ("report", "stage:retention"),
        ("segment", "plan:pro"),
        ("segment", "stage:retention"),
        ("segment_count", "stage:retention"),
    ]


def test_own_uncommitted_changes_are_never_hidden(engine: Engine) -> None:
    shop(engine)
    ask(engine)
    with Session(engine) as s:
        c = s.exec(select(Customer).where(Customer.external_id == "A3")).one()
        at = NOW - timedelta(hours=1)
        move_stage(s, c, "retention", by="U2", reason=None, now=at, lifecycle=LIFECYCLE)
        mine = funnel(s, since=SINCE, now=NOW, lifecycle=LIFECYCLE)
        assert {st.stage: st.customers for st in mine.stages}["retention"] == 1
        s.rollback()
    assert {st.stage: st.customers for st in ask(engine).stages}["retention"] == 0


def test_a_later_period_is_carried_only_when_no_move_lies_between(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop(engine)
    worked: list[datetime] = []

    def counted(session: Session, *, since: datetime, now: datetime, lifecycle: LifecycleConfig):  # type: ignore[no-untyped-def]
        worked.append(now)
        return work_out_funnel(session, since=since, now=now, lifecycle=lifecycle)

    monkeypatch.setattr(lifecycle, "work_out_funnel", counted)
    first = ask(engine)
    # Two hours on: nothing moved in between, so the kept counts hold, for the new period.
    later = NOW + timedelta(hours=2)
    carried = ask(engine, SINCE + timedelta(hours=2), later)
    assert worked == [NOW]
    assert carried is not first and carried.now == later
    assert carried == truth(engine, SINCE + timedelta(hours=2), later)
    # Twenty-one days on, A1's move (ten days before NOW) has left the 30-day period.
    far = NOW + timedelta(days=21)
    moved_out = ask(engine, far - timedelta(days=30), far)
    assert worked == [NOW, far]
    assert moved_out == truth(engine, far - timedelta(days=30), far)
    assert moved_out.stages != first.stages or moved_out.conversions != first.conversions


def test_an_earlier_now_is_never_given_a_later_report(engine: Engine) -> None:
    shop(engine)
    ask(engine)
    earlier = NOW - timedelta(days=7)  # before A2's move
    assert ask(engine, SINCE - timedelta(days=7), earlier) == truth(
        engine, SINCE - timedelta(days=7), earlier
    )


def test_a_report_is_not_kept_past_its_time(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop(engine)
    first = ask(engine)
    monkeypatch.setattr(cache, "KEEP_FOR", 0.0)
    time.sleep(0.01)
    assert ask(engine) is not first


def test_a_burst_works_a_report_out_once(engine: Engine) -> None:
    shop(engine)
    started = threading.Barrier(8)
    worked: list[int] = []

    def slow() -> int:
        worked.append(1)
        time.sleep(0.3)
        return 42

    answers: list[int] = []

    def one() -> None:
        with session_scope(engine) as s:
            started.wait()
            answers.append(cache.kept(s, ("burst",), tables=("customers",), now=NOW, compute=slow))

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert answers == [42] * 8 and len(worked) == 1


def test_a_change_during_a_burst_has_the_report_worked_out_once_more_not_by_each(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first asker works it out; a change is committed meanwhile, and 7 others ask after
    # it: they wait (nothing kept yet), then one works the change out and the others are
    # given the first answer, marked. Each of them reading the table at once is what took
    # two processes to 100% of the machine under bench_load (a stage move every 125 ms).
    shop(engine)
    monkeypatch.setattr(cache, "BUSY_ASKS", 10**6)  # the waiters alone, not the burst rule
    worked: list[int] = []
    first_started = threading.Event()

    def slow() -> Counted:
        worked.append(1)
        first_started.set()
        time.sleep(0.4)
        return Counted(len(worked))

    answers: list[Counted] = []

    def one() -> None:
        with session_scope(engine) as s:
            answers.append(cache.kept(s, ("herd",), tables=("customers",), now=NOW, compute=slow))

    first = threading.Thread(target=one)
    first.start()
    assert first_started.wait(5)
    with session_scope(engine) as s:
        s.add(Customer(external_id="B1", name="B", stage="awareness", created_at=T0, updated_at=T0))
    others = [threading.Thread(target=one) for _ in range(7)]
    for t in others:
        t.start()
    for t in [first, *others]:
        t.join(10)
    assert len(answers) == 8 and len(worked) == 2
    assert all(a in (Counted(1), Counted(1, counted_at=NOW), Counted(2)) for a in answers)


def test_a_segment_asked_again_within_the_minute_is_kept(
    engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `nps<7` is compiled with `now` among its values: to the minute, the same question.
    shop(engine)
    asked: list[datetime] = []

    def segment(now: datetime) -> int:
        with session_scope(engine) as s:
            _, where = resolve(s, "nps<7", settings=settings, now=now)
            return count(s, where)

    real = cache.kept

    def watched(session, key, **kw):  # type: ignore[no-untyped-def]
        compute = kw["compute"]
        kw["compute"] = lambda: asked.append(1) or compute()
        return real(session, key, **kw)

    monkeypatch.setattr(cache, "kept", watched)
    at = NOW.replace(second=5)
    assert segment(at) == segment(at + timedelta(seconds=40)) == 0
    assert len(asked) == 1
    segment(at + timedelta(minutes=1))
    assert len(asked) == 2


@dataclass(frozen=True)
class Counted:
    n: int
    counted_at: datetime | None = None


def test_while_a_changed_report_is_worked_out_others_get_the_last_one(engine: Engine) -> None:
    shop(engine)
    versions = iter((1, 2))
    working = threading.Event()

    def slow() -> Counted:
        value = next(versions)
        if value == 2:
            working.set()
            time.sleep(0.5)
        return Counted(value)

    def ask_now() -> Counted:
        with session_scope(engine) as s:
            return cache.kept(s, ("stale",), tables=("customers",), now=NOW, compute=slow)

    assert ask_now() == Counted(1)
    with session_scope(engine) as s:  # a change: the kept 1 is out of date
        s.add(Customer(external_id="B1", name="B", stage="awareness", created_at=T0, updated_at=T0))
    answers: list[Counted] = []
    worker = threading.Thread(target=lambda: answers.append(ask_now()))
    worker.start()
    assert working.wait(5)
    started = time.monotonic()
    # Given at once, not after the half second, and saying when it was counted.
    assert ask_now() == Counted(1, counted_at=NOW)
    assert time.monotonic() - started < 0.4
    worker.join(5)
    assert answers == [Counted(2)] and ask_now() == Counted(2)


def test_a_slow_report_is_given_marked_after_a_change_until_it_is_due(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A funnel that took long: after a move it is given again, saying when it was counted,
    # until ten times as long as it took has passed; then it is worked out afresh.
    shop(engine)
    monkeypatch.setattr(cache, "SLOW", 0.0)
    first = ask(engine)
    assert first.counted_at is None
    with session_scope(engine) as s:
        c = s.exec(select(Customer).where(Customer.external_id == "A3")).one()
        at = NOW - timedelta(hours=1)
        move_stage(s, c, "retention", by="U2", reason=None, now=at, lifecycle=LIFECYCLE)
    monkeypatch.setattr(cache, "REFRESH_FACTOR", 10**6)
    marked = ask(engine, now=NOW + timedelta(seconds=20), since=SINCE + timedelta(seconds=20))
    assert marked.counted_at == NOW and marked.stages == first.stages
    # Due: still given at once, marked, while a thread of its own works it out afresh.
    monkeypatch.setattr(cache, "REFRESH_FACTOR", 0)
    later = {"now": NOW + timedelta(seconds=30), "since": SINCE + timedelta(seconds=30)}
    assert ask(engine, **later).counted_at == NOW
    fresh = until("the funnel worked out again", lambda: fresh_or_none(ask(engine, **later)))
    assert {st.stage: st.customers for st in fresh.stages}["retention"] == 1  # type: ignore[attr-defined]


def fresh_or_none(value: Any) -> Any:
    return value if value.counted_at is None else None


def slow_funnel_then_a_move(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """A funnel counted at NOW, taken as slow and due again at once; then A3 moves."""
    shop(engine)
    monkeypatch.setattr(cache, "SLOW", 0.0)
    monkeypatch.setattr(cache, "REFRESH_FACTOR", 0)
    ask(engine)
    with session_scope(engine) as s:
        c = s.exec(select(Customer).where(Customer.external_id == "A3")).one()
        move_stage(s, c, "retention", by="U2", reason=None, now=NOW, lifecycle=LIFECYCLE)


def test_a_slow_report_that_fails_in_the_background_is_worked_out_by_the_next_ask(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    slow_funnel_then_a_move(engine, monkeypatch)
    monkeypatch.setattr(cache, "BUSY_ASKS", 10**6)  # three asks in a second: not a burst here

    def work_out_funnel(own: Session, **_: Any) -> Any:  # the name keys the kept one
        raise RuntimeError("customer A3 is not here")  # a value that must stay out of logs

    monkeypatch.setattr(lifecycle, "work_out_funnel", work_out_funnel)
    assert ask(engine).counted_at == NOW  # the last one, while the refresh fails
    until("the refresh gave up", lambda: "could not be worked out" in caplog.text)
    assert "A3" not in caplog.text
    monkeypatch.undo()
    monkeypatch.setattr(cache, "SLOW", 10**6)  # no longer slow: worked out here and now
    monkeypatch.setattr(cache, "BUSY_ASKS", 10**6)
    assert {st.stage: st.customers for st in ask(engine).stages}["retention"] == 1


def test_a_slow_funnel_is_given_marked_minutes_on_but_never_for_another_span_or_earlier(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The period "the last 30 days" moves with the clock: five minutes after a slow funnel,
    # a change later, the last one is given at once, saying when it was counted; not for
    # a period further on than the clock went, nor the last 60 days, nor an earlier `now`.
    slow_funnel_then_a_move(engine, monkeypatch)
    on = timedelta(minutes=5)
    real = time.monotonic
    monkeypatch.setattr(cache.time, "monotonic", lambda: real() + on.total_seconds())
    assert ask(engine, since=SINCE + on, now=NOW + on).counted_at == NOW
    # Ten minutes on while the clock moved five: a backtest's period, not the clock's.
    assert ask(engine, since=SINCE + 2 * on, now=NOW + 2 * on).counted_at is None
    until("the refresh is done", lambda: not cache._BY_ENGINE[engine].working)
    assert ask(engine, since=SINCE - timedelta(days=30), now=NOW + on).counted_at is None
    assert ask(engine, since=SINCE - on, now=NOW - on).counted_at is None


class Burst:
    """A report that takes `took` seconds by a clock of the test's, asked and changed under
    as a burst would: `ask()` it, `change()` what it reads, `clock` moves time."""

    def __init__(
        self, engine: Engine, monkeypatch: pytest.MonkeyPatch, key: str, took: float
    ) -> None:
        shop(engine)
        self.engine, self.key, self.took = engine, key, took
        self.clock = 1000.0
        self.worked: list[float] = []  # when each was worked out
        monkeypatch.setattr(cache.time, "monotonic", lambda: self.clock)

    def _report(self) -> Counted:
        self.worked.append(self.clock)
        self.clock += self.took
        return Counted(len(self.worked))

    def ask(self) -> Counted:
        with session_scope(self.engine) as s:
            return cache.kept(s, (self.key,), tables=("customers",), compute=self._report)

    def change(self) -> None:
        with session_scope(self.engine) as s:
            s.add(
                Customer(
                    external_id=f"{self.key}{self.clock}",
                    name="B",
                    stage="awareness",
                    created_at=T0,
                    updated_at=T0,
                )
            )

    def every_100_ms(self, seconds: int) -> list[int]:
        """Asks every 100 ms for `seconds`, each after a change; what each was given."""
        answers = []
        for _ in range(seconds * 10):
            self.clock += 0.1
            self.change()
            answers.append(self.ask().n)
        return answers


def test_under_a_burst_a_changed_report_is_worked_out_at_most_so_often(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A report asked three times a second while the tables change under it (a stage move
    # every 125 ms in bench_load) is given as last worked out, until thirty times as long as
    # that took has passed (5 s at most): working it out after every change took a core
    # per report. Asked once in a while, it is worked out after every change.
    burst = Burst(engine, monkeypatch, "busy", took=0.1)
    assert burst.ask() == Counted(1)
    burst.clock += 5  # a while later: not a burst
    burst.change()
    assert burst.ask() == Counted(2)
    answers = burst.every_100_ms(9)
    # The first three of them are not yet a burst (with the ask 5 s before, five asks in
    # 3 s are); then it is worked out again every 3 s (thirty times its 100 ms), not 90
    # times.
    assert answers == [3, 4] + [5] * 30 + [6] * 30 + [7] * 28 and len(burst.worked) == 7
    burst.clock += 6
    burst.change()
    assert burst.ask() == Counted(8)  # alone again: afresh


def test_a_person_alone_who_changes_and_asks_each_second_sees_each_change(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Three asks in 3 s, each after their own change: no burst; every answer is fresh.
    burst = Burst(engine, monkeypatch, "alone", took=0.1)
    got = []
    for _ in range(10):
        burst.clock += 1
        burst.change()
        got.append(burst.ask().n)
    assert got == list(range(1, 11))


def test_under_a_burst_a_slow_report_is_given_as_last_worked_out_5_s_at_most(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A report that takes 400 ms would be given for 12 s by the factor alone: under a
    # burst, no report is older than BUSY_STALE (5 s) for having been given as it was.
    burst = Burst(engine, monkeypatch, "busy-slow", took=0.4)
    burst.ask()
    burst.every_100_ms(12)
    # The first asks are worked out one after another (no burst before five in 3 s).
    gaps = [later - earlier for earlier, later in itertools.pairwise(burst.worked[3:])]
    assert len(gaps) >= 1 and all(4.9 <= gap <= 5.6 for gap in gaps), gaps


def test_a_segments_key_is_its_question_to_the_minute(engine: Engine, settings: Settings) -> None:
    """`where_key` tells segments apart by their filters and values, and by their times to
    the minute; asked again within the minute, it is the same question."""
    at = datetime(2026, 11, 24, 12, 0, 5, tzinfo=UTC)

    def key(typed: str, now: datetime) -> Any:
        with Session(engine) as session:
            return cache.where_key(session, resolve(session, typed, settings=settings, now=now)[1])

    assert key("plan:pro inactive>30d", at) == key(
        "plan:pro inactive>30d", at + timedelta(seconds=40)
    )
    assert key("plan:pro inactive>30d", at) != key("plan:team inactive>30d", at)
    assert key("plan:pro inactive>30d", at) != key("plan:pro inactive>31d", at)
    assert key("plan:pro inactive>30d", at) != key(
        "plan:pro inactive>30d", at + timedelta(minutes=1)
    )
    assert key("nps<3", at) != key("csat<3", at)
    assert key("attr.industry:retail", at) != key("attr.sector:retail", at)
    assert cache.where_key(Session(engine), None) is None


def _in_a_turn_while_working_out(
    engine: Engine, pool: threading.BoundedSemaphore, *, write_first: bool
) -> tuple[threading.Event, threading.Event, threading.Thread, list[Counted]]:
    """A thread that takes a turn, writes a saved segment first if `write_first` (as
    `/clm segment save` does before counting it), and works a report out until `finish`."""
    working, finish = threading.Event(), threading.Event()
    results: list[Counted] = []

    def slow() -> Counted:
        working.set()
        assert finish.wait(10)
        return Counted(1)

    def answer() -> None:
        with cache.turns.taken(pool), session_scope(engine) as s:
            if write_first:
                s.add(
                    SavedSegment(
                        name="vip",
                        expression="mrr>100",
                        created_by="U1",
                        created_at=T0,
                        updated_at=T0,
                    )
                )
                s.flush()
            results.append(cache.kept(s, ("turn",), tables=("customers",), compute=slow))

    thread = threading.Thread(target=answer)
    thread.start()
    assert working.wait(10)
    return working, finish, thread, results


def test_a_report_being_worked_out_lets_the_other_answers_have_the_turn(engine: Engine) -> None:
    # Working a report out is mostly a wait for the database: holding the process's turn
    # meanwhile, four reports at once on PostgreSQL held every turn for their seconds.
    shop(engine)
    pool = threading.BoundedSemaphore(1)
    _, finish, thread, results = _in_a_turn_while_working_out(engine, pool, write_first=False)
    try:
        assert pool.acquire(timeout=5)  # another answer has the turn meanwhile
        pool.release()
    finally:
        finish.set()
        thread.join(10)
    assert results == [Counted(1)] and pool.acquire(blocking=False)  # given back at the end
    pool.release()


def test_a_report_worked_out_after_a_write_keeps_the_turn(engine: Engine) -> None:
    # Its transaction holds the write (SQLite's lock for the whole database): writers given
    # its turn would wait for that lock holding every turn, and it for a turn to commit.
    shop(engine)
    pool = threading.BoundedSemaphore(1)
    _, finish, thread, results = _in_a_turn_while_working_out(engine, pool, write_first=True)
    try:
        taken = pool.acquire(timeout=0.3)
        if taken:
            pool.release()  # (so that the thread can finish, and the test fail, not hang)
    finally:
        finish.set()
        thread.join(10)
    assert not taken  # kept
    assert results == [Counted(1)]
    with Session(engine) as s:  # and the write committed
        assert s.exec(select(SavedSegment.name)).all() == ["vip"]


def test_what_a_report_took_leaves_out_the_wait_for_the_turn_again(engine: Engine) -> None:
    # Counted with the wait, a report worked out in no time behind a busy turn became a
    # "slow" one, given from before a change for ten times that wait.
    shop(engine)
    pool = threading.BoundedSemaphore(1)
    _, finish, thread, _ = _in_a_turn_while_working_out(engine, pool, write_first=False)
    try:
        assert pool.acquire(timeout=5)
        finish.set()  # the report is done at once, and waits for the turn back
        time.sleep(1.2)
        pool.release()
    finally:
        finish.set()
        thread.join(10)
    (entries,) = [e for k, e in cache._BY_ENGINE[engine].entries.items() if k[0] == ("turn",)]
    assert entries[-1].took < 0.5 and not entries[-1].slow_and_dated()
