"""How fast the whole risk pass is, against one hand-written SQL aggregate.

Fills a database with C customers (default 100,000) and E events (default 3,000,000: four
in five purchases, the rest logins; two in five customers stop at some point), a stage
history row each and 50,000 answers, then times `clmbot risk`'s service (every customer's
facts, the rhythm model fitted on the team's past, every signal, the reasons) against a bare
`SELECT customer_id, max(occurred_at), count(*) FROM events WHERE kind = 'purchase' AND
occurred_at <= :as_of GROUP BY customer_id` in the same process. Target: under 30 s.

    python bench/bench_risk.py [--customers 100000] [--events 3000000]
                               [--postgres postgresql://postgres@127.0.0.1:5432/test]
                               [--no-sqlite] [--dir DIR]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import UTC, datetime, timedelta

from _databases import add_options, each_database
from sqlalchemy import Engine, insert, select, text

from clmbot.config import Settings
from clmbot.risk.score import score_all
from clmbot.store.models import Customer, Event, Feedback, StageChange

NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)
TARGET_S = 30.0
BATCH = 200_000


def fill(engine: Engine, customers: int, events: int, seed: int = 42) -> None:
    rng = random.Random(seed)
    start = NOW - timedelta(days=730)
    with engine.begin() as conn:
        conn.execute(
            insert(Customer),
            [
                {
                    "external_id": f"C{c:07d}",
                    "name": f"Customer {c}",
                    "stage": "retention",
                    "tags": [],
                    "attributes": {},
                    "locale": "",
                    "created_at": start,
                    "updated_at": start,
                }
                for c in range(customers)
            ],
        )
        ids = list(conn.execute(select(Customer.id).order_by(Customer.id)).scalars())
        conn.execute(
            insert(StageChange),
            [
                {
                    "customer_id": i,
                    "to_stage": "retention",
                    "at": start,
                    "by": "import",
                    "basis": "signup",
                }
                for i in ids
            ],
        )
    per = events // customers
    rows: list[dict] = []

    def flush() -> None:
        with engine.begin() as conn:
            conn.execute(insert(Event), rows)
        rows.clear()

    for cid in ids:
        stop = NOW - timedelta(days=rng.uniform(0, 400)) if rng.random() < 0.4 else NOW
        span = (stop - start).total_seconds()
        for k in range(per):
            at = start + timedelta(seconds=rng.uniform(0, span))
            purchase = k % 5 != 4
            rows.append(
                {
                    "customer_id": cid,
                    "kind": "purchase" if purchase else "login",
                    "occurred_at": at,
                    "value": round(rng.uniform(5, 90), 2) if purchase else None,
                    "seq": k,
                }
            )
        if len(rows) >= BATCH:
            flush()
    if rows:
        flush()
    with engine.begin() as conn:
        conn.execute(
            insert(Feedback),
            [
                {
                    "customer_id": rng.choice(ids),
                    "kind": "nps",
                    "score": rng.randint(0, 10),
                    "responded_at": NOW - timedelta(seconds=i * 600),
                    "source": "import",
                }
                for i in range(min(50_000, customers // 2))
            ],
        )
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))


def bench(engine: Engine, label: str, customers: int, events: int) -> bool:
    print(f"\n{label}: {customers:,} customers, {events:,} events", flush=True)
    started = time.perf_counter()
    fill(engine, customers, events)
    print(f"  (filled in {time.perf_counter() - started:.0f} s)", flush=True)
    with engine.connect() as conn:
        started = time.perf_counter()
        conn.execute(
            select(Event.customer_id, text("max(occurred_at)"), text("count(*)"))
            .where(Event.kind == "purchase", Event.occurred_at <= NOW)
            .group_by(Event.customer_id)
        ).all()
        bare = time.perf_counter() - started
        settings = Settings()
        started = time.perf_counter()
        scored = score_all(conn, NOW, config=settings.risk, lifecycle=settings.lifecycle)
        took = time.perf_counter() - started
    high = sum(r.risk >= settings.risk.threshold for r in scored)
    ok = took < TARGET_S
    print(
        f"  risk pass: {took:.1f} s for {len(scored):,} customers ({high:,} at or above "
        f"{settings.risk.threshold}); the bare recency/frequency aggregate {bare:.1f} s, "
        f"ratio {took / bare:.1f}x; target < {TARGET_S:.0f} s: {'ok' if ok else 'MISSED'}"
    )
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=3_000_000)
    add_options(parser)
    args = parser.parse_args()
    ok = each_database(
        args, "risk", lambda engine, label: bench(engine, label, args.customers, args.events)
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
