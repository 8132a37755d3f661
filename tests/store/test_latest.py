"""The latest event and answers kept on each customer (`clmbot.store.latest`): what a refresh
writes, when segments use it, and that they never use it once a table has moved on."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import Engine, delete, event, insert, select, text, update
from sqlmodel import Session

from clmbot.config import DEFAULT_STAGES
from clmbot.importing.runner import import_file
from clmbot.segments.compile import compile_segment
from clmbot.segments.language import parse_segment
from clmbot.store import latest, versions
from clmbot.store.db import pg_lock_key
from clmbot.store.models import Customer, Event, Feedback
from tests.conftest import NOW

DAY = timedelta(days=1)
_C = Customer.__table__


def _customers(engine: Engine, n: int) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(_C),
            [
                {
                    "external_id": f"c{i}",
                    "name": f"c{i}",
                    "stage": "retention",
                    "tags": [],
                    "attributes": {},
                    "locale": "",
                    "created_at": NOW - 400 * DAY,
                    "updated_at": NOW - 400 * DAY,
                }
                for i in range(1, n + 1)
            ],
        )


def _events(engine: Engine, *rows: tuple[int, int]) -> None:
    """(customer id, days before NOW; negative: after it)."""
    with engine.begin() as conn:
        conn.execute(
            insert(Event.__table__),
            [
                {"customer_id": c, "kind": "login", "occurred_at": NOW - d * DAY, "seq": 0}
                for c, d in rows
            ],
        )


def _answer(engine: Engine, cid: int, kind: str, score: int, days_ago: int) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(Feedback.__table__).values(
                customer_id=cid,
                kind=kind,
                score=score,
                responded_at=NOW - days_ago * DAY,
                source="import",
            )
        )


def _kept(engine: Engine, column: str) -> dict[str, object]:
    with engine.connect() as conn:
        return dict(conn.execute(select(_C.c.external_id, _C.c[column]).order_by(_C.c.id)).all())


def _current(engine: Engine, table: str) -> bool:
    with engine.connect() as conn:
        return bool(conn.execute(select(latest.is_current(table))).scalar())


def _segment(engine: Engine, typed: str, now=NOW) -> set[str]:
    segment = parse_segment(typed, stages=DEFAULT_STAGES)
    with Session(engine) as session:
        where = compile_segment(segment, now=now, dialect=engine.dialect.name)
        return set(session.scalars(select(Customer.external_id).where(where)))


def test_a_refresh_keeps_each_customers_latest_and_says_when_it_holds(engine):
    _customers(engine, 3)
    _events(engine, (1, 40), (1, 10), (2, 90), (2, -3))  # c2's latest is after NOW
    _answer(engine, 1, "nps", 3, 20)
    _answer(engine, 1, "nps", 9, 5)
    _answer(engine, 2, "csat", 2, 1)
    assert not _current(engine, "events") and not _current(engine, "feedback")

    done = latest.refresh(engine)
    assert done.tables == ("events", "feedback") and done.changed == 2  # rows: c1 and c2
    assert _current(engine, "events") and _current(engine, "feedback")
    events = _kept(engine, "latest_event_at")
    assert events == {"c1": NOW - 10 * DAY, "c2": NOW + 3 * DAY, "c3": None}
    assert _kept(engine, "latest_nps") == {"c1": 9, "c2": None, "c3": None}
    assert _kept(engine, "latest_nps_at")["c1"] == NOW - 5 * DAY
    assert _kept(engine, "latest_csat") == {"c1": None, "c2": 2, "c3": None}

    assert latest.refresh(engine).tables == ()  # nothing written since: nothing to do

    _events(engine, (3, 2))
    assert not _current(engine, "events") and _current(engine, "feedback")
    assert latest.refresh(engine) == latest.Refreshed(("events",), 1)
    assert _kept(engine, "latest_event_at")["c3"] == NOW - 2 * DAY


def test_a_refresh_changes_no_kept_report(engine):
    """Its update of `customers` changes no answer, so it must not count as a change: every
    kept report reading customers would be worked out again."""
    _customers(engine, 2)
    _events(engine, (1, 3))
    with engine.connect() as conn:
        before = versions.current(conn, ("customers", versions.STAGES))
    latest.refresh(engine)
    with engine.connect() as conn:
        assert versions.current(conn, ("customers", versions.STAGES)) == before


def test_segments_read_the_kept_values_only_while_they_hold(engine):
    _customers(engine, 2)
    _events(engine, (1, 90), (2, 5))
    _answer(engine, 1, "nps", 4, 10)
    latest.refresh(engine)
    assert _segment(engine, "inactive>30d") == {"c1"}
    assert _segment(engine, "nps<7") == {"c1"}
    # Proof that the kept values are read: made wrong behind the counts' back, they show.
    with engine.begin() as conn:
        conn.execute(
            update(_C).where(_C.c.id == 2).values(latest_event_at=NOW - 60 * DAY),
            execution_options=versions.COUNTED_BY_CALLER,
        )
        conn.execute(
            update(_C).where(_C.c.id == 1).values(latest_nps=10),
            execution_options=versions.COUNTED_BY_CALLER,
        )
    assert _segment(engine, "inactive>30d") == {"c1", "c2"}
    assert _segment(engine, "nps<7") == set()
    # A write to the table: the kept values no longer hold, and the table is asked.
    _events(engine, (1, 100))
    _answer(engine, 2, "nps", 8, 50)
    assert _segment(engine, "inactive>30d") == {"c1"}
    assert _segment(engine, "nps<7") == {"c1"}
    latest.refresh(engine)  # and the refresh puts the truth back
    assert _kept(engine, "latest_event_at")["c2"] == NOW - 5 * DAY
    assert _kept(engine, "latest_nps") == {"c1": 4, "c2": 8}


def test_a_kept_value_after_now_is_asked_of_the_table(engine):
    """As of a past `now` (a backtest), or past an event dated in the future, the kept latest
    is later than `now`: the latest at or before `now` comes from the table."""
    _customers(engine, 2)
    _events(engine, (1, 50), (1, 5), (2, 50))
    _answer(engine, 1, "csat", 1, 40)
    _answer(engine, 1, "csat", 5, 4)
    latest.refresh(engine)
    assert _segment(engine, "inactive>30d") == {"c2"}
    assert _segment(engine, "inactive>30d", now=NOW - 10 * DAY) == {"c1", "c2"}
    assert _segment(engine, "csat<3") == set()
    assert _segment(engine, "csat<3", now=NOW - 10 * DAY) == {"c1"}


def test_values_of_rows_that_are_gone_are_not_kept(engine):
    _customers(engine, 1)
    _events(engine, (1, 5))
    _answer(engine, 1, "nps", 2, 5)
    latest.refresh(engine)
    with engine.begin() as conn:
        conn.execute(delete(Event.__table__))
        conn.execute(delete(Feedback.__table__))
    latest.refresh(engine)
    assert _kept(engine, "latest_event_at") == {"c1": None}
    assert _kept(engine, "latest_nps") == {"c1": None}
    assert _kept(engine, "latest_nps_at") == {"c1": None}
    assert _segment(engine, "inactive<30d") == set()


def test_before_the_counts_exist_a_refresh_does_nothing(engine):
    with engine.begin() as conn:
        conn.execute(text(f"DROP TABLE {versions.TABLE}"))
    assert latest.refresh(engine) == latest.Refreshed((), 0)


def test_one_copy_refreshes_at_a_time(engine):
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's advisory locks: SQLite has one writer anyway")
    _customers(engine, 1)
    _events(engine, (1, 5))
    held = threading.Event()
    release = threading.Event()

    def other_copy() -> None:
        with engine.begin() as conn:
            key = pg_lock_key(conn, latest.LOCK_NAME)
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
            held.set()
            release.wait(10)

    thread = threading.Thread(target=other_copy)
    thread.start()
    try:
        assert held.wait(10)
        assert latest.refresh(engine).tables == ()  # the other copy is at it
    finally:
        release.set()
        thread.join()
    assert latest.refresh(engine).tables == ("events", "feedback")


def test_a_refresh_in_chunks_reaches_every_customer(engine, monkeypatch):
    """A transaction per `CHUNK` customers, so that no stage move waits for all of them."""
    monkeypatch.setattr(latest, "CHUNK", 2)
    _customers(engine, 7)
    _events(engine, *((c, c) for c in range(1, 8)))
    for c in range(1, 8):
        _answer(engine, c, "csat", 1 + c % 5, c)
    commits: list[int] = []

    def counted(conn) -> None:
        commits.append(1)

    event.listen(engine, "commit", counted)
    try:
        assert latest.refresh(engine).changed == 7
    finally:
        event.remove(engine, "commit", counted)
    assert len(commits) >= 4  # four chunks of ids 0..7
    assert _kept(engine, "latest_event_at") == {f"c{c}": NOW - c * DAY for c in range(1, 8)}
    assert _kept(engine, "latest_csat") == {f"c{c}": 1 + c % 5 for c in range(1, 8)}


@pytest.mark.parametrize("kind", ["events", "feedback"])
def test_an_import_makes_the_kept_values_wait_for_the_next_refresh(
    engine, settings, tmp_path, kind
):
    """The importers write by COPY and bulk upserts, never through the kept values: what
    they wrote must still show in a segment at once, and after the refresh from the row."""
    files = {
        "customers": (
            "external_id,name,stage,signup_date\n"
            "A1,Acme,retention,2020-01-01\nB2,Bolt,retention,2020-01-01"
        ),
        "events": "customer_external_id,kind,occurred_at\nA1,login,2026-11-20T10:00:00Z",
        "feedback": "customer_external_id,kind,score,responded_at\nA1,nps,2,2026-11-20T10:00:00Z",
    }
    for name in ("customers", kind):
        path = tmp_path / f"{name}.csv"
        path.write_text(files[name] + "\n", encoding="utf-8")
        if name == kind:
            latest.refresh(engine)  # everything held before the import
            assert _current(engine, kind)
        import_file(engine, name, path, settings, now=NOW)
    # A1's new event or answer is what keeps it out of (or puts it in) the segment.
    typed, expected = ("inactive>30d", {"B2"}) if kind == "events" else ("nps<7", {"A1"})
    assert not _current(engine, kind)
    assert _segment(engine, typed) == expected
    latest.refresh(engine)
    assert _current(engine, kind)
    assert _segment(engine, typed) == expected
    column = "latest_event_at" if kind == "events" else "latest_nps"
    assert _kept(engine, column)["A1"] is not None and _kept(engine, column)["B2"] is None
