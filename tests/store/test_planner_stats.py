"""An import that changes a table by much leaves PostgreSQL's planner statistics up to date;
a small one costs no ANALYZE."""

import logging

from sqlalchemy import Engine, text

from clmbot.importing.runner import import_file
from clmbot.store import planner_stats
from tests.helpers import write_csv


def _estimated(engine: Engine, table: str) -> float:
    """What the planner believes the table holds (-1: never analyzed)."""
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT reltuples FROM pg_class WHERE oid = CAST(:t AS regclass)"), {"t": table}
        ).scalar_one()


def _customers(path, first: int, count: int):
    lines = ["external_id,name"] + [f"C{i:05d},Name {i}" for i in range(first, first + count)]
    return write_csv(path, "\n".join(lines))


def _events(path, count: int):
    lines = ["customer_external_id,kind,occurred_at"]
    lines += [
        f"C{i % 200:05d},login,2026-10-{1 + i % 28:02d}T10:{i % 60:02d}:00Z" for i in range(count)
    ]
    return write_csv(path, "\n".join(lines))


def test_a_large_import_is_analyzed_and_a_small_one_is_not(engine, settings, now, tmp_path):
    if engine.dialect.name != "postgresql":
        # SQLite's planner reads no statistics of ours.
        assert planner_stats.refresh(engine, {"customers": 1_000_000}) == []
        return
    assert _estimated(engine, "customers") < 0  # never analyzed
    import_file(engine, "customers", _customers(tmp_path / "a.csv", 0, 200), settings, now=now)
    assert _estimated(engine, "customers") == 200
    assert _estimated(engine, "stage_history") == 200  # the first history rows, written too
    # 20 more is under autovacuum's threshold (50 and a tenth of 200): no ANALYZE.
    import_file(engine, "customers", _customers(tmp_path / "b.csv", 200, 20), settings, now=now)
    assert _estimated(engine, "customers") == 200
    import_file(engine, "events", _events(tmp_path / "e.csv", 300), settings, now=now)
    assert _estimated(engine, "events") == 300
    assert _estimated(engine, "customers") == 200  # the events created nobody


def test_a_failed_analyze_is_logged_and_the_import_stands(engine, caplog):
    with caplog.at_level(logging.WARNING, logger=planner_stats.__name__):
        planner_stats.analyze(engine, ["no_such_table"])
    assert "could not ANALYZE no_such_table after the import: " in caplog.text
