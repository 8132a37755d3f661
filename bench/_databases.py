"""What the benchmarks share: a new SQLite file and, with --postgres, a new PostgreSQL schema
(dropped at the end), each at the latest schema, handed to the benchmark in turn."""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine, text

from clmbot.risk.kept_events import SUFFIX as KEPT_EVENTS_SUFFIX
from clmbot.slack.server import REPLAY_SUFFIX
from clmbot.store import latest
from clmbot.store.db import make_engine, normalise_url
from clmbot.store.migrate import upgrade

# What clmbot keeps for itself in its state folder (the risk pass's events of a PostgreSQL
# database, one file per URL) goes to a folder of this run, the bots it starts included:
# every run makes schemas of its own, whose files would pile up in the home directory.
_STATE = tempfile.mkdtemp(prefix="clmbot-bench-state-")
atexit.register(shutil.rmtree, _STATE, True)
os.environ["XDG_STATE_HOME"] = _STATE


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--postgres", help="also on PostgreSQL at this URL, in a new schema")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--dir", type=Path, help="where the SQLite file goes")


def each_database(
    args: argparse.Namespace, name: str, bench: Callable[[Engine, str], bool]
) -> bool:
    """`bench(engine, label)` on each database asked for; True when every run met its target."""
    ok = True
    if not args.no_sqlite:
        made = None if args.dir else Path(tempfile.mkdtemp(prefix="clmbot-bench-"))
        folder = args.dir or made
        path = folder / f"{name}-{uuid.uuid4().hex[:8]}.db"
        engine = make_engine(f"sqlite:///{path}")
        try:
            upgrade(engine)
            ok &= bench(engine, "SQLite")
        finally:  # a failed or interrupted run leaves no database (nor its folder) behind
            engine.dispose()
            # HTTP mode's requests taken, and the risk pass's kept events
            for file in (f"{path}", f"{path}{REPLAY_SUFFIX}", f"{path}{KEPT_EVENTS_SUFFIX}"):
                for leftover in (file, f"{file}-wal", f"{file}-shm"):
                    Path(leftover).unlink(missing_ok=True)
            if made is not None:
                shutil.rmtree(made, ignore_errors=True)
    if args.postgres:
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        admin = make_engine(args.postgres)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = normalise_url(args.postgres)
        sep = "&" if "?" in url else "?"
        engine = make_engine(f"{url}{sep}options=-csearch_path%3D{schema}")
        try:
            upgrade(engine)
            ok &= bench(engine, "PostgreSQL")
        finally:
            engine.dispose()
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()
    return ok


def keep_latest(engine: Engine) -> tuple[int, float]:
    """Each customer's latest event and answers kept on their row, as the bot's upkeep keeps
    them within a minute of an import (`clmbot.store.latest`), then the statistics (and on
    PostgreSQL the dead rows of the update cleared) as autovacuum would: how many customers
    changed, and the seconds it took."""
    began = time.perf_counter()
    kept = latest.refresh(engine)
    postgres = engine.dialect.name == "postgresql"
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE customers" if postgres else "ANALYZE customers")
    return kept.changed, time.perf_counter() - began
