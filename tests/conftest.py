"""Real databases for the tests: a SQLite file per test, and a PostgreSQL schema per test.

Which backends run: CLMBOT_TEST_BACKENDS (default "sqlite,postgresql"). The PostgreSQL
server: CLMBOT_TEST_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/test). When
it cannot be reached, its tests skip with the reason, unless CLMBOT_TEST_REQUIRE_POSTGRES=1
(as in CI), where they fail instead.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

import clmbot.store.models  # noqa: F401  (the tables)
from clmbot.config import Settings
from clmbot.store.db import make_engine, normalise_url
from clmbot.store.migrate import head_revision, upgrade

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
BACKENDS = [
    b.strip()
    for b in os.environ.get("CLMBOT_TEST_BACKENDS", "sqlite,postgresql").split(",")
    if b.strip()
]
PG_URL = os.environ.get("CLMBOT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REQUIRE_PG = os.environ.get("CLMBOT_TEST_REQUIRE_POSTGRES") == "1"
# What clmbot keeps for itself in the state directory (the risk pass's events of a
# PostgreSQL database, crash reports) goes to a folder of this run, not the home directory.
_STATE = Path(tempfile.mkdtemp(prefix="clmbot-test-state-"))
atexit.register(shutil.rmtree, _STATE, True)
os.environ["XDG_STATE_HOME"] = str(_STATE)


@cache
def postgres_problem() -> str | None:
    """Why PostgreSQL cannot be used, or None when it can."""
    try:
        engine = create_engine(normalise_url(PG_URL), connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # any failure to connect means: not available here
        return f"PostgreSQL at {PG_URL} is not reachable ({str(exc).splitlines()[0]})"
    return None


@pytest.fixture
def now() -> datetime:
    return NOW


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database: a new SQLite file, or a new PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'clmbot.db'}"
        return
    problem = postgres_problem()
    if problem:
        if REQUIRE_PG:
            pytest.fail(problem + " and CLMBOT_TEST_REQUIRE_POSTGRES=1")
        pytest.skip(problem)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(normalise_url(PG_URL))
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(normalise_url(PG_URL)).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on a database at the latest schema.

    SQLite: a copy of a file the real migrations built once for the session. PostgreSQL: the
    models' tables, stamped at the head revision (`tests/store/test_migrations.py` checks that
    the migrations build exactly these tables, and runs them for real). Running every
    migration for each of hundreds of tests was most of the suite's time.
    """
    if db_url.startswith("sqlite"):
        path = Path(make_url(db_url).database or "")
        shutil.copyfile(_migrated_sqlite_template(), path)
        path.chmod(0o600)
        eng = make_engine(db_url)
    else:
        eng = make_engine(db_url)
        SQLModel.metadata.create_all(eng)
        with eng.begin() as conn:
            # (a test may have run `clmbot db upgrade` on it already)
            conn.execute(
                text(
                    "CREATE TABLE IF NOT EXISTS alembic_version "
                    "(version_num VARCHAR(32) PRIMARY KEY)"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO alembic_version SELECT :v "
                    "WHERE NOT EXISTS (SELECT 1 FROM alembic_version)"
                ),
                {"v": head_revision()},
            )
    yield eng
    eng.dispose()


@cache
def _migrated_sqlite_template() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="clmbot-test-template-"))
    atexit.register(shutil.rmtree, folder, True)  # one folder per run, not one left per run
    eng = make_engine(f"sqlite:///{folder / 'template.db'}")
    upgrade(eng)
    eng.dispose()
    return folder / "template.db"


@pytest.fixture
def settings(db_url: str) -> Settings:
    return Settings(database_url=db_url)
