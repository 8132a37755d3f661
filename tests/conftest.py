"""Real databases for the tests: a SQLite file per test, and a PostgreSQL schema per test.

Which backends run: CLMBOT_TEST_BACKENDS (default "sqlite,postgresql"). The PostgreSQL
server: CLMBOT_TEST_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/test). When
it cannot be reached, its tests skip with the reason, unless CLMBOT_TEST_REQUIRE_POSTGRES=1
(as in CI), where they fail instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from clmbot.config import Settings
from clmbot.store.db import make_engine, normalise_url
from clmbot.store.migrate import upgrade

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
BACKENDS = [
    b.strip()
    for b in os.environ.get("CLMBOT_TEST_BACKENDS", "sqlite,postgresql").split(",")
    if b.strip()
]
PG_URL = os.environ.get("CLMBOT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REQUIRE_PG = os.environ.get("CLMBOT_TEST_REQUIRE_POSTGRES") == "1"


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
    """An engine on a database brought to the latest schema by the real migrations."""
    eng = make_engine(db_url)
    upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def settings(db_url: str) -> Settings:
    return Settings(database_url=db_url)
