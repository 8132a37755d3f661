from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from clmbot.commands.run import run_command, split_words
from clmbot.commands.spec import Actor
from clmbot.config import Settings
from clmbot.results import (
    FunnelResult,
    HelpResult,
    MatchesResult,
    ProfileResult,
    RefusedResult,
    StageResult,
    UsageResult,
)
from clmbot.store.db import session_scope
from clmbot.store.models import AuditEntry, Customer, StageChange

NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)
ADMIN = Actor("U0ADMIN", is_admin=True, channel="C0CS", admins=("U0ADMIN",))
MEMBER = Actor("U0MEMBER", is_admin=False, channel="C0CS", admins=("U0ADMIN",))


@pytest.fixture
def run(engine, db_url):
    settings = Settings(database_url=db_url)
    with session_scope(engine) as s:
        for ext, name in (("A1", "Acme Corp"), ("A2", "Acme Labs"), ("R1", "Retention Partners")):
            s.add(
                Customer(
                    external_id=ext,
                    name=name,
                    stage="purchase",
                    created_at=NOW - timedelta(days=9),
                    updated_at=NOW,
                )
            )

    def go(text: str, actor: Actor = ADMIN):
        with session_scope(engine) as s:
            return run_command(text, session=s, settings=settings, now=NOW, actor=actor)

    return go


def test_words_keep_quoted_phrases_and_curly_quotes():
    assert split_words('stage "Acme Corp" retention') == ["stage", "Acme Corp", "retention"]
    assert split_words("stage \u201cAcme Corp\u201d retention") == [
        "stage",
        "Acme Corp",
        "retention",
    ]


def test_help_and_unknown(run):
    assert isinstance(run(""), HelpResult) and isinstance(run("HELP"), HelpResult)
    unknown = run("custmer A1")
    assert isinstance(unknown, HelpResult) and "Did you mean `customer`?" in unknown.note
    assert isinstance(run("xyzzy"), HelpResult) and "Did you mean" not in run("xyzzy").note
    assert "quote is not closed" in run('customer "Acme').note
    assert isinstance(run("forget"), UsageResult)  # built now: it asks which customer


def test_stage_finds_the_stage_word_after_a_name_with_spaces(run, engine):
    result = run("stage Retention Partners advocacy moved up")
    assert isinstance(result, StageResult)
    assert (result.customer.external_id, result.move.to_stage, result.move.reason) == (
        "R1",
        "advocacy",
        "moved up",
    )
    with session_scope(engine) as s:
        entry = s.exec(select(AuditEntry)).one()
        assert entry.detail == {
            "ref": "Retention Partners",
            "from_stage": "purchase",
            "to_stage": "advocacy",
            "reason": "moved up",
        }


def test_stage_refusals_and_mistakes(run, engine):
    assert isinstance(run("stage A1 churned", MEMBER), RefusedResult)
    assert isinstance(run("stage A1"), UsageResult)
    unknown = run("stage A1 vip")
    assert isinstance(unknown, UsageResult) and "`vip` is not a stage" in unknown.problem
    assert isinstance(run("stage Acme retention"), MatchesResult)  # two Acmes
    with session_scope(engine) as s:
        assert s.exec(select(StageChange)).all() == []
        assert s.exec(select(AuditEntry)).all() == []


def test_customer_and_funnel(run):
    assert isinstance(run("customer acme corp", MEMBER), ProfileResult)
    funnel = run("funnel since 2026-11-01", MEMBER)
    assert isinstance(funnel, FunnelResult)
    assert funnel.funnel.since == datetime(2026, 11, 1, tzinfo=UTC)
    assert isinstance(run("funnel 30d", MEMBER), FunnelResult)
    assert isinstance(run("funnel since 30d and more", MEMBER), UsageResult)
