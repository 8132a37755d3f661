"""The counts of commits per table that kept reports depend on: raised by every way a
table is written (the ORM, Core, an import's COPY), seen by another copy of the bot, and
never by a transaction that rolled back or wrote only elsewhere."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlmodel import select

from clmbot.config import Settings
from clmbot.importing.runner import import_file
from clmbot.lifecycle import move_stage
from clmbot.store import versions
from clmbot.store.db import make_engine, session_scope
from clmbot.store.models import AuditEntry, Customer

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
TABLES = versions.TRACKED


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        found = versions.current(conn, TABLES)
    assert found is not None
    return dict(zip(TABLES, found, strict=True))


def raised(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {t: after[t] - before[t] for t in TABLES if after[t] != before[t]}


def a_customer(ext: str = "A1") -> Customer:
    return Customer(external_id=ext, name=ext, stage="purchase", created_at=NOW, updated_at=NOW)


def test_a_commit_raises_the_tables_it_wrote_once(engine: Engine) -> None:
    before = counts(engine)
    with session_scope(engine) as s:
        s.add(a_customer("A1"))
        s.flush()
        s.add(a_customer("A2"))
    assert raised(before, counts(engine)) == {"customers": 1}


def test_a_rollback_or_a_write_elsewhere_raises_nothing(engine: Engine) -> None:
    before = counts(engine)
    with pytest.raises(RuntimeError), session_scope(engine) as s:
        s.add(a_customer())
        s.flush()
        raise RuntimeError("changed my mind")
    with session_scope(engine) as s:
        s.add(AuditEntry(at=NOW, actor="U1", action="stage", detail={}))
    with engine.begin() as conn:
        conn.execute(text("SELECT count(*) FROM customers"))
    assert raised(before, counts(engine)) == {}


def test_core_updates_deletes_and_another_copy_see_the_same_counts(
    engine: Engine, db_url: str
) -> None:
    with session_scope(engine) as s:
        s.add(a_customer())
    before = counts(engine)
    other = make_engine(db_url)  # another copy of the bot, on the same database
    try:
        with other.begin() as conn:
            conn.execute(text("UPDATE customers SET plan = 'pro'"))
        with other.begin() as conn:
            conn.execute(text("DELETE FROM customers"))
        assert raised(before, counts(engine)) == {"customers": 2}
        assert counts(other) == counts(engine)
    finally:
        other.dispose()


def test_an_import_raises_what_it_wrote_even_by_copy(engine: Engine, tmp_path: Path) -> None:
    # On PostgreSQL the customers and their first stages go in by COPY, which SQLAlchemy
    # never sees: the importer notes them itself.
    before = counts(engine)
    path = tmp_path / "customers.csv"
    path.write_text("external_id,name,stage\nA1,Acme,purchase\nA2,Beta,retention\n")
    import_file(engine, "customers", path, Settings(), now=NOW)
    assert set(raised(before, counts(engine))) == {"customers", "stage_history"}


def test_without_the_table_nothing_is_counted_and_writes_still_commit(tmp_path: Path) -> None:
    # A database before `clmbot db upgrade` reached 0010: writes go on, nothing is kept.
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)"))
            conn.execute(text("INSERT INTO customers (name) VALUES ('x')"))
        with engine.connect() as conn:
            assert versions.current(conn, TABLES) is None
            assert conn.execute(text("SELECT count(*) FROM customers")).scalar() == 1
    finally:
        engine.dispose()


def test_the_statements_that_write_are_told_apart() -> None:
    seen = versions._TARGETS
    written = {
        "INSERT INTO customers (name) VALUES (?)": "customers",
        'INSERT OR IGNORE INTO "stage_history" (x) VALUES (?)': "stage_history",
        "UPDATE feedback SET score = 1": "feedback",
        "DELETE FROM risk_scores WHERE run_id = 1": "risk_scores",
        "TRUNCATE TABLE events": "events",
        "WITH x AS (SELECT 1) INSERT INTO risk_runs (day) SELECT 1": "risk_runs",
    }
    for statement, table in written.items():
        assert versions._WRITES.match(statement)
        assert {m.group(1) for m in seen.finditer(statement)} >= {table}
    assert not versions._WRITES.match("SELECT * FROM customers FOR UPDATE")


def test_a_stage_move_counts_the_stages_not_the_customers(
    engine: Engine, settings: Settings
) -> None:
    # NPS, CSAT and the at-risk list never read a stage: a team moving customers all day
    # must not throw them away. The funnel and segments read both counts.
    with session_scope(engine) as s:
        s.add(a_customer())
    before = counts(engine)
    with session_scope(engine) as s:
        customer = s.exec(select(Customer)).one()
        move_stage(
            s, customer, "retention", by="U1", reason=None, now=NOW, lifecycle=settings.lifecycle
        )
    assert raised(before, counts(engine)) == {"customers.stage": 1, "stage_history": 1}
    before = counts(engine)
    with session_scope(engine) as s:
        customer = s.exec(select(Customer)).one()
        customer.stage, customer.name = "advocacy", "Renamed"
        s.add(customer)
    assert raised(before, counts(engine)) == {"customers": 1}


def test_only_an_update_setting_the_stage_to_bound_values_counts_as_a_stage_move() -> None:
    only = versions._sets_only_the_stage
    assert only("UPDATE customers SET stage=?, updated_at=? WHERE customers.id = ?")
    assert only(
        "UPDATE customers SET stage=%(stage)s, updated_at=%(updated_at)s "
        "WHERE customers.id = %(customers_id)s"
    )
    assert only('UPDATE "customers" SET "stage"=? WHERE id = ?')
    assert only(
        "UPDATE customers SET stage=%(stage)s::VARCHAR, updated_at=%(updated_at)s::TIMESTAMP "
        "WITH TIME ZONE WHERE customers.id = %(customers_id)s::INTEGER"
    )
    assert not only("UPDATE customers SET name=?, stage=? WHERE id = ?")
    assert not only("UPDATE customers SET updated_at=? WHERE id = ?")
    assert not only("UPDATE customers SET stage='churned' WHERE id = ?")
    assert not only("UPDATE customers SET stage=%(s)s::VARCHAR || name WHERE id = ?")
    assert not only("UPDATE customers SET stage=(SELECT 'x'), updated_at=? WHERE id = ?")
    assert not only("UPDATE stage_history SET stage=? WHERE id = ?")


def test_events_rewritten_counts_changes_to_stored_events_not_new_ones(
    engine: Engine, tmp_path: Path
) -> None:
    """The risk pass keeps the events it read and reads only new ones: any commit that
    changes a stored event (an UPDATE, a DELETE, an import correcting an amount or moving
    an event by its id) raises `events.rewritten`; new events, or a file imported again
    unchanged, do not."""
    rewritten = versions.EVENTS_REWRITTEN

    def imported(lines: list[str], header: str = "customer_external_id,kind,occurred_at,value"):
        path = tmp_path / f"events-{len(list(tmp_path.iterdir()))}.csv"
        path.write_text(header + "\n" + "\n".join(lines) + "\n")
        before = counts(engine)
        report = import_file(engine, "events", path, Settings(), now=NOW)
        assert report.ok, report.summary()
        return raised(before, counts(engine))

    path = tmp_path / "customers.csv"
    path.write_text("external_id,name,stage\nA1,Acme,purchase\nA2,Beta,retention\n")
    import_file(engine, "customers", path, Settings(), now=NOW)
    first = ["A1,purchase,2026-11-01T10:00:00Z,10", "A2,login,2026-11-02T10:00:00Z,"]
    assert rewritten not in imported(first)
    assert imported(first) == {}  # the same file again changes nothing
    assert rewritten not in imported([*first, "A1,purchase,2026-11-03T10:00:00Z,5"])
    assert imported(["A1,purchase,2026-11-01T10:00:00Z,12"]).get(rewritten) == 1
    header = "customer_external_id,kind,occurred_at,value,event_id"
    assert rewritten not in imported(["A1,purchase,2026-11-04T10:00:00Z,7,E1"], header)
    assert imported(["A2,purchase,2026-11-04T10:00:00Z,7,E1"], header).get(rewritten) == 1
    for statement in ("UPDATE events SET value = 1", "DELETE FROM events WHERE kind = 'login'"):
        before = counts(engine)
        with engine.begin() as conn:
            conn.execute(text(statement))
        assert raised(before, counts(engine)) == {"events": 1, rewritten: 1}


def test_only_a_plain_insert_into_events_is_no_rewrite() -> None:
    inserts_only = versions._inserts_only
    assert inserts_only("INSERT INTO events (customer_id) VALUES (?)")
    assert inserts_only("  insert into events (a) SELECT a FROM staging ON CONFLICT DO NOTHING")
    for statement in (
        "INSERT INTO events (a) VALUES (?) ON CONFLICT (a) DO UPDATE SET value = excluded.value",
        "INSERT OR REPLACE INTO events (a) VALUES (?)",
        "REPLACE INTO events (a) VALUES (?)",
        "WITH x AS (SELECT 1) INSERT INTO events (a) SELECT * FROM x",
        "UPDATE events SET value = 1",
        "DELETE FROM events",
    ):
        assert not inserts_only(statement), statement
