"""How fast a segment summary is on a large customer base (not a test: run it by hand).

    python bench/bench_segments.py [--backend sqlite|postgresql] [--customers 100000]
                                  [--events 3000000] [--feedback 200000] [--runs 30]

Builds the data once (a SQLite file in the temporary directory, or the schema `seg_perf` in
CLMBOT_TEST_POSTGRES_URL's database), then times `summarise` for expressions touching each
kind of field, worked out afresh each time (nothing kept in memory), and prints the median
and the 95th percentile of each: first with each customer's latest event and answers asked
of the tables, then kept on their rows (`clmbot.store.latest`).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from _databases import keep_latest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlmodel import Session

from clmbot.config import DEFAULT_STAGES, DEFAULT_TERMINAL_STAGES
from clmbot.segments.compile import compile_segment
from clmbot.segments.language import parse_segment
from clmbot.segments.query import summarise
from clmbot.store import cache
from clmbot.store.db import make_engine, normalise_url
from clmbot.store.migrate import upgrade

PG_URL = os.environ.get("CLMBOT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")

NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)
EXPRESSIONS = (
    "plan:pro",
    "nps<7",
    "csat<=2",
    "inactive>30d",
    "inactive<7d",
    "attr.industry:retail",
    "attr.seats>50",
    "stage:retention,advocacy plan:pro nps<7 inactive>30d",
    "-nps>=9 attr.seats>=10 region:emea",
    "tag:vip,enterprise",
    "in-stage>90d",
    "signup<1y mrr>500",
)
PLANS = ["free", "starter", "pro", "team", "enterprise"]
REGIONS = ["emea", "apac", "amer", None]
INDUSTRIES = ["retail", "saas", "fintech", "health", "media"]
TAGS = ["vip", "trial", "enterprise", "at-risk", "beta"]


def _ts(moment: datetime, dialect: str) -> str:
    if dialect == "sqlite":
        return moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
    return moment.isoformat()


def _customers(n: int, rng: random.Random, dialect: str) -> Iterator[tuple]:
    for i in range(n):
        signup = date(2022, 1, 1) + timedelta(days=rng.randint(0, 1700))
        tags = rng.sample(TAGS, rng.randint(0, 2))
        attrs = {"industry": rng.choice(INDUSTRIES), "seats": str(rng.randint(1, 200))}
        if rng.random() < 0.1:
            attrs["seats"] = "unknown"
        yield (
            i + 1,
            f"C{i:07d}",
            f"Customer {i}",
            rng.choice(DEFAULT_STAGES),
            f"U{rng.randint(1, 30):08d}",
            rng.choice(PLANS),
            rng.choice(REGIONS),
            round(rng.uniform(0, 2000), 2) if rng.random() < 0.9 else None,
            signup.isoformat(),
            json.dumps(tags),
            json.dumps(attrs),
            "en",
            _ts(NOW - timedelta(days=400), dialect),
            _ts(NOW - timedelta(days=400), dialect),
        )


def build(engine: Engine, customers: int, events: int, feedback: int) -> None:
    rng = random.Random(7)
    dialect = engine.dialect.name
    cols = (
        "id, external_id, name, stage, owner_slack_id, plan, region, mrr, signup_date, tags, "
        "attributes, locale, created_at, updated_at"
    )
    rows_c = list(_customers(customers, rng, dialect))
    start = NOW - timedelta(days=720)
    per = max(events // customers, 1)

    def event_rows() -> Iterator[tuple]:
        for cid in range(1, customers + 1):
            lapse = rng.choice([0, 0, 0, 5, 20, 45, 120])
            span = 720 - lapse
            for _ in range(per):
                at = start + timedelta(seconds=rng.randint(0, span * 86400))
                yield (cid, "login", _ts(at, dialect), 0)

    def feedback_rows() -> Iterator[tuple]:
        seen: set[tuple[int, str, int]] = set()
        while len(seen) < feedback:
            cid = rng.randint(1, customers)
            kind = rng.choice(["nps", "nps", "csat"])
            offset = rng.randint(0, 700 * 86400)
            if (cid, kind, offset) in seen:
                continue
            seen.add((cid, kind, offset))
            score = rng.randint(0, 10) if kind == "nps" else rng.randint(1, 5)
            yield (cid, kind, score, _ts(start + timedelta(seconds=offset), dialect), "import")

    def history_rows() -> Iterator[tuple]:
        for row in rows_c:
            basis = rng.choice(["exact", "import", "signup"])
            at = NOW - timedelta(days=rng.randint(1, 600))
            yield (row[0], None, row[3], _ts(at, dialect), "import", basis)

    tables = (
        ("customers", cols, iter(rows_c)),
        ("events", "customer_id, kind, occurred_at, seq", event_rows()),
        ("feedback", "customer_id, kind, score, responded_at, source", feedback_rows()),
        ("stage_history", "customer_id, from_stage, to_stage, at, by, basis", history_rows()),
    )
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        for table, columns, rows in tables:
            if dialect == "sqlite":
                marks = ", ".join("?" for _ in columns.split(","))
                cur.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)
            else:
                with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            raw.commit()
        cur.execute("ANALYZE")
        raw.commit()
    finally:
        raw.close()


def engine_for(backend: str, fresh: bool) -> tuple[Engine, bool]:
    """The engine, and whether the data is already there."""
    if backend == "sqlite":
        path = Path(tempfile.gettempdir()) / "clmbot-segments-perf.db"
        if fresh:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        existed = path.exists()
        engine = make_engine(f"sqlite:///{path}")
    else:
        url = make_url(normalise_url(PG_URL))
        admin = make_engine(url.render_as_string(hide_password=False))
        with admin.begin() as conn:
            if fresh:
                conn.execute(text("DROP SCHEMA IF EXISTS seg_perf CASCADE"))
            existed = bool(
                conn.execute(
                    text("SELECT 1 FROM information_schema.schemata WHERE schema_name='seg_perf'")
                ).scalar()
            )
            conn.execute(text("CREATE SCHEMA IF NOT EXISTS seg_perf"))
        admin.dispose()
        url = url.update_query_dict({"options": "-csearch_path=seg_perf"})
        engine = make_engine(url.render_as_string(hide_password=False))
    upgrade(engine)
    return engine, existed


def _vacuum(engine: Engine, backend: str) -> None:
    """Statistics for indexes a later migration added, and (PostgreSQL) the visibility map
    index-only scans need: what a database that has been in use a while has."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE" if backend == "sqlite" else "VACUUM ANALYZE"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=3_000_000)
    parser.add_argument("--feedback", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--fresh", action="store_true", help="rebuild the data")
    args = parser.parse_args(argv)
    engine, existed = engine_for(args.backend, args.fresh)
    if not existed or args.fresh:
        began = time.perf_counter()
        build(engine, args.customers, args.events, args.feedback)
        print(f"built in {time.perf_counter() - began:.0f} s", file=sys.stderr)
    _vacuum(engine, args.backend)
    # Each expression twice: with the latest event and answers asked of the tables for each
    # customer, then kept on their rows (clmbot.store.latest, as the bot's upkeep keeps them).
    timed: dict[str, list[tuple[int, float, float]]] = {}
    for way in ("asked", "kept"):
        if way == "kept":
            changed, kept_in = keep_latest(engine)
            print(f"latest values kept in {kept_in:.1f} s ({changed:,} changed)", file=sys.stderr)
        with Session(engine) as session:
            for expression in EXPRESSIONS:
                segment = parse_segment(expression, stages=DEFAULT_STAGES)
                times = []
                for _ in range(args.runs):
                    cache.forget_all()  # worked out each time, not given from memory
                    began = time.perf_counter()
                    where = compile_segment(segment, now=NOW, dialect=args.backend)
                    summary = summarise(
                        session, where, stages=DEFAULT_STAGES, terminal=DEFAULT_TERMINAL_STAGES
                    )
                    times.append((time.perf_counter() - began) * 1000)
                times.sort()
                p95 = times[max(int(len(times) * 0.95) - 1, 0)]
                timed.setdefault(expression, []).append(
                    (summary.count, statistics.median(times), p95)
                )
    out = io.StringIO()
    print(f"{'':10} {'':55} {'count':>7}  asked p50 / p95     kept p50 / p95", file=out)
    for expression, ((count, p50, p95), (kept_count, k50, k95)) in timed.items():
        assert count == kept_count, expression  # the same customers either way
        print(
            f"{args.backend:10} {expression:55} {count:7}  {p50:6.1f} / {p95:6.1f} ms  "
            f"{k50:6.1f} / {k95:6.1f} ms",
            file=out,
        )
    print(out.getvalue(), end="")
    engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
