"""How fast the feedback reports are, against a bare count of the same answers.

Fills a database with C customers (default 100,000) and A answers (default 200,000, two
thirds NPS, spread over the two years before "now"), then times, round after round, the
services behind `/clm nps`, `nps by plan`, `csat` and `feedback` over the default period
(12 months), and as the baseline a bare
`SELECT count(*) FROM feedback WHERE kind = 'nps' AND responded_at BETWEEN …` in the same
process. Prints the fastest run, p50 and p95 of each, and p95 as a ratio of the baseline's
p50 (on a busy machine the fastest run is the best guess of the cost itself).

    python bench/bench_feedback.py [--customers 100000] [--answers 200000] [--rounds 30]
                                   [--postgres postgresql://postgres@127.0.0.1:5432/test]
                                   [--no-sqlite] [--dir DIR]

With --postgres, the same is done in a fresh schema of that database (dropped at the end),
after VACUUM ANALYZE, as autovacuum would have done by the time anyone asks.
"""

from __future__ import annotations

import argparse
import atexit
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, insert, text
from sqlmodel import Session

from clmbot.feedback.comments import comments
from clmbot.feedback.reports import report, report_by
from clmbot.periods import parse_since
from clmbot.store.db import make_engine
from clmbot.store.migrate import upgrade
from clmbot.store.models import Customer, Feedback

NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)
ZONE = ZoneInfo("Asia/Jakarta")
SINCE = parse_since("12mo", NOW, ZONE)
TARGET_MS = 100


def fill(engine: Engine, customers: int, answers: int, seed: int = 42) -> None:
    rng = random.Random(seed)
    plans = ["free", "starter", "pro", "team", "enterprise", None]
    regions = ["apac", "emea", "na", "latam", None]
    owners = [*(f"U{i:05d}" for i in range(40)), None]
    stages = ["awareness", "consideration", "purchase", "retention", "advocacy", "churned"]
    customer_rows = [
        {
            "external_id": f"C{c:07d}",
            "name": f"Customer {c}",
            "stage": rng.choice(stages),
            "owner_slack_id": rng.choice(owners),
            "plan": rng.choice(plans),
            "region": rng.choice(regions),
            "mrr": rng.randint(0, 900),
            "tags": [],
            "attributes": {},
            "locale": "en",
            "created_at": NOW,
            "updated_at": NOW,
            "forgotten_at": NOW if rng.random() < 0.01 else None,
        }
        for c in range(customers)
    ]
    seen: set[tuple[int, str, datetime]] = set()
    answer_rows: list[dict[str, Any]] = []
    span = int(timedelta(days=730).total_seconds())
    while len(answer_rows) < answers:
        cid = rng.randint(1, customers)
        kind = "nps" if rng.random() < 2 / 3 else "csat"
        at = NOW - timedelta(seconds=rng.randint(0, span))
        if (cid, kind, at) in seen:
            continue
        seen.add((cid, kind, at))
        score = rng.randint(0, 10) if kind == "nps" else rng.choice([1, 2, 3, 4, 4, 5, 5, 5])
        comment = "because " * rng.randint(1, 6) if rng.random() < 0.3 else None
        answer_rows.append(
            {
                "customer_id": cid,
                "kind": kind,
                "score": score,
                "comment": comment,
                "responded_at": at,
                "source": "import",
            }
        )
    with engine.begin() as conn:
        for i in range(0, len(customer_rows), 5000):
            conn.execute(insert(Customer), customer_rows[i : i + 5000])
        for i in range(0, len(answer_rows), 5000):
            conn.execute(insert(Feedback), answer_rows[i : i + 5000])


def measure(engine: Engine, rounds: int) -> None:
    sqlite = engine.dialect.name == "sqlite"
    stamp: Callable[[datetime], Any] = (
        (lambda t: t.replace(tzinfo=None).isoformat(" ", "microseconds"))
        if sqlite
        else (lambda t: t)
    )
    bare = text(
        "SELECT count(*) FROM feedback WHERE kind = 'nps' AND responded_at BETWEEN :a AND :b"
    )
    ops: dict[str, Callable[[Session], Any]] = {
        "baseline count": lambda s: s.execute(bare, {"a": stamp(SINCE), "b": stamp(NOW)}).scalar(),
        "nps": lambda s: report(s, "nps", since=SINCE, now=NOW, zone=ZONE),
        "nps by plan": lambda s: report_by(s, "nps", "plan", since=SINCE, now=NOW),
        "csat": lambda s: report(s, "csat", since=SINCE, now=NOW, zone=ZONE),
        "nps plan:pro": lambda s: report(
            s, "nps", since=SINCE, now=NOW, zone=ZONE, where=Customer.plan == "pro"
        ),
        "feedback": lambda s: comments(s, since=SINCE, now=NOW),
        "feedback detractors": lambda s: comments(
            s, since=SINCE, now=NOW, detractors_first=True, offset=20
        ),
    }
    times: dict[str, list[float]] = {name: [] for name in ops}
    with Session(engine) as session:
        for op in ops.values():  # warm the caches and compile the statements
            op(session)
        for _ in range(rounds):
            for name, op in ops.items():
                started = time.perf_counter()
                op(session)
                times[name].append((time.perf_counter() - started) * 1000)
                session.rollback()
    base = statistics.median(times["baseline count"])
    print(f"  {'':22s} {'min ms':>8s} {'p50 ms':>8s} {'p95 ms':>8s} {'p95/base':>9s}")
    for name, xs in times.items():
        xs.sort()
        p95 = xs[min(len(xs) - 1, round(len(xs) * 0.95) - 1)]
        flag = "" if name == "baseline count" or p95 <= TARGET_MS else f"  over {TARGET_MS} ms"
        print(
            f"  {name:22s} {xs[0]:8.1f} {statistics.median(xs):8.1f} {p95:8.1f} "
            f"{p95 / base:9.1f}{flag}"
        )


def sqlite(args: argparse.Namespace) -> None:
    folder = args.dir or Path(tempfile.mkdtemp(prefix="clmbot-bench-"))
    if args.dir is None:  # ours: gone at exit, as a run that fails or is stopped too
        atexit.register(shutil.rmtree, folder, True)
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("feedback.db*"):
        stale.unlink()

    engine = make_engine(f"sqlite:///{folder / 'feedback.db'}")
    upgrade(engine)
    started = time.perf_counter()
    fill(engine, args.customers, args.answers)
    print(
        f"sqlite: {args.customers:,} customers, {args.answers:,} answers "
        f"(filled in {time.perf_counter() - started:.1f} s), period {SINCE:%Y-%m-%d} to "
        f"{NOW:%Y-%m-%d}"
    )
    measure(engine, args.rounds)
    engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--answers", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--dir", type=Path, help="where the SQLite file goes (default: temp)")
    parser.add_argument("--postgres", metavar="URL", help="also measure on this PostgreSQL")
    parser.add_argument("--no-sqlite", action="store_true", help="only PostgreSQL")
    args = parser.parse_args()
    if not args.no_sqlite:
        sqlite(args)

    if args.postgres:
        schema = "clmbot_bench_feedback"
        admin = make_engine(args.postgres)
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        pg = make_engine(args.postgres, connect_args={"options": f"-csearch_path={schema}"})
        try:
            upgrade(pg)
            fill(pg, args.customers, args.answers)
            with pg.connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
            print(f"postgresql: {args.customers:,} customers, {args.answers:,} answers")
            measure(pg, args.rounds)
        finally:
            pg.dispose()
            with admin.begin() as conn:
                conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
            admin.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
