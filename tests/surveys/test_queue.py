"""Queueing: who is asked, who is skipped and why, in one statement each, and the CLI's
`clmbot survey`."""

from __future__ import annotations

from datetime import timedelta

from click.testing import CliRunner
from sqlalchemy import select

from clmbot.cli import cli
from clmbot.importing.runner import import_file
from clmbot.store.db import session_scope
from clmbot.store.models import Customer, SurveyOptOut
from clmbot.surveys import queue
from clmbot.surveys.settings import SurveyConfig
from tests.conftest import NOW
from tests.helpers import rows, write_csv


def load(engine, settings, tmp_path):
    write_csv(
        tmp_path / "c.csv",
        """
        external_id,name,slack_user_id,stage,timezone,plan
        OK1,Ready One,U0READY1,retention,Asia/Jakarta,pro
        OK2,Ready Two,U0READY2,purchase,,pro
        NS1,No Slack,,retention,,pro
        CH1,Churned,U0CHURN1,churned,,pro
        OO1,Opted Out,U0OPTOUT,retention,,pro
        AN1,Answered Lately,U0ANSWER,retention,,pro
        """,
    )
    import_file(engine, "customers", tmp_path / "c.csv", settings, now=NOW - timedelta(days=200))
    write_csv(
        tmp_path / "f.csv",
        """
        customer_external_id,kind,score,comment,responded_at
        AN1,csat,4,,2026-10-01T10:00:00Z
        """,
    )
    import_file(engine, "feedback", tmp_path / "f.csv", settings, now=NOW)
    with session_scope(engine) as session:
        opted = session.execute(select(Customer.id).where(Customer.external_id == "OO1"))
        session.add(SurveyOptOut(customer_id=opted.scalar_one(), at=NOW - timedelta(days=3)))


CONFIG = SurveyConfig()


def queue_pro(engine, config=CONFIG):
    with session_scope(engine) as session:
        where = Customer.plan == "pro"
        plan = queue.plan(session, where, now=NOW, config=config, terminal=("churned",))
        done = queue.queue(
            session,
            where,
            kind="nps",
            target="plan:pro",
            by="test",
            now=NOW,
            config=config,
            terminal=("churned",),
            skipped=plan.skipped,
        )
    return plan, done


def test_each_skip_has_its_reason_and_the_rest_are_queued(engine, settings, tmp_path):
    load(engine, settings, tmp_path)
    plan, done = queue_pro(engine)
    assert plan.eligible == 2 and plan.total == 6
    assert plan.skipped == (
        ("no_slack_user", 1),
        ("churned", 1),
        ("opted_out", 1),
        ("cooldown", 1),
    )
    assert done.queued == 2 and done.later == 1  # Jakarta is at 19:00
    assert rows(engine, "survey_runs", "target", "queued", "skipped") == [
        ("plan:pro", 2, {"no_slack_user": 1, "churned": 1, "opted_out": 1, "cooldown": 1})
    ]
    # Queueing again finds them pending, and makes no second survey.
    plan, again = queue_pro(engine)
    assert again.queued == 0 and ("pending", 2) in plan.skipped
    assert len(rows(engine, "surveys", "id")) == 2


def test_the_cli_queues_and_shows_the_status(db_url, engine, settings, tmp_path, monkeypatch):
    load(engine, settings, tmp_path)
    monkeypatch.chdir(tmp_path)
    env = {"DATABASE_URL": db_url}
    result = CliRunner().invoke(cli, ["survey", "nps", "plan:pro"], env=env)
    assert result.exit_code == 0, result.output
    assert "Queued 2 NPS surveys for plan:pro (run #1)." in result.stdout
    assert "4 skipped: 1 no Slack user, 1 churned, 1 opted out" in result.stdout
    status = CliRunner().invoke(cli, ["survey", "status"], env=env)
    assert status.exit_code == 0 and "#1   NPS" in status.stdout
    wrong = CliRunner().invoke(cli, ["survey", "nsp", "plan:pro"], env=env)
    assert wrong.exit_code == 2 and "'nsp' is not a survey" in wrong.stderr


def test_the_cli_asks_for_yes_for_a_large_run(db_url, engine, settings, tmp_path, monkeypatch):
    lines = "".join(f"M{i},Many {i},U0MANY{i:03d},retention,,team\n" for i in range(51))
    (tmp_path / "m.csv").write_text("external_id,name,slack_user_id,stage,timezone,plan\n" + lines)
    import_file(engine, "customers", tmp_path / "m.csv", settings, now=NOW)
    monkeypatch.chdir(tmp_path)
    env = {"DATABASE_URL": db_url}
    result = CliRunner().invoke(cli, ["survey", "csat", "plan:team"], env=env)
    assert result.exit_code == 2
    assert "would ask 51 customers for their CSAT; to queue them, add --yes" in result.stderr
    result = CliRunner().invoke(cli, ["survey", "csat", "plan:team", "--yes"], env=env)
    assert result.exit_code == 0 and "Queued 51 CSAT surveys" in result.stdout
