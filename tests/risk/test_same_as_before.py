"""The fast risk pass (bulk arrays, signals array by array) gives exactly the scores and
reasons of the pass it replaced (`tests/risk/before.py`), on random shops full of the
awkward cases: ties in time, restated and reversed stages, forgotten and churned customers,
missing and absurd amounts, answers and events after the date scored."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, insert

from clmbot.config import LifecycleConfig, Settings
from clmbot.risk.score import score, score_all
from clmbot.risk.settings import RiskConfig
from clmbot.store.models import Customer, Event, Feedback, StageChange
from tests.risk import before

AS_OF = datetime(2026, 11, 1, tzinfo=UTC)
STAGES = LifecycleConfig().stages


def _moment(rng: random.Random, days_back: float) -> datetime:
    at = AS_OF - timedelta(days=rng.uniform(-20, days_back))
    if rng.random() < 0.05:  # the last microsecond of a day, or its first
        at = at.replace(hour=23, minute=59, second=59, microsecond=999_999)
    elif rng.random() < 0.05:
        at = at.replace(hour=0, minute=0, second=0, microsecond=0)
    return at


def fill(engine: Engine, seed: int) -> None:
    rng = random.Random(seed)
    pg = engine.dialect.name == "postgresql"
    n = 700
    created = AS_OF - timedelta(days=900)
    customers = [
        {
            "external_id": f"K{rng.randrange(10**6):06d}-{c}",
            "name": f"Customer {c}",
            "stage": "retention",
            "tags": [],
            "attributes": {},
            "locale": "",
            "created_at": created,
            "updated_at": created,
            "forgotten_at": created if rng.random() < 0.03 else None,
        }
        for c in range(n)
    ]
    history: list[dict] = []
    events: list[dict] = []
    answers: list[dict] = []
    taken: set[tuple[int, datetime, str]] = set()
    for cid in range(1, n + 1):
        if rng.random() > 0.03:
            at = _moment(rng, 800)
            for _ in range(rng.choice((1, 1, 2, 3, 4))):
                stage = rng.choice((*STAGES, history[-1]["to_stage"] if history else "purchase"))
                if (cid, at, stage) in taken:  # the key: one stage at a time
                    continue
                taken.add((cid, at, stage))
                history.append(
                    {
                        "customer_id": cid,
                        "to_stage": stage,
                        "at": at,
                        "by": "test",
                        "basis": rng.choice(("exact", "exact", "signup", "import")),
                    }
                )
                if rng.random() > 0.1:  # else the next move happens at the same time
                    at = at + timedelta(days=rng.expovariate(1 / 40), microseconds=rng.randrange(9))
        kind = rng.random()
        count = 0 if kind < 0.1 else rng.randint(1, 30)
        gap = rng.choice((3.0, 10.0, 30.0, 60.0))
        at = _moment(rng, 700)
        for seq in range(count):
            what = "login" if kind < 0.45 or rng.random() < 0.2 else "purchase"
            value: float | None = round(rng.uniform(1, 90), 2)
            if rng.random() < 0.1:
                value = None
            elif rng.random() < 0.02:
                value = rng.choice(
                    (1e308, -1e308, -5.0, -0.0, *((math.nan, math.inf) if pg else ()))
                )
            events.append(
                {
                    "customer_id": cid,
                    "kind": what,
                    "occurred_at": at,
                    "value": value,
                    "seq": seq,
                }
            )
            if rng.random() > 0.05:  # else the next event happens at the same time
                at = at + timedelta(days=rng.expovariate(1 / gap), microseconds=rng.randrange(7))
        if seed == 2 and cid % 97 == 0:  # a typo'd year: centuries before the rest
            at = datetime(1600 + cid % 7, 5, 5, 12, 0, 0, 1, tzinfo=UTC)
            events.append(
                {"customer_id": cid, "kind": "purchase", "occurred_at": at, "value": 1.0, "seq": 0}
            )
            history.append(
                {"customer_id": cid, "to_stage": "awareness", "at": at, "by": "t", "basis": "exact"}
            )
        for _ in range(rng.choice((0, 0, 0, 1, 2, 3))):
            answers.append(
                {
                    "customer_id": cid,
                    "kind": rng.choice(("nps", "nps", "csat")),
                    "score": rng.randint(0, 10),
                    "responded_at": _moment(rng, 400),
                    "source": "test",
                }
            )
    with engine.begin() as conn:
        conn.execute(insert(Customer), customers)
        conn.execute(insert(StageChange), history)
        conn.execute(insert(Event), events)
        conn.execute(insert(Feedback), answers)


@pytest.mark.parametrize("seed", [1, 2])
def test_the_fast_pass_scores_as_the_old_one_did(engine, seed):
    fill(engine, seed)
    lifecycle = LifecycleConfig()
    configs = [
        Settings().risk,
        RiskConfig(horizon=timedelta(days=30), stuck_quantile=0.5, stuck_stages=STAGES[:4]),
    ]
    dates = [AS_OF, AS_OF - timedelta(days=123, hours=5), AS_OF - timedelta(days=690)]
    with engine.connect() as conn:
        for config in configs:
            for as_of in dates:
                old = before.score_all(conn, as_of, config=config, lifecycle=lifecycle)
                new = score_all(conn, as_of, config=config, lifecycle=lifecycle)
                assert len(new) == len(old) > 0
                assert new == old, (config, as_of)
                # Read at once on connections of their own, as the daily pass does.
                apart = score(conn, as_of, config=config, lifecycle=lifecycle, engine=engine)
                assert apart.rows() == old, (config, as_of)
    # The shop exercises what it should: both models, every kind of reason.
    said = " ".join(r for row in old for r in row.reasons)
    with engine.connect() as conn:
        today = score_all(conn, AS_OF, config=configs[1], lifecycle=lifecycle)
    said = " ".join(r for row in today for r in row.reasons)
    for words in ("no purchase", "no activity for", "NPS", "CSAT", "moved back", "most move on"):
        assert words in said, words


def test_times_in_microseconds_make_the_same_days_to_the_last_bit():
    """The arrays' days come from integer microseconds (`to_days`), the old ones from each
    datetime's `timestamp()`: the same double, so the same day boundaries and rhythms."""
    import numpy as np

    from clmbot.risk.facts import days, micros, to_days

    rng = random.Random(5)
    moments = [
        datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=rng.randrange(-(10**15), 10**17))
        for _ in range(20_000)
    ]
    moments += [datetime(2026, 3, d, 23, 59, 59, 999_999, tzinfo=UTC) for d in range(1, 29)]
    got = to_days(np.array([micros(m) for m in moments], dtype=np.int64))
    assert got.tolist() == [days(m) for m in moments]
