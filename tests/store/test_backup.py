import os
import sqlite3
import stat
import threading
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select
from sqlmodel import Session

from clmbot.cli import cli
from clmbot.store.backup import BackupProblem, backup_sqlite
from clmbot.store.models import Customer

_AT = datetime(2026, 12, 1, tzinfo=UTC)


def _customers(engine, start: int, count: int) -> None:
    with Session(engine) as session:
        session.add_all(
            Customer(
                external_id=f"C{i}", name=f"Shop {i}", stage="lead", created_at=_AT, updated_at=_AT
            )
            for i in range(start, start + count)
        )
        session.commit()


@pytest.fixture
def sqlite_engine(engine):
    if engine.dialect.name != "sqlite":
        pytest.skip("a SQLite backup")
    return engine


def test_the_copy_holds_every_committed_row_and_is_private(sqlite_engine, tmp_path):
    _customers(sqlite_engine, 0, 1000)
    made = backup_sqlite(sqlite_engine, tmp_path / "copy.db")
    assert stat.S_IMODE(os.stat(made.path).st_mode) == 0o600
    with sqlite3.connect(made.path) as copy:
        assert copy.execute("SELECT count(*) FROM customers").fetchone() == (1000,)
        revision = copy.execute("SELECT version_num FROM alembic_version").fetchone()[0]
    assert made.revision == revision
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".copy")] == []


def test_writers_go_on_during_a_backup_and_the_copy_is_one_snapshot(sqlite_engine, tmp_path):
    _customers(sqlite_engine, 0, 3000)
    stop = threading.Event()
    written: list[int] = []

    def write() -> None:
        n = 100_000
        while not stop.is_set():
            _customers(sqlite_engine, n, 10)
            written.append(n)
            n += 10

    writer = threading.Thread(target=write)
    writer.start()
    try:
        made = backup_sqlite(sqlite_engine, tmp_path / "copy.db")
    finally:
        stop.set()
        writer.join()
    with sqlite3.connect(made.path) as copy:
        count = copy.execute("SELECT count(*) FROM customers").fetchone()[0]
        assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    # whole batches of ten only: no half transaction in the copy
    assert count >= 3000 and (count - 3000) % 10 == 0
    with sqlite_engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Customer)) == 3000 + 10 * len(written)


def test_a_link_planted_at_the_destination_is_replaced_not_followed(sqlite_engine, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (tmp_path / "copy.db").symlink_to(victim)
    backup_sqlite(sqlite_engine, tmp_path / "copy.db")
    assert victim.read_text() == "keep me"
    assert not (tmp_path / "copy.db").is_symlink()


def test_the_database_itself_is_refused(sqlite_engine):
    with pytest.raises(BackupProblem, match="is the database itself"):
        backup_sqlite(sqlite_engine, __import__("pathlib").Path(sqlite_engine.url.database))


def test_postgresql_is_pointed_at_pg_dump(engine, tmp_path):
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's answer")
    with pytest.raises(BackupProblem, match="pg_dump --format=custom") as caught:
        backup_sqlite(engine, tmp_path / "copy.db")
    assert "password" not in str(caught.value).lower()
    assert not list(tmp_path.iterdir())


def test_the_command_says_where_the_copy_is(db_url, engine, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["db", "backup", "b.db"], env={"DATABASE_URL": db_url})
    if engine.dialect.name == "sqlite":
        assert result.exit_code == 0, result.stderr
        assert result.stdout.startswith("b.db: a copy of the database at revision ")
    else:
        assert result.exit_code == 2
        assert result.stderr.startswith("clmbot: clmbot db backup copies SQLite files;")
        assert "Traceback" not in result.stderr


def test_a_folder_that_does_not_exist_is_said_plainly(sqlite_engine, tmp_path):
    with pytest.raises(BackupProblem, match=r"cannot write in .*No such file or directory"):
        backup_sqlite(sqlite_engine, tmp_path / "missing" / "copy.db")
