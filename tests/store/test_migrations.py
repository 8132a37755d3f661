import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import SQLModel

from clmbot.store import migrate
from clmbot.store.db import make_engine


@pytest.fixture
def migrated(db_url):
    """A database built by the real migrations, whatever the shared `engine` fixture does."""
    engine = make_engine(db_url)
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


def test_upgrade_builds_the_schema_from_nothing(db_url):
    engine = make_engine(db_url)
    assert migrate.current_revision(engine) is None
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.head_revision()
    tables = set(inspect(engine).get_table_names())
    assert {"customers", "stage_history", "events", "feedback", "alembic_version"} <= tables
    engine.dispose()


def test_the_models_and_the_migrations_agree(migrated):
    """Autogenerate against the migrated database finds nothing to do."""
    with migrated.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, SQLModel.metadata) == []


def test_upgrade_twice_is_harmless_and_downgrade_empties(migrated):
    engine = migrated
    migrate.upgrade(engine)
    cfg = migrate.alembic_config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}


def test_the_indexes_the_queries_need_exist(migrated):
    insp = inspect(migrated)
    customer_ix = {tuple(ix["column_names"]) for ix in insp.get_indexes("customers")}
    wanted = {("stage",), ("email",), ("slack_user_id",), ("owner_slack_id",), ("name",)}
    assert wanted <= customer_ix
    uniques = {
        t: {tuple(u["column_names"]) for u in insp.get_unique_constraints(t)}
        for t in ("customers", "events", "feedback")
    }
    assert ("external_id",) in uniques["customers"]
    assert ("customer_id", "occurred_at", "kind", "seq") in uniques["events"]
    assert ("customer_id", "kind", "responded_at") in uniques["feedback"]
    # a CRM's history imports once; the key leads with what "a customer's history" asks
    history = {tuple(u["column_names"]) for u in insp.get_unique_constraints("stage_history")}
    assert ("customer_id", "at", "to_stage") in history
    event_ix = {ix["name"]: ix for ix in insp.get_indexes("events")}
    assert event_ix["uq_events_kind_event_id"]["unique"]
    assert event_ix["uq_events_kind_event_id"]["column_names"] == ["kind", "event_id"]


def test_require_current_names_the_fix(db_url):
    engine = make_engine(db_url)
    try:
        migrate.require_current(engine)
    except migrate.SchemaNotReady as exc:
        assert "run: clmbot db upgrade" in str(exc)
    else:
        raise AssertionError("an empty database passed the schema check")
    engine.dispose()


def test_going_back_from_0011_keeps_every_pass_and_its_scores(migrated):
    """0011's column goes in place: a copy of `risk_runs` (SQLite's batch way) would drop
    the table, and its foreign keys' ON DELETE CASCADE would empty `risk_scores` with it."""
    from datetime import UTC, date, datetime

    from sqlalchemy import select
    from sqlmodel import Session

    from clmbot.store.models import Customer, RiskRun, RiskScore

    at = datetime(2026, 11, 1, tzinfo=UTC)
    with Session(migrated) as session:
        customer = Customer(
            external_id="C1", name="A", stage="purchase", created_at=at, updated_at=at
        )
        run = RiskRun(day=date(2026, 11, 1), as_of=at, by="t", started_at=at, finished_at=at)
        session.add_all([customer, run])
        session.flush()
        session.add(RiskScore(run_id=run.id, customer_id=customer.id, risk=80, reasons=[]))
        session.commit()
    cfg = migrate.alembic_config(migrated)
    with migrated.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0010")
    assert "scores_pruned_at" not in {c["name"] for c in inspect(migrated).get_columns("risk_runs")}
    with migrated.connect() as conn:
        assert conn.execute(select(RiskScore.__table__.c.risk)).scalars().all() == [80]
    migrate.upgrade(migrated)
    assert migrate.current_revision(migrated) == migrate.head_revision()


def _hold(engine, table: str, seconds: float):
    """A thread reading `table` in a transaction for `seconds`; returns it once it reads."""
    import threading
    import time

    from sqlalchemy import text

    reading = threading.Event()

    def hold() -> None:
        with engine.begin() as conn:
            conn.execute(text(f"SELECT count(*) FROM {table}")).scalar()
            reading.set()
            time.sleep(seconds)

    holder = threading.Thread(target=hold)
    holder.start()
    assert reading.wait(10)
    return holder


def test_an_upgrade_on_postgresql_never_holds_commands_back_long(db_url):
    """0015 locks `customers` and 0016 `risk_runs` (dropping a foreign key); with a reader
    holding `risk_runs`, the upgrade, one transaction, would keep `customers` locked while
    it waited, and every command with it. It asks for each lock 5 s at a time, gives back
    all it holds when one is not given, and starts again."""
    import threading
    import time

    from sqlalchemy import text

    if not db_url.startswith("postgresql"):
        pytest.skip("PostgreSQL's locks")
    engine = make_engine(db_url)
    migrate.upgrade(engine, "0014")
    holder = _hold(engine, "risk_runs", 9)
    started = time.monotonic()
    migrating = threading.Thread(target=migrate.upgrade, args=(engine,))
    migrating.start()
    time.sleep(1)
    with engine.connect() as conn:
        before = time.monotonic()
        conn.execute(text("SELECT count(*) FROM customers")).scalar()
        assert time.monotonic() - before < 6.5
    migrating.join(60)
    holder.join()
    assert not migrating.is_alive()
    assert time.monotonic() - started >= 5
    assert migrate.current_revision(engine) == migrate.head_revision()
    assert "ix_risk_scores_customer_run" not in {
        ix["name"] for ix in inspect(engine).get_indexes("risk_scores")
    }
    assert inspect(engine).get_foreign_keys("risk_scores") == []
    engine.dispose()


def test_an_upgrade_that_cannot_lock_stops_saying_what_to_do(db_url, monkeypatch):
    if not db_url.startswith("postgresql"):
        pytest.skip("PostgreSQL's locks")
    monkeypatch.setattr(migrate, "LOCK_TRIES", 2)
    engine = make_engine(db_url)
    migrate.upgrade(engine, "0015")
    holder = _hold(engine, "customers", 14)
    with pytest.raises(migrate.SchemaNotReady, match="run clmbot db upgrade again"):
        migrate.upgrade(engine)
    holder.join()
    assert migrate.current_revision(engine) == "0015"
    engine.dispose()
