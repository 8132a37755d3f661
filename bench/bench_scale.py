"""Imports at scale (issue 11, point 1): a million customers and millions of events.

Generates `customers.csv` and `events.csv` files of the shape real exports have, imports them
through the real `clmbot import` path (`clmbot.importing.runner.import_file`, each import in a
fresh child process so that its peak memory is its own), and compares each import with the
floor of what the database can do with the same rows, already parsed:

- SQLite: a bare `executemany` into the very same tables (a second database file at the same
  schema and settings): customers plus their first stage-history rows; events.
- PostgreSQL: a bare `COPY` into the same tables (a second schema at the same schema), foreign
  keys and unique keys included.

Per database and size it prints seconds, rows/s, the ratio against the floor, the peak
resident memory of the importer and its row-checking process together, a 30M extrapolation
(least squares over the event sizes), and "small into large": 10,000 events into the big
table against into an empty one. Ratios are taken against a floor measured in the same run,
so a machine busy with other work moves both.

    python bench/bench_scale.py [--customers 1000000] [--events 1000000,3000000,10000000]
                                [--postgres postgresql://postgres@127.0.0.1:5432/test]
                                [--no-sqlite] [--quick] [--dir DIR]

With --postgres, a database `clmbot_scale_bench` is created on that server and dropped at
the end. `--quick` is a small run for CI (20,000 customers, 50,000 and 100,000 events).
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

NOW = datetime(2026, 11, 24, tzinfo=UTC)
START = datetime(2023, 1, 1, tzinfo=UTC)
KINDS = ["login"] * 14 + ["purchase"] * 3 + ["ticket"] * 2 + ["page_view"]
STAGES = ["purchase", "retention", "advocacy"]
PLANS = ["free", "pro", "team"]
REGIONS = ["EU", "US", "APAC"]
SMALL_EVENTS = 10_000
BATCH = 50_000  # parsed rows per floor call: the floor's own list never holds the whole file
PG_DB = "clmbot_scale_bench"
CUSTOMER_COLUMNS = ["external_id", "name", "email", "stage", "plan", "region", "mrr"]
CUSTOMER_COLUMNS += ["signup_date"]


# --- files -------------------------------------------------------------------------------


def ext_id(c: int) -> str:
    return f"C{c:07d}"


def generate(folder: Path, customers: int, sizes: list[int]) -> tuple[Path, list[Path], Path]:
    """customers.csv, one events file per size (each the first N rows of the largest: one
    pass writes them all), and a small events file of other moments (after the big ones)."""
    rng = random.Random(42)
    cust_path = folder / "customers.csv"
    with cust_path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(CUSTOMER_COLUMNS)
        for c in range(customers):
            day = START.date() + timedelta(days=rng.randint(0, 600))
            w.writerow(
                [
                    ext_id(c),
                    f"Customer {c}",
                    f"c{c}@example.com",
                    rng.choice(STAGES),
                    rng.choice(PLANS),
                    rng.choice(REGIONS),
                    rng.randint(0, 900),
                    day.isoformat(),
                ]
            )
    sizes = sorted(sizes)
    paths = [folder / f"events-{n}.csv" for n in sizes]
    handles = [p.open("w", newline="") for p in paths]
    writers = [csv.writer(h) for h in handles]
    header = ["customer_external_id", "kind", "occurred_at", "value"]
    for w in writers:
        w.writerow(header)
    # Each customer's own clock, moving forward: events come in time order per customer, and
    # customers interleave, as in an export sorted by event id.
    clock = [int(START.timestamp()) + rng.randint(0, 86400 * 30) for _ in range(customers)]
    open_from = 0
    for i in range(sizes[-1]):
        while i >= sizes[open_from]:
            handles[open_from].close()
            open_from += 1
        c = rng.randrange(customers)
        clock[c] += rng.randint(600, 86400 * 3)
        kind = rng.choice(KINDS)
        value = f"{rng.uniform(5, 500):.2f}" if kind == "purchase" else ""
        # Some exports log twice at one second: duplicates that `seq` numbers.
        at = datetime.fromtimestamp(min(clock[c], int(NOW.timestamp()) - 86400), UTC)
        row = [ext_id(c), kind, at.strftime("%Y-%m-%dT%H:%M:%SZ"), value]
        for w in writers[open_from:]:
            w.writerow(row)
        if rng.random() < 0.002:
            for w in writers[open_from:]:
                w.writerow(row)
    for h in handles[open_from:]:
        h.close()
    small = folder / "events-small.csv"
    with small.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for i in range(SMALL_EVENTS):
            at = NOW - timedelta(hours=12) + timedelta(seconds=i % 3600)
            w.writerow([ext_id(i % customers), "login", at.strftime("%Y-%m-%dT%H:%M:%SZ"), ""])
    return cust_path, paths, small


def rows_in(path: Path) -> int:
    with path.open("rb") as fh:
        return sum(1 for _ in fh) - 1


# --- the import, in a child process ------------------------------------------------------


def child(url: str, kind: str, path: str) -> None:
    """Run inside the child: one import; print its figures as JSON on the last line."""
    from clmbot.config import Settings
    from clmbot.importing.checking import peak_rss_mb
    from clmbot.importing.runner import import_file
    from clmbot.store.db import make_engine

    settings = Settings(database_url=url)
    engine = make_engine(url)
    report = import_file(engine, kind, Path(path), settings, now=NOW)
    engine.dispose()
    own = peak_rss_mb()  # not ru_maxrss: on Linux it would include this benchmark's size
    checker = report.checking.checker_peak_rss_mb or 0.0
    figures = {
        "seconds": report.seconds,
        "rows": report.rows,
        "inserted": report.inserted,
        "rejected": report.rejected,
        "rss_mb": own + checker,
        "own_mb": own,
        "checker_mb": checker,
        "summary": report.summary(),
    }
    print(json.dumps(figures))


def imported(url: str, kind: str, path: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", url, kind, str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"import of {path.name} failed:\n{done.stderr[-3000:]}")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if figures["rejected"]:
        raise RuntimeError(f"{path.name}: rows rejected: {figures['summary']}")
    return figures


# --- the floors ----------------------------------------------------------------------------


@dataclass
class Db:
    """One database: where the import goes, or where the floor is measured."""

    label: str  # "SQLite" or "PostgreSQL"
    url: str
    engine: Engine

    @property
    def sqlite(self) -> bool:
        return self.label == "SQLite"


def parsed_customers(path: Path) -> Iterator[list[tuple[Any, ...]]]:
    """The customers file as the importer would bind it, a batch at a time."""
    batch: list[tuple[Any, ...]] = []
    with path.open(newline="") as fh:
        reader = csv.reader(fh)
        next(reader)
        for i, (ext, name, email, stage, plan, region, mrr, signup) in enumerate(reader):
            batch.append(
                (
                    i + 1,
                    ext,
                    name,
                    email,
                    stage,
                    plan,
                    region,
                    float(mrr),
                    date.fromisoformat(signup),
                )
            )
            if len(batch) == BATCH:
                yield batch
                batch = []
    if batch:
        yield batch


def parsed_events(path: Path, ids: dict[str, int]) -> Iterator[list[tuple[Any, ...]]]:
    batch: list[tuple[Any, ...]] = []
    seen: dict[tuple[str, str, str], int] = {}
    with path.open(newline="") as fh:
        reader = csv.reader(fh)
        next(reader)
        for ext, kind, at, value in reader:
            key = (ext, at, kind)
            seq = seen.get(key, 0)
            seen[key] = seq + 1
            batch.append(
                (ids[ext], kind, datetime.fromisoformat(at), float(value) if value else None, seq)
            )
            if len(batch) == BATCH:
                yield batch
                batch = []
    if batch:
        yield batch


def _sqlite_connection(db: Db) -> sqlite3.Connection:
    database = make_url(db.url).database
    assert database is not None
    con = sqlite3.connect(database)
    for pragma in ("foreign_keys=ON", "journal_mode=WAL", "synchronous=NORMAL"):
        con.execute(f"PRAGMA {pragma}")
    return con


_CUSTOMER_INSERT = (
    "INSERT INTO customers (id, external_id, name, email, stage, plan, region, mrr, "
    "signup_date, tags, attributes, locale, created_at, updated_at) "
)
_HISTORY_COLUMNS = "customer_id, from_stage, to_stage, at, by, reason, basis"
_EVENT_COLUMNS = "customer_id, kind, occurred_at, value, seq"


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


# A first history row's by, reason and basis, as the import writes them.
_FIRST = ("import", "x", "signup")
MIDNIGHT = datetime.min.time()

# A batch of statements, each with its rows, made before the clock starts.
Batch = list[tuple[str, list[tuple[Any, ...]]]]


def _timed(db: Db, batches: Iterable[Batch], after: str | None = None) -> float:
    """Seconds the database spends on each batch (SQLite's executemany, PostgreSQL's COPY)
    and on the commit; `after`, a statement run before the commit, is not counted."""
    spent = 0.0
    if db.sqlite:
        con = _sqlite_connection(db)
        try:
            for batch in batches:
                started = time.perf_counter()
                for sql, rows in batch:
                    con.executemany(sql, rows)
                spent += time.perf_counter() - started
            started = time.perf_counter()
            con.commit()
            return spent + time.perf_counter() - started
        finally:
            con.close()
    raw = db.engine.raw_connection()
    try:
        with raw.driver_connection.cursor() as cur:
            for batch in batches:
                started = time.perf_counter()
                for sql, rows in batch:
                    with cur.copy(sql) as copy:
                        for row in rows:
                            copy.write_row(row)
                spent += time.perf_counter() - started
            if after:
                cur.execute(after)
        started = time.perf_counter()
        raw.commit()
        return spent + time.perf_counter() - started
    finally:
        raw.close()


def floor_customers(db: Db, path: Path) -> float:
    """Seconds the database alone takes for the customers and their first history rows."""
    now = _stamp(NOW)
    if db.sqlite:
        sql_c = _CUSTOMER_INSERT + "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, '[]', '{}', '', ?, ?)"
        sql_h = f"INSERT INTO stage_history ({_HISTORY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
        return _timed(
            db,
            (
                [
                    (sql_c, [(*r[:8], r[8].isoformat(), now, now) for r in batch]),
                    (
                        sql_h,
                        [
                            (r[0], None, r[4], f"{r[8].isoformat()} 00:00:00.000000", *_FIRST)
                            for r in batch
                        ],
                    ),
                ]
                for batch in parsed_customers(path)
            ),
        )
    cols_c = "id, external_id, name, email, stage, plan, region, mrr, signup_date, tags, "
    cols_c += "attributes, locale, created_at, updated_at"
    return _timed(
        db,
        (
            [
                (
                    f"COPY customers ({cols_c}) FROM STDIN",
                    [(*r, "[]", "{}", "", NOW, NOW) for r in batch],
                ),
                (
                    f"COPY stage_history ({_HISTORY_COLUMNS}) FROM STDIN",
                    [
                        (r[0], None, r[4], datetime.combine(r[8], MIDNIGHT, UTC), *_FIRST)
                        for r in batch
                    ],
                ),
            ]
            for batch in parsed_customers(path)
        ),
        after="SELECT setval(pg_get_serial_sequence('customers', 'id'), max(id)) FROM customers",
    )


def floor_events(db: Db, path: Path) -> float:
    with db.engine.connect() as conn:
        ids = dict(conn.execute(text("SELECT external_id, id FROM customers")).all())
    if db.sqlite:
        sql = f"INSERT INTO events ({_EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?)"
        return _timed(
            db,
            (
                [(sql, [(c, k, _stamp(at), v, s) for c, k, at, v, s in batch])]
                for batch in parsed_events(path, ids)
            ),
        )
    copy = f"COPY events ({_EVENT_COLUMNS}) FROM STDIN"
    return _timed(db, ([(copy, batch)] for batch in parsed_events(path, ids)))


def empty_events(db: Db) -> None:
    with db.engine.begin() as conn:
        conn.execute(text("DELETE FROM events" if db.sqlite else "TRUNCATE events"))


# --- the run -------------------------------------------------------------------------------


def fit(sizes: list[int], values: list[float], at: int) -> float:
    """Least-squares line through (size, value), read at `at`."""
    if len(sizes) < 2:
        return values[0] * at / sizes[0]
    n = len(sizes)
    mx, my = sum(sizes) / n, sum(values) / n
    sxx = sum((x - mx) ** 2 for x in sizes)
    slope = sum((x - mx) * (y - my) for x, y in zip(sizes, values, strict=True)) / sxx
    return my + slope * (at - mx)


def line(what: str, rows: int, got: dict[str, Any], floor: float) -> str:
    seconds = got["seconds"]
    return (
        f"  {what:<22} {rows:>11,} rows {seconds:8.1f} s {rows / seconds:>9,.0f} rows/s   "
        f"floor {floor:7.1f} s   ratio {seconds / floor:4.2f}   peak RSS {got['rss_mb']:6.0f} MB "
        f"({got['own_mb']:.0f} + checker {got['checker_mb']:.0f})"
    )


def bench(imp: Db, base: Db, cust_path: Path, paths: list[Path], small: Path) -> None:
    print(f"{imp.label}:")
    customers = rows_in(cust_path)
    got = imported(imp.url, "customers", cust_path)
    print(line("customers", customers, got, floor_customers(base, cust_path)), flush=True)
    empty = imported(imp.url, "events", small)
    empty_events(imp)
    sizes, seconds, rss = [], [], []
    for path in paths:
        empty_events(imp)
        empty_events(base)
        n = rows_in(path)
        got = imported(imp.url, "events", path)
        floor = floor_events(base, path)
        print(line("events", n, got, floor), flush=True)
        sizes.append(n)
        seconds.append(got["seconds"])
        rss.append(got["rss_mb"])
    large = imported(imp.url, "events", small)
    target = 30_000_000
    print(
        f"  events at {target:,} (extrapolated): {fit(sizes, seconds, target):.0f} s, "
        + (
            f"peak RSS {fit(sizes[-2:], rss[-2:], target):.0f} MB (from the two largest "
            "sizes: memory stops growing once the checker moves its keys to disk)"
            if len(sizes) > 1
            else "peak RSS: needs two sizes"
        )
    )
    if len(rss) > 1:
        growth = rss[-1] - rss[0]
        print(
            f"  peak RSS growth, {sizes[0]:,} -> {sizes[-1]:,} events: {growth:+.0f} MB (<= +100)"
        )
    into, alone = large["seconds"], empty["seconds"]
    print(
        f"  small into large: {SMALL_EVENTS:,} events into {sizes[-1]:,}: {into:.2f} s; "
        f"into an empty table: {alone:.2f} s (ratio {into / alone:.1f})",
        flush=True,
    )


def sqlite_run(folder: Path, files: tuple[Path, list[Path], Path]) -> None:
    from clmbot.store.db import make_engine
    from clmbot.store.migrate import upgrade

    dbs = []
    for name in ("import", "floor"):
        path = folder / f"{name}.db"
        for stale in folder.glob(f"{name}.db*"):
            stale.unlink()
        url = f"sqlite:///{path}"
        engine = make_engine(url)
        upgrade(engine)
        dbs.append(Db("SQLite", url, engine))
    try:
        bench(dbs[0], dbs[1], *files)
    finally:
        for db in dbs:
            db.engine.dispose()
        for stale in folder.glob("*.db*"):
            stale.unlink()


def postgres_run(server: str, files: tuple[Path, list[Path], Path]) -> None:
    from clmbot.store.db import make_engine, normalise_url
    from clmbot.store.migrate import upgrade

    admin = make_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {PG_DB}"))
        conn.execute(text(f"CREATE DATABASE {PG_DB}"))
    url = make_url(normalise_url(server)).set(database=PG_DB)
    dbs = []
    try:
        for schema in ("import_side", "floor_side"):
            with make_engine(url.render_as_string(hide_password=False)).begin() as conn:
                conn.execute(text(f"CREATE SCHEMA {schema}"))
            full = url.update_query_dict({"options": f"-csearch_path={schema}"})
            as_text = full.render_as_string(hide_password=False)
            engine = make_engine(as_text)
            upgrade(engine)
            dbs.append(Db("PostgreSQL", as_text, engine))
        bench(dbs[0], dbs[1], *files)
    finally:
        for db in dbs:
            db.engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)"))
        admin.dispose()


def load() -> str:
    one, five, _ = (f"{x:.1f}" for x in __import__("os").getloadavg())
    return f"load average {one} (1 min), {five} (5 min) on {__import__('os').cpu_count()} cores"


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(*sys.argv[2:5])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument(
        "--events", default="1000000,3000000,10000000", help="comma-separated sizes"
    )
    parser.add_argument("--quick", action="store_true", help="a small run, for CI")
    parser.add_argument("--postgres", metavar="URL", help="also on this PostgreSQL server")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--dir", type=Path, help="where the files go (default: a temp dir)")
    args = parser.parse_args()
    sizes = [int(n) for n in args.events.split(",")]
    customers = args.customers
    if args.quick:
        customers, sizes = 20_000, [50_000, 100_000]
    own_folder = args.dir is None
    folder = args.dir or Path(tempfile.mkdtemp(prefix="clmbot-scale-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        started = time.perf_counter()
        files = generate(folder, customers, sizes)
        shown = ", ".join(f"{n:,}" for n in sizes)
        print(
            f"generated {customers:,} customers and events files of {shown} rows in "
            f"{time.perf_counter() - started:.0f} s; {load()}",
            flush=True,
        )
        if not args.no_sqlite:
            sqlite_run(folder, files)
        if args.postgres:
            postgres_run(args.postgres, files)
        print(f"done; {load()}")
    finally:
        if own_folder:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
