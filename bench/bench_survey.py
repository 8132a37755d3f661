"""How fast surveys are queued and sent, against the bare statements underneath.

Queueing: fills a database with C customers (default 100,000; 80% with a Slack user, a few
churned, opted out or answered lately, in five time zones), then times `/clm survey nps
plan:pro`'s service (`queue.plan` and `queue.queue`: every customer's skip reason, the
window per zone, the rows) against a bare `INSERT INTO surveys SELECT … FROM customers`
of the same customers, in the same process. Target: under 5 s.

Sending: the sender's own work per survey, without Slack's latency (a Web API stand-in in
the process that answers at once): claim, look up, build the blocks, mark sent. Against
the least any sender must do, one `UPDATE surveys SET status = 'sent'` per survey in its
own transaction. Target: under 5 ms a survey.

    python bench/bench_survey.py [--customers 100000] [--send 5000]
                                 [--postgres postgresql://postgres@127.0.0.1:5432/test]
                                 [--no-sqlite] [--dir DIR]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from _databases import add_options, each_database
from sqlalchemy import Engine, func, insert, select, text, update
from sqlmodel import Session

from clmbot.config import Settings
from clmbot.slack.survey_sender import SurveySender
from clmbot.store.models import Customer, Feedback, Survey, SurveyOptOut, SurveyRun
from clmbot.surveys import queue
from clmbot.surveys.settings import SurveyConfig

# Tuesday 12:00 UTC: inside the hours in São Paulo and London, outside in Jakarta.
NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)
ZONES = ["America/Sao_Paulo", "Europe/London", "Asia/Jakarta", "America/New_York", None]
QUEUE_TARGET_S = 5.0
SEND_TARGET_MS = 5.0
CONFIG = SurveyConfig(sends_per_second=1_000_000)  # no pacing: its own work only


def fill(engine: Engine, customers: int, seed: int = 42) -> None:
    rng = random.Random(seed)
    rows = [
        {
            "external_id": f"C{c:07d}",
            "name": f"Customer {c}",
            "slack_user_id": f"U{c:08d}" if rng.random() < 0.8 else None,
            "stage": "churned" if rng.random() < 0.05 else "retention",
            "plan": "pro",
            "tags": [],
            "attributes": {},
            "locale": rng.choice(["en", "id", ""]),
            "timezone": rng.choice(ZONES),
            "created_at": NOW,
            "updated_at": NOW,
        }
        for c in range(customers)
    ]
    with engine.begin() as conn:
        conn.execute(insert(Customer), rows)
        ids = list(conn.execute(select(Customer.id)).scalars())
        answered = rng.sample(ids, len(ids) // 20)
        conn.execute(
            insert(Feedback),
            [
                {
                    "customer_id": i,
                    "kind": "nps",
                    "score": 8,
                    "responded_at": NOW - timedelta(days=10),
                    "source": "import",
                }
                for i in answered
            ],
        )
        conn.execute(
            insert(SurveyOptOut), [{"customer_id": i, "at": NOW} for i in rng.sample(ids, 500)]
        )
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))


def clear(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(Survey.__table__.delete())
        conn.execute(SurveyRun.__table__.delete())


def time_queue(engine: Engine) -> tuple[float, int]:
    where = Customer.plan == "pro"
    started = time.perf_counter()
    with Session(engine) as session:
        plan = queue.plan(session, where, now=NOW, config=CONFIG, terminal=("churned",))
        done = queue.queue(
            session,
            where,
            kind="nps",
            target="plan:pro",
            by="bench",
            now=NOW,
            config=CONFIG,
            terminal=("churned",),
            skipped=plan.skipped,
        )
        session.commit()
    return time.perf_counter() - started, done.queued


def time_bare_queue(engine: Engine) -> float:
    started = time.perf_counter()
    with engine.begin() as conn:
        run = conn.execute(
            insert(SurveyRun)
            .values(
                kind="nps", target="bare", created_by="bench", created_at=NOW, queued=0, skipped={}
            )
            .returning(SurveyRun.id)
        ).scalar_one()
        conn.execute(
            text(
                "INSERT INTO surveys (run_id, customer_id, kind, status, queued_at, not_before, "
                "attempts, team_post_due) SELECT :run, id, 'nps', 'queued', :now, :now, 0, "
                "false FROM customers WHERE plan = 'pro'"
            ),
            {
                "run": run,
                "now": NOW.replace(tzinfo=None) if engine.dialect.name == "sqlite" else NOW,
            },
        )
    return time.perf_counter() - started


class InstantSlack:
    """The Web API methods the sender calls, answered at once in the process."""

    def __init__(self) -> None:
        self._n = 0

    def users_info(self, *, user: str, **_: Any) -> dict[str, Any]:
        return {"ok": True, "user": {"id": user, "tz": "America/Sao_Paulo", "locale": "en-US"}}

    def conversations_open(self, *, users: str, **_: Any) -> dict[str, Any]:
        return {"ok": True, "channel": {"id": "D" + users}}

    def chat_postMessage(self, *, channel: str, **_: Any) -> dict[str, Any]:
        self._n += 1
        return {"ok": True, "channel": channel, "ts": f"1764000000.{self._n:06d}"}

    def conversations_history(self, **_: Any) -> dict[str, Any]:
        return {"ok": True, "messages": []}

    def chat_update(self, **_: Any) -> dict[str, Any]:
        return {"ok": True}


def time_send(engine: Engine, count: int) -> tuple[float, int]:
    """Per survey, over `count` surveys of customers whose hours are open now."""
    with engine.begin() as conn:
        ids = list(
            conn.execute(
                select(Survey.id)
                .join(Customer, Customer.id == Survey.customer_id)
                .where(Customer.timezone == "America/Sao_Paulo", Survey.status == "queued")
                .limit(count)
            ).scalars()
        )
        # Only these are due now; the rest wait.
        conn.execute(update(Survey).values(not_before=NOW + timedelta(days=30)))
        conn.execute(update(Survey).where(Survey.id.in_(ids)).values(not_before=NOW))
    settings = Settings(database_url=str(engine.url), surveys=CONFIG)
    sender = SurveySender(engine, InstantSlack(), settings)  # type: ignore[arg-type]
    started = time.perf_counter()
    report = sender.run_once(NOW, budget=600)
    return (time.perf_counter() - started) / max(report.sent, 1), report.sent


def time_bare_send(engine: Engine, count: int) -> float:
    with engine.connect() as conn:
        ids = list(
            conn.execute(select(Survey.id).where(Survey.status == "queued").limit(count)).scalars()
        )
    started = time.perf_counter()
    for survey_id in ids:
        with engine.begin() as conn:
            conn.execute(update(Survey).where(Survey.id == survey_id).values(status="sent"))
    return (time.perf_counter() - started) / max(len(ids), 1)


def bench(engine: Engine, label: str, customers: int, send: int) -> bool:
    print(f"\n{label}: {customers:,} customers", flush=True)
    fill(engine, customers)
    bare = time_bare_queue(engine)
    clear(engine)
    took, queued = time_queue(engine)
    ok = took < QUEUE_TARGET_S
    print(
        f"  queue a segment: {took:.2f} s for {queued:,} queued "
        f"(bare INSERT … SELECT {bare:.2f} s, ratio {took / bare:.1f}x; "
        f"target < {QUEUE_TARGET_S:.0f} s: {'ok' if ok else 'MISSED'})"
    )
    bare_send = time_bare_send(engine, min(send, 2000))
    clear(engine)
    time_queue(engine)
    per, sent = time_send(engine, send)
    ok_send = per * 1000 < SEND_TARGET_MS
    print(
        f"  sender's own work: {per * 1000:.2f} ms a survey over {sent:,} "
        f"(bare UPDATE per survey {bare_send * 1000:.2f} ms, ratio {per / bare_send:.1f}x; "
        f"target < {SEND_TARGET_MS:.0f} ms: {'ok' if ok_send else 'MISSED'})"
    )
    with engine.connect() as conn:
        assert (
            conn.execute(
                select(func.count()).select_from(Survey).where(Survey.status == "sent")
            ).scalar()
            == sent
        )
    return ok and ok_send


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--send", type=int, default=5000)
    add_options(parser)
    args = parser.parse_args()
    ok = each_database(
        args, "survey", lambda engine, label: bench(engine, label, args.customers, args.send)
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
