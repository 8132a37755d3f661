"""The funnel computed in SQL agrees with the plain Python reference on random histories, on
SQLite and PostgreSQL: same counts, conversions, medians."""

from __future__ import annotations

import os
from datetime import timedelta

from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import delete

from clmbot.config import Settings
from clmbot.lifecycle import funnel
from clmbot.store.db import session_scope
from clmbot.store.models import EXACT, IMPORTED, SIGNUP, Customer, StageChange
from tests.conftest import NOW
from tests.funnel_reference import reference_funnel

EXAMPLES = max(int(os.environ.get("CLMBOT_FUZZ_EXAMPLES") or 1000) // 20, 5)
STAGES = ["awareness", "consideration", "purchase", "retention", "advocacy", "churned"]

row = st.tuples(
    st.sampled_from(STAGES),
    st.integers(min_value=0, max_value=200),  # days before NOW (some after: see below)
    st.sampled_from([EXACT, EXACT, SIGNUP, IMPORTED]),
)
histories = st.lists(st.lists(row, min_size=0, max_size=6), min_size=1, max_size=8)


@hsettings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(histories=histories, since_days=st.integers(1, 150), back=st.integers(-5, 40))
def test_sql_funnel_matches_the_reference(engine, db_url, histories, since_days, back):
    lifecycle = Settings(database_url=db_url).lifecycle
    now = NOW - timedelta(days=back)  # sometimes rows after `now`, which neither may see
    since = now - timedelta(days=since_days)
    with session_scope(engine) as s:
        s.execute(delete(StageChange))
        s.execute(delete(Customer))
        for n, history in enumerate(histories):
            # Every writer keeps `customers.stage` the stage of the latest row (the funnel
            # counts those who did not move in the period by it).
            rows = {}
            for k, (stage, days, basis) in enumerate(history):
                rows.setdefault((NOW - timedelta(days=days, hours=k), stage), basis)
            last = max(rows)[1] if rows else "awareness"
            c = Customer(
                external_id=f"C{n}",
                name=f"C{n}",
                stage=last,
                created_at=NOW - timedelta(days=300),
                updated_at=NOW,
            )
            s.add(c)
            s.flush()
            for (at, stage), basis in rows.items():
                s.add(
                    StageChange(customer_id=c.id, to_stage=stage, at=at, by="import", basis=basis)
                )
        s.flush()
        got = funnel(s, since=since, now=now, lifecycle=lifecycle)
        want = reference_funnel(s, since=since, now=now, lifecycle=lifecycle)
    assert got == want
