"""How fast `clmbot import events` is, against the floor of what SQLite can do.

Generates N events for M customers (default 1,000,000 for 50,000), imports the customers,
then times the events import from the CSV file, and then a bare `sqlite3` `executemany` of
the same rows, already parsed, into a table of the same shape (the events table's own DDL,
unique key included) in the same database with the same settings. Prints both, their ratio,
and the peak resident memory of the import (measured before the baseline builds its list),
the importing process's and the row-checking process's added up.

    python bench/bench_import.py [--events 1000000] [--customers 50000] [--dir DIR]
                                 [--postgres postgresql://postgres@127.0.0.1:5432/test]

With --postgres, the same file is also imported into a fresh schema of that database and
compared with a bare `COPY` of the same rows into a copy of the events table (`LIKE events
INCLUDING ALL`, plus its foreign key): the fastest load PostgreSQL has. `bench_scale.py`
measures the same at a million customers and ten million events.
"""

from __future__ import annotations

import argparse
import atexit
import csv
import random
import resource
import shutil
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.dialects import sqlite
from sqlalchemy.schema import CreateTable

from clmbot.config import Settings
from clmbot.importing.runner import import_file
from clmbot.store.db import make_engine
from clmbot.store.migrate import upgrade
from clmbot.store.models import Event

NOW = datetime(2026, 11, 24, tzinfo=UTC)
START = datetime(2023, 1, 1, tzinfo=UTC)
KINDS = ["login"] * 14 + ["purchase"] * 3 + ["ticket"] * 2 + ["page_view"]


def generate(folder: Path, events: int, customers: int) -> tuple[Path, Path]:
    rng = random.Random(42)
    cust_path, ev_path = folder / "customers.csv", folder / "events.csv"
    with cust_path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["external_id", "name", "email", "stage", "plan", "mrr", "signup_date"])
        for c in range(customers):
            w.writerow(
                [
                    f"C{c:07d}",
                    f"Customer {c}",
                    f"c{c}@example.com",
                    rng.choice(["purchase", "retention", "advocacy"]),
                    rng.choice(["free", "pro", "team"]),
                    rng.randint(0, 900),
                    "2023-01-01",
                ]
            )
    clock = [START + timedelta(seconds=rng.randint(0, 86400 * 30)) for _ in range(customers)]
    with ev_path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["customer_external_id", "kind", "occurred_at", "value"])
        for i in range(events):
            c = i % customers
            clock[c] += timedelta(seconds=rng.randint(3600, 3 * 86400))
            kind = rng.choice(KINDS)
            value = f"{rng.uniform(5, 500):.2f}" if kind == "purchase" else ""
            w.writerow([f"C{c:07d}", kind, clock[c].strftime("%Y-%m-%dT%H:%M:%SZ"), value])
    return cust_path, ev_path


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def baseline(db: Path, ev_path: Path) -> float:
    """Bare executemany of the same rows, pre-parsed, into a copy of the events table."""
    con = sqlite3.connect(db)
    for pragma in ("foreign_keys=ON", "journal_mode=WAL", "synchronous=NORMAL"):
        con.execute(f"PRAGMA {pragma}")
    ids = dict(con.execute("SELECT external_id, id FROM customers"))
    ddl = str(CreateTable(Event.__table__).compile(dialect=sqlite.dialect()))
    ddl = (
        ddl.replace("TABLE events", "TABLE baseline_events")
        .replace("uq_events_customer_time_kind", "uq_baseline")
        .replace("pk_events", "pk_baseline")
        .replace("fk_events_", "fk_baseline_")
    )
    con.execute(ddl)
    rows = []
    with ev_path.open(newline="") as fh:
        reader = csv.reader(fh)
        next(reader)
        for ext, kind, at, value in reader:
            stamp = datetime.fromisoformat(at).strftime("%Y-%m-%d %H:%M:%S.%f")
            rows.append((ids[ext], kind, stamp, float(value) if value else None, 0, None))
    started = time.perf_counter()
    con.executemany(
        "INSERT INTO baseline_events (customer_id, kind, occurred_at, value, seq, attributes) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        rows,
    )
    con.commit()
    seconds = time.perf_counter() - started
    con.close()
    return seconds


def postgres(url: str, cust_path: Path, ev_path: Path) -> None:
    schema = "clmbot_bench"
    admin = make_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    engine = make_engine(url, connect_args={"options": f"-csearch_path={schema}"})
    settings = Settings(database_url=url)
    try:
        upgrade(engine)
        import_file(engine, "customers", cust_path, settings, now=NOW)
        events = import_file(engine, "events", ev_path, settings, now=NOW)
        print(f"postgresql events import: {events.summary()}")
        with engine.begin() as conn:
            ids = dict(conn.execute(text("SELECT external_id, id FROM customers")).all())
            conn.execute(text("CREATE TABLE baseline_events (LIKE events INCLUDING ALL)"))
            # LIKE copies no foreign key: the events table checks its customer, so must this.
            conn.execute(
                text(
                    "ALTER TABLE baseline_events ADD FOREIGN KEY (customer_id) "
                    "REFERENCES customers (id) ON DELETE CASCADE"
                )
            )
        rows = []
        with ev_path.open(newline="") as fh:
            reader = csv.reader(fh)
            next(reader)
            for ext, kind, at, value in reader:
                stamp = datetime.fromisoformat(at)
                rows.append((ids[ext], kind, stamp, float(value) if value else None, 0))
        raw = engine.raw_connection()
        try:
            started = time.perf_counter()
            with raw.driver_connection.cursor() as cur:
                copy_sql = (
                    "COPY baseline_events (customer_id, kind, occurred_at, value, seq) FROM STDIN"
                )
                with cur.copy(copy_sql) as copy:
                    for row in rows:
                        copy.write_row(row)
            raw.commit()
            base = time.perf_counter() - started
        finally:
            raw.close()
        print(f"postgresql baseline COPY: {base:.2f} s")
        print(f"postgresql ratio (import / COPY): {events.seconds / base:.2f}")
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        admin.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--dir", type=Path, help="where to write (default: a temp dir)")
    parser.add_argument("--postgres", metavar="URL", help="also measure on this PostgreSQL")
    args = parser.parse_args()
    folder = args.dir or Path(tempfile.mkdtemp(prefix="clmbot-bench-"))
    if args.dir is None:  # ours: gone at exit, as a run that fails or is stopped too
        atexit.register(shutil.rmtree, folder, True)
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "bench.db"
    for stale in folder.glob("bench.db*"):
        stale.unlink()

    t0 = time.perf_counter()
    cust_path, ev_path = generate(folder, args.events, args.customers)
    print(
        f"generated {args.events:,} events for {args.customers:,} customers "
        f"({ev_path.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t0:.1f} s"
    )

    settings = Settings(database_url=f"sqlite:///{db}")
    engine = make_engine(settings.database_url)
    upgrade(engine)
    customers = import_file(engine, "customers", cust_path, settings, now=NOW)
    print(f"customers import: {customers.summary()}")
    rss_before = peak_rss_mb()
    events = import_file(engine, "events", ev_path, settings, now=NOW)
    rss_after = peak_rss_mb()
    print(f"events import: {events.summary()}")
    if events.rejected or events.inserted != args.events:
        print("FAIL: the generated file should import whole", file=sys.stderr)
        return 1
    again = import_file(engine, "events", ev_path, settings, now=NOW)
    print(f"the same file again: {again.summary()}")
    engine.dispose()

    base = baseline(db, ev_path)
    print(f"baseline executemany: {base:.2f} s")
    print(f"ratio (import / baseline): {events.seconds / base:.2f}   target <= 2.0")
    print(f"ratio (re-import / baseline): {again.seconds / base:.2f}")
    checker = events.checking.checker_peak_rss_mb or 0.0
    where = "in a second process" if events.checking.second_process else "in this process"
    print(
        f"peak memory (RSS): {rss_after + checker:.0f} MB, this process {rss_after:.0f} MB "
        f"({rss_before:.0f} MB before the events import) + the row checker {checker:.0f} MB "
        f"(rows checked {where})   target < 500 MB"
    )
    if args.postgres:
        postgres(args.postgres, cust_path, ev_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
