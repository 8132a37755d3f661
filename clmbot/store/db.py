"""Engines and sessions for SQLite (the embedded default) and PostgreSQL."""

from __future__ import annotations

import os
import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    InterfaceError,
    OperationalError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlmodel import Session, create_engine

from clmbot.config import ConfigError
from clmbot.store import versions

_PASSWORD = re.compile(r"(://[^:/@\s]*:)\S*@")  # to the last @: a password may hold one
_DRIVERS = {"sqlite": ("pysqlite",), "postgresql": ("psycopg",)}
_EXAMPLES = "e.g. sqlite:///clmbot.db or postgresql://user@host:5432/dbname"


# How long a SQLite connection waits for another's write to finish before giving up.
SQLITE_BUSY_TIMEOUT_MS = 10_000

# PostgreSQL that does not answer must fail a request in seconds, not hang it: libpq waits
# forever for a connection by default, and a connection whose server vanished (a network
# that drops packets rather than refusing them) waits for TCP's own timeout, many minutes.
PG_CONNECT_ARGS: dict[str, int] = {
    "connect_timeout": 5,  # seconds, for the whole connection start
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
    "tcp_user_timeout": 30_000,  # ms: data sent and never acknowledged
}


class DatabaseMissing(ConfigError):
    """A command that only reads was pointed at a SQLite file that does not exist."""


def masked(url: str) -> str:
    """A URL as it may be shown: without its password, even when it does not parse."""
    return _PASSWORD.sub(r"\1***@", url)


def normalise_url(url: str) -> str:
    """`postgresql://…` means psycopg 3 here (the driver we install), not psycopg2. A URL
    that cannot work is refused here, in one line, without its password."""
    if url.count("@") > 1:
        raise ConfigError(
            f"DATABASE_URL={masked(url)} has an @ in its user name or password; write it as %40"
        )
    try:
        parsed = make_url(url)
        port = parsed.port
    except (ArgumentError, ValueError):
        raise ConfigError(
            f"DATABASE_URL={masked(url)} is not a database URL (check the host and port); "
            f"use {_EXAMPLES}"
        ) from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    backend = parsed.get_backend_name()
    if backend not in _DRIVERS:
        raise ConfigError(
            f"DATABASE_URL uses {backend}; clmbot supports sqlite and postgresql ({_EXAMPLES})"
        )
    driver = parsed.get_driver_name()
    if driver not in _DRIVERS[backend]:
        raise ConfigError(
            f"DATABASE_URL asks for the driver {driver}, which clmbot does not use; write "
            f"{backend}://… and clmbot picks {_DRIVERS[backend][0]}"
        )
    if port is not None and not 0 < port < 65536:
        raise ConfigError(f"DATABASE_URL names port {port}; a port is a number from 1 to 65535")
    return parsed.render_as_string(hide_password=False)


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL; None for PostgreSQL or an in-memory database."""
    parsed: URL = make_url(normalise_url(url))
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def make_engine(url: str, *, create: bool = True, **kwargs: Any) -> Engine:
    """An engine on `url`. A SQLite file that does not exist is created private (0600) when
    `create`, and refused otherwise (a command that only reads must not leave an empty
    database behind). Errors never carry the values of a statement (`hide_parameters`):
    they end up in logs and crash reports."""
    url = normalise_url(url)
    path = sqlite_file(url)
    if path is not None and not path.exists():
        if not create:
            raise DatabaseMissing(
                f"there is no database at {path}; create it with: clmbot db upgrade (or set "
                "DATABASE_URL to the one you meant)"
            )
        create_private(path)
    if url.startswith("postgresql"):
        connect_args = kwargs.setdefault("connect_args", {})
        for key, value in PG_CONNECT_ARGS.items():
            connect_args.setdefault(key, value)
        # A pooled connection that died with a server restart is noticed at check-out and
        # replaced, instead of failing the request that drew it: the bot recovers by itself.
        kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("hide_parameters", True)
    engine = create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        event.listen(engine, "connect", _postgresql_settings)
    versions.install(engine)
    return engine


def _postgresql_settings(dbapi_connection: Any, record: Any) -> None:
    """No JIT: clmbot's queries are short, and compiling one took longer than running it
    (1.3 s added to a segment that runs in 0.3 s at 100,000 customers)."""
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SET jit = off")
    dbapi_connection.commit()


def create_private(path: Path) -> bool:
    """An empty file is an empty SQLite database; made here, it is only its owner's (SQLite
    gives its -wal and -shm files the same permissions). False when what is at `path` is not
    a plain file (a link planted there), which SQLite would follow."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        return path.is_file() and not path.is_symlink()
    except OSError:
        return True  # a folder that does not exist: SQLite's own error says it better
    os.close(fd)
    return True


def pg_lock_key(conn: Connection, name: str) -> int:
    """The key of PostgreSQL's advisory lock `name` in `conn`'s schema. Those locks are the
    whole database's: two installations in two schemas of one database (or tests run side
    by side) must not wait for each other's imports, nor skip each other's digests."""
    return int(
        conn.execute(
            text("SELECT hashtextextended(:name || ' in ' || coalesce(current_schema(), ''), 0)"),
            {"name": name},
        ).scalar_one()
    )


def hold_write_lock(
    conn: Connection,
    key: int,
    *,
    wait: float,
    busy: Exception,
    waiting: Callable[[], None] | None = None,
) -> None:
    """Hold, until `conn`'s transaction ends, the right to write that others who ask for
    the same `key` wait for: a PostgreSQL advisory lock, or SQLite's write lock taken at once
    (BEGIN IMMEDIATE). Waits at most `wait` seconds, then raises `busy`; `waiting()` is called
    once, when it has to wait."""
    if conn.dialect.name == "postgresql":
        key = pg_lock_key(conn, f"clmbot write lock {key}")
        if conn.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": key}).scalar():
            return
        if waiting:
            waiting()
        conn.execute(text(f"SET LOCAL lock_timeout = '{int(wait * 1000)}ms'"))
        try:
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
        except OperationalError as exc:
            if "lock timeout" not in str(exc.orig):
                raise
            raise busy from None
        conn.execute(text("SET LOCAL lock_timeout = 0"))
        return
    # Tries are short, so that waiting can be said at once.
    deadline = time.monotonic() + wait
    said = False
    try:
        while True:
            left = deadline - time.monotonic()
            conn.exec_driver_sql(f"PRAGMA busy_timeout = {int(max(min(left, 1.0), 0) * 1000)}")
            try:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
                return
            except OperationalError as exc:
                if "locked" not in str(exc.orig) and "busy" not in str(exc.orig):
                    raise
            if waiting and not said:
                waiting()
                said = True
            if time.monotonic() >= deadline:
                raise busy
    finally:
        conn.exec_driver_sql(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")


def _to_wal(cur: Any) -> None:
    """Switch a new database to WAL. Two processes opening it at once (two copies of the bot
    starting) race for the switch, which needs the file to themselves, and SQLite answers
    the loser "locked" at once rather than waiting: the winner has switched it, or will."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if cur.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
                return
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets the bot read while an import writes; foreign keys are off by default in SQLite.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    if cur.execute("PRAGMA journal_mode").fetchone()[0] not in ("memory", "wal"):
        _to_wal(cur)
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


_SQLITE_DOWN = ("locked", "busy", "unable to open", "disk i/o")


def database_down(exc: BaseException) -> bool:
    """Whether `exc` (or what caused it) means the database did not answer (unreachable,
    restarting, the connection lost, no pooled connection free, SQLite's file locked too
    long): worth "try again in a minute", and a retry, rather than a bug report."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OperationalError) and isinstance(current.orig, sqlite3.Error):
            # SQLite says "no such table" with the same class: only a busy file is down
            return any(w in str(current.orig).lower() for w in _SQLITE_DOWN)
        if isinstance(current, (OperationalError, InterfaceError, PoolTimeout)):
            return True
        if isinstance(current, DBAPIError) and current.connection_invalidated:
            return True
        current = current.__cause__ or current.__context__
    return False


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One unit of work: committed when the block ends, rolled back if it raises."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
