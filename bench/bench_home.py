"""How fast the App Home tab is built, against a bare count of customers per stage.

The Home tab is built afresh every time a team member opens it, so it has to come in well
under a second at the size of a large retention team's book. This fills a database with C
customers (default 100,000) as bench_queries.py makes them (plans, regions, owners among 24
people, MRR, a stage history over three years), two NPS or CSAT answers per customer over
two years, two daily risk passes (every live customer scored, the second a day after the
first, about one in ten at risk), and 20 survey runs holding 30,000 surveys in every state.
Then, round after round, it builds the Home tab of an owner drawn at random
(`clmbot.dashboard.dashboard` and the Block Kit view, in this process, one session per build,
as the bot does once the event is acknowledged), and as the baseline it runs a bare
`SELECT stage, count(*) FROM customers GROUP BY stage` the same way. Prints the median and
p95 of each, their ratio, and the statements of one build with their time, slowest first.
Target: p95 under 500 ms.

    python bench/bench_home.py [--customers 100000] [--rounds 20]
                               [--postgres postgresql://postgres@127.0.0.1:5432/test]
                               [--no-sqlite] [--dir DIR]

A smoke run: `--customers 2000 --rounds 3`.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any

from _databases import add_options, each_database
from bench_queries import COLUMNS, NOW, OWNERS, feedback_rows, make_population, stamper
from sqlalchemy import Engine, event, insert, select, text
from sqlmodel import Session

from clmbot.config import Settings
from clmbot.dashboard import dashboard
from clmbot.slack.views.base import Where
from clmbot.slack.views.home import home_blocks
from clmbot.store.models import (
    ANSWERED,
    CANCELLED,
    EXPIRED,
    FAILED,
    QUEUED,
    SENT,
    Customer,
    RiskRun,
    RiskScore,
    Survey,
    SurveyRun,
)

TARGET_MS = 500.0
WARMUP = 2
RUNS = 20
SURVEYS = 30_000
REASONS = (
    "no purchase for 64 days, usually every 21",
    "NPS fell from 9 to 5",
    "in consideration for 45 days, most move on within 14",
    "no login for 30 days",
    "spending half of what they did",
)
STATUSES = ((QUEUED, 2), (SENT, 3), (ANSWERED, 4), (EXPIRED, 2), (CANCELLED, 1), (FAILED, 1))


def load(engine: Engine, table: str, rows: Iterable[tuple[Any, ...]]) -> None:
    """`rows` into `table` (columns as bench_queries.py names them): executemany on SQLite,
    COPY on PostgreSQL."""
    raw = engine.raw_connection()
    try:
        driver: Any = raw.driver_connection
        if engine.dialect.name == "postgresql":
            with (
                driver.cursor() as cur,
                cur.copy(f"COPY {table} ({COLUMNS[table]}) FROM STDIN") as copy,
            ):
                for row in rows:
                    copy.write_row(row)
        else:
            marks = ", ".join("?" * len(COLUMNS[table].split(", ")))
            driver.executemany(f"INSERT INTO {table} ({COLUMNS[table]}) VALUES ({marks})", rows)
        raw.commit()
    finally:
        raw.close()


def fill(engine: Engine, customers: int, seed: int = 5) -> None:
    postgres = engine.dialect.name == "postgresql"
    stamp = stamper("+00" if postgres else ".000000")
    pop = make_population(customers, 30 * customers, stamp)
    load(engine, "customers", pop.customers)
    load(engine, "stage_history", pop.history)
    load(engine, "feedback", feedback_rows(pop, 2 * customers, stamp))
    rng = random.Random(seed)
    live = [row[0] for row in pop.customers if row[5] != "churned"]
    with engine.begin() as conn:
        if postgres:
            conn.exec_driver_sql(
                "SELECT setval(pg_get_serial_sequence('customers', 'id'), max(id)) FROM customers"
            )
        for back in (1, 0):
            day = NOW - timedelta(days=back)
            run_id = conn.execute(
                insert(RiskRun)
                .values(
                    day=day.date(),
                    as_of=day,
                    by="bench",
                    started_at=day,
                    finished_at=day,
                    scored=len(live),
                )
                .returning(RiskRun.id)
            ).scalar_one()
            scores = [
                {
                    "run_id": run_id,
                    "customer_id": cid,
                    "risk": min(int(rng.expovariate(1 / 25)), 100),
                    "reasons": rng.sample(REASONS, rng.randint(0, 3)),
                }
                for cid in live
            ]
            for start in range(0, len(scores), 5000):
                conn.execute(insert(RiskScore), scores[start : start + 5000])
        # Surveys: one customer at most one pending, as the partial unique key wants.
        asked = rng.sample(range(1, customers + 1), min(SURVEYS, customers))
        runs = [
            conn.execute(
                insert(SurveyRun)
                .values(
                    kind=rng.choice(("nps", "csat")),
                    target=rng.choice(("plan:pro", "stage:retention", "region:emea mrr>500")),
                    created_by=rng.choice(OWNERS),
                    created_at=NOW - timedelta(days=3 * (20 - i)),
                    queued=0,
                    skipped={},
                )
                .returning(SurveyRun.id)
            ).scalar_one()
            for i in range(20)
        ]
        statuses = rng.choices(
            [s for s, _ in STATUSES], weights=[w for _, w in STATUSES], k=len(asked)
        )
        surveys = [
            {
                "run_id": runs[i * len(runs) // len(asked)],
                "customer_id": cid,
                "kind": "nps",
                "status": status,
                "queued_at": NOW - timedelta(days=2),
                "not_before": NOW - timedelta(days=2),
                "score": 8 if status == ANSWERED else None,
            }
            for i, (cid, status) in enumerate(zip(asked, statuses, strict=True))
        ]
        for start in range(0, len(surveys), 5000):
            conn.execute(insert(Survey), surveys[start : start + 5000])
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE" if postgres else "ANALYZE")


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(round(len(ordered) * 0.95) - 1, 0)]


def timed(engine: Engine, rounds: int, build: Callable[[Session], object]) -> list[float]:
    times = []
    for i in range(WARMUP + rounds):
        with Session(engine) as session:
            started = time.perf_counter()
            build(session)
            took = (time.perf_counter() - started) * 1000
        if i >= WARMUP:
            times.append(took)
    return times


def statements(engine: Engine, build: Callable[[Session], object]) -> list[tuple[float, str]]:
    """The statements of one build, each with its ms, slowest first."""
    seen: list[tuple[float, str]] = []

    def before(conn: Any, cursor: Any, sql: str, *_: Any) -> None:
        conn.info["bench_started"] = time.perf_counter()

    def after(conn: Any, cursor: Any, sql: str, *_: Any) -> None:
        took = (time.perf_counter() - conn.info.pop("bench_started")) * 1000
        seen.append((took, " ".join(sql.split())))

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        with Session(engine) as session:
            build(session)
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)
    return sorted(seen, reverse=True)


def bench(engine: Engine, label: str, customers: int, rounds: int) -> bool:
    print(f"\n{label}: {customers:,} customers", flush=True)
    started = time.perf_counter()
    fill(engine, customers)
    with engine.connect() as conn:
        counts = {
            t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar()
            for t in ("stage_history", "feedback", "risk_scores", "surveys")
        }
    print(
        f"  filled in {time.perf_counter() - started:.0f} s: "
        + ", ".join(f"{t} {n:,}" for t, n in counts.items()),
        flush=True,
    )
    settings = Settings(database_url=str(engine.url))
    rng = random.Random(7)

    def home(session: Session) -> object:
        viewer = rng.choice(OWNERS)
        board = dashboard(session, settings, viewer, NOW)
        blocks = home_blocks(board, Where(settings.timezone, NOW, display=settings.display))
        json.dumps(blocks)  # what views.publish sends
        assert len(blocks) <= 100
        return blocks

    def bare(session: Session) -> object:
        return session.execute(
            select(Customer.stage, text("count(*)")).group_by(Customer.stage)
        ).all()

    base = timed(engine, rounds, bare)
    took = timed(engine, rounds, home)
    ok = p95(took) < TARGET_MS
    base_ms = statistics.median(base)
    print(
        f"  Home tab: median {statistics.median(took):.0f} ms, p95 {p95(took):.0f} ms per build "
        f"(bare count per stage: median {base_ms:.1f} ms; ratio "
        f"{statistics.median(took) / base_ms:.0f}x); target p95 < {TARGET_MS:.0f} ms: "
        f"{'ok' if ok else 'MISSED'}"
    )
    one = statements(engine, home)
    print(f"  one build, {len(one)} statements, {sum(ms for ms, _ in one):.0f} ms in SQL; slowest:")
    for ms, sql in one[:5]:
        print(f"    {ms:7.1f} ms  {sql[:100]}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=RUNS, help="timed builds per database")
    add_options(parser)
    args = parser.parse_args()
    if args.customers < 100 or args.rounds < 1:
        parser.error("use at least 100 customers and 1 round")
    ok = each_database(
        args, "home", lambda engine, label: bench(engine, label, args.customers, args.rounds)
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
