"""Helpers shared by the tests."""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, MetaData, event, select
from sqlmodel import SQLModel

import clmbot.store.models  # noqa: F401  (the tables)


def snapshot(engine: Engine) -> dict[str, list[tuple]]:
    """Every row of every table, sorted: two equal snapshots mean two identical databases."""
    meta = MetaData()
    meta.reflect(engine)
    out = {}
    with engine.connect() as conn:
        for table in meta.sorted_tables:
            rows = conn.execute(select(table)).all()
            out[table.name] = sorted(tuple(map(repr, r)) for r in rows)
    return out


def write_csv(path: Path, text: str) -> Path:
    """A CSV file from a dedented literal, written as UTF-8 bytes exactly."""
    lines = [ln.strip() for ln in text.strip().splitlines()]
    path.write_bytes(("\n".join(lines) + "\n").encode("utf-8"))
    return path


def read_rejected(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8", errors="surrogateescape") as fh:
        return list(csv.DictReader(fh))


def rows(engine: Engine, table: str, *columns: str) -> list[tuple]:
    """Columns of a table through the models' types (aware datetimes, parsed JSON), sorted."""
    t = SQLModel.metadata.tables[table]
    with engine.connect() as conn:
        query = select(*(t.c[c] for c in columns)).order_by(*(t.c[c] for c in columns))
        return [tuple(r) for r in conn.execute(query)]


def until(what: str, check: Callable[[], object], timeout: float = 30) -> object:
    """Poll `check` until it is truthy; its value (for other processes' doings)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(0.05)


@contextmanager
def statements(engine: Engine, prefix: str) -> Iterator[list[str]]:
    """The statements `engine` runs inside the block that start with `prefix`."""
    seen: list[str] = []

    def listen(conn, cursor, statement, parameters, context, executemany) -> None:
        if statement.startswith(prefix):
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", listen)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", listen)
