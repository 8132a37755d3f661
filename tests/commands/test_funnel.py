"""`funnel [since <when>] [chart]`: the words, in either order, and what the chart carries."""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta

import pytest

from clmbot.commands.run import run_command
from clmbot.commands.spec import Actor
from clmbot.config import Settings
from clmbot.lifecycle import move_stage
from clmbot.results import CHANNEL, FunnelChartResult, FunnelResult, UsageResult
from clmbot.store.db import session_scope
from clmbot.store.models import Customer

NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)
MEMBER = Actor("U0MEMBER", is_admin=False, channel="C0CS", admins=("U0ADMIN",))


@pytest.fixture
def run(engine, db_url):
    """Three customers who came in 50 days ago; one bought 20 days ago, one churned."""
    settings = Settings(database_url=db_url)
    with session_scope(engine) as s:
        for ext, name in (("A1", "Acme Corp"), ("B1", "Beta Logistics"), ("C1", "Cosy Cafe")):
            customer = Customer(
                external_id=ext,
                name=name,
                stage="awareness",
                created_at=NOW - timedelta(days=50),
                updated_at=NOW,
            )
            s.add(customer)
            s.flush()
            move_stage(
                s,
                customer,
                "consideration",
                by="test",
                reason=None,
                now=NOW - timedelta(days=50),
                lifecycle=settings.lifecycle,
            )
            if ext != "C1":
                to, days = ("purchase", 20) if ext == "A1" else ("churned", 10)
                move_stage(
                    s,
                    customer,
                    to,
                    by="test",
                    reason=None,
                    now=NOW - timedelta(days=days),
                    lifecycle=settings.lifecycle,
                )

    def go(text: str):
        with session_scope(engine) as s:
            return run_command(text, session=s, settings=settings, now=NOW, actor=MEMBER)

    return go


@pytest.mark.parametrize(
    ("typed", "days"),
    [
        ("funnel chart", 90),
        ("funnel since 30d chart", 30),
        ("funnel chart since 30d", 30),
        ("funnel 30d chart", 30),
        ("FUNNEL Since 30d CHART", 30),
        ("funnel since last month chart", None),  # `chart` ends the period's words
    ],
)
def test_chart_before_or_after_the_period(run, typed, days):
    result = run(typed)
    assert isinstance(result, FunnelChartResult), result
    if days is not None:
        assert result.funnel.since == NOW - timedelta(days=days)
    else:
        assert result.funnel.since == datetime(2026, 10, 1, tzinfo=UTC)


def test_the_chart_is_the_same_funnel_as_a_png_for_the_channel(run):
    chart = run("funnel since 30d chart")
    words = run("funnel since 30d")
    assert isinstance(chart, FunnelChartResult) and isinstance(words, FunnelResult)
    assert chart.funnel == words.funnel
    assert chart.funnel.terminal == ("churned",)
    by_stage = {s.stage: s.customers for s in chart.funnel.stages}
    assert (by_stage["consideration"], by_stage["purchase"], by_stage["churned"]) == (1, 1, 1)
    file = chart.file
    assert (file.filename, file.title, file.to) == ("funnel.png", "Customer funnel", CHANNEL)
    assert file.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", file.content[16:24]) == (800, 450)


@pytest.mark.parametrize(
    ("typed", "problem"),
    [
        ("funnel chart chart", "Say `chart` once."),
        ("funnel chart since 30d chart", "Say `chart` once."),
        ("funnel chart junk", "`junk` is not a date or a period"),
        ("funnel since 30d chart junk", "I don't know what `chart junk` means here."),
        ("funnel since chart", "Say since when"),
        ("funnel charts", "`charts` is not a date or a period"),
    ],
)
def test_wrong_words_get_the_usage(run, typed, problem):
    result = run(typed)
    assert isinstance(result, UsageResult), result
    assert problem in result.problem
    assert result.spec.usage.endswith("[chart]")
