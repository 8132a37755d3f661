"""Forgetting a customer: no personal value of theirs left in any table, every number they
counted in unchanged, and an old file that names them does not bring them back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from clmbot.commands.run import run_command
from clmbot.commands.spec import Actor
from clmbot.config import Settings
from clmbot.forget import ERASED_NAME, FORGOTTEN, tombstone
from clmbot.importing.runner import import_file
from clmbot.results import ForgetConfirmResult, ForgottenResult, RefusedResult
from clmbot.store.db import session_scope
from clmbot.store.models import AuditEntry, Customer, Survey
from tests.helpers import read_rejected, rows, snapshot, write_csv

NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)
ADMIN = Actor("U0ADMIN", is_admin=True, channel="C0CS", admins=("U0ADMIN",))
MEMBER = Actor("U0MEMBER", is_admin=False, channel="C0CS", admins=("U0ADMIN",))
# Every personal value of the customer to forget: none may be found anywhere afterwards.
PERSONAL = (
    "ZX-4471",
    "Zyxwv Quarry Ltd",
    "zyxwv@quarry.example",
    "UZYXWV001",
    "quarry-vip",
    "Jalan Zyxwv 9",
    "tablet-zyxwv",
    "the zyxwv invoices were wrong",
    "zyxwv renewal call with Pak Budi",
    "zyxwv survey reply",
)


@pytest.fixture
def shop(engine, db_url, tmp_path):
    """The customer to forget, with every kind of data, and one other customer."""
    settings = Settings(database_url=db_url)
    files = {
        "customers": write_csv(
            tmp_path / "customers.csv",
            "external_id,name,email,slack_user_id,stage,plan,mrr,tags,address,locale,timezone\n"
            "ZX-4471,Zyxwv Quarry Ltd,zyxwv@quarry.example,UZYXWV001,purchase,pro,450,"
            "quarry-vip,Jalan Zyxwv 9,id,Asia/Jakarta\n"
            "B1,Beta Logistics,hello@beta.example,,retention,team,180,,,en,",
        ),
        "events": write_csv(
            tmp_path / "events.csv",
            """customer_external_id,kind,occurred_at,value,device
            ZX-4471,purchase,2026-10-01T10:00:00Z,120,tablet-zyxwv
            ZX-4471,login,2026-10-02T10:00:00Z,,
            B1,purchase,2026-10-03T10:00:00Z,90,""",
        ),
        "feedback": write_csv(
            tmp_path / "feedback.csv",
            """customer_external_id,kind,score,comment,responded_at
            ZX-4471,nps,3,the zyxwv invoices were wrong,2026-06-05T10:00:00Z
            B1,nps,9,great,2026-10-06T10:00:00Z""",
        ),
        "stages": write_csv(
            tmp_path / "stages.csv",
            """customer_external_id,stage,moved_at,by,reason
            ZX-4471,awareness,2026-09-01T10:00:00Z,U0OWNER,zyxwv renewal call with Pak Budi""",
        ),
    }
    for kind, path in files.items():
        report = import_file(engine, kind, path, settings, now=NOW - timedelta(days=30))
        assert report.ok, report.summary()

    def go(text: str, actor: Actor = ADMIN):
        with session_scope(engine) as s:
            return run_command(text, session=s, settings=settings, now=NOW, actor=actor)

    assert go("survey nps ZX-4471").queued == 1
    with session_scope(engine) as s:
        s.execute(update(Survey).values(comment="zyxwv survey reply"))
    go("stage ZX-4471 retention zyxwv renewal call with Pak Budi")
    return settings, files, go


def test_forgetting_asks_first_and_only_admins_may(shop, engine):
    _, _, go = shop
    before = snapshot(engine)
    asked = go("forget ZX-4471")
    assert isinstance(asked, ForgetConfirmResult) and asked.confirm == "forget ZX-4471 confirm"
    refused = go("forget ZX-4471 confirm", MEMBER)
    assert isinstance(refused, RefusedResult)
    assert snapshot(engine) == before


def test_no_personal_value_remains_in_any_table(shop, engine):
    _, _, go = shop
    assert any(v in str(snapshot(engine)) for v in PERSONAL[-3:])  # the fixture put them in
    done = go("forget Zyxwv Quarry confirm")
    assert isinstance(done, ForgottenResult) and done.external_id == "ZX-4471"
    assert (done.comments, done.survey_replies) == (1, 1) and done.stage_reasons >= 2
    everything = str(snapshot(engine))
    assert [v for v in PERSONAL if v in everything] == []
    assert "Beta Logistics" in everything and "great" in everything  # the others untouched
    with session_scope(engine) as s:
        gone = s.execute(select(Customer).where(Customer.forgotten_at.is_not(None))).scalar_one()
        assert gone.name == ERASED_NAME and gone.external_id == tombstone("ZX-4471")
        entry = s.execute(select(AuditEntry).where(AuditEntry.action == "forget")).scalar_one()
        assert entry.actor == "U0ADMIN" and entry.customer_id == gone.id and entry.detail == {}


def test_the_numbers_they_counted_in_stay(shop, engine):
    _, _, go = shop
    counted = {
        t: rows(engine, t, *c)
        for t, c in (
            ("feedback", ("kind", "score", "responded_at")),
            ("events", ("kind", "occurred_at", "value")),
            ("stage_history", ("to_stage", "at")),
        )
    }
    go("forget ZX-4471 confirm")
    assert {
        t: rows(engine, t, *c)
        for t, c in (
            ("feedback", ("kind", "score", "responded_at")),
            ("events", ("kind", "occurred_at", "value")),
            ("stage_history", ("to_stage", "at")),
        )
    } == counted
    assert rows(engine, "customers", "stage", "plan", "mrr") == [
        ("retention", "pro", 450.0),
        ("retention", "team", 180.0),
    ]


def test_an_old_file_does_not_bring_them_back_and_says_so(shop, engine):
    settings, files, go = shop
    go("forget ZX-4471 confirm")
    before = snapshot(engine)
    later = NOW + timedelta(days=1)
    customers = import_file(engine, "customers", files["customers"], settings, now=later)
    assert customers.forgotten == 1 and not customers.ok
    assert "1 rows left out: they are of customers who were forgotten" in customers.summary()
    events = import_file(engine, "events", files["events"], settings, now=later)
    assert events.forgotten == 2 and events.customers_created == 0
    for kind, column in (("feedback", "reason"), ("stages", "rejected_reason")):
        report = import_file(engine, kind, files[kind], settings, now=later)
        assert not report.ok and report.rejected_path is not None
        assert [r[column] for r in read_rejected(report.rejected_path)] == [f"line 2: {FORGOTTEN}"]
    after = snapshot(engine)
    assert after["customers"] == before["customers"]
    assert "Zyxwv" not in str(after)


def test_with_nobody_forgotten_an_import_hashes_no_id(shop, engine, tmp_path, monkeypatch):
    """Every import checks the ids it does not know against the forgotten ones' hashes:
    with nobody forgotten (the usual case), one look in the index of the forgotten says
    so, and no id is hashed (a twentieth of a million-customer import)."""
    import clmbot.forget

    settings, _files, go = shop
    hashed: list[str] = []
    real = clmbot.forget.tombstone
    monkeypatch.setattr(clmbot.forget, "tombstone", lambda e: hashed.append(e) or real(e))
    new = write_csv(tmp_path / "new.csv", "external_id,name\nN1,New One\nN2,New Two")
    assert import_file(engine, "customers", new, settings, now=NOW).inserted == 2
    assert hashed == []
    go("forget ZX-4471 confirm")
    hashed.clear()
    newer = write_csv(tmp_path / "newer.csv", "external_id,name\nN3,New Three\nZX-4471,Back")
    report = import_file(engine, "customers", newer, settings, now=NOW)
    assert report.inserted == 1 and report.forgotten == 1
    assert sorted(hashed) == ["N3", "ZX-4471"]


def test_the_command_line_asks_for_yes(shop, db_url, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from clmbot.cli import cli

    monkeypatch.chdir(tmp_path)
    env = {"DATABASE_URL": db_url}
    asked = CliRunner().invoke(cli, ["forget", "ZX-4471"], env=env)
    assert asked.exit_code == 2
    assert "to go ahead: clmbot forget ZX-4471 --yes" in asked.stderr
    done = CliRunner().invoke(cli, ["forget", "ZX-4471", "--yes"], env=env)
    assert done.exit_code == 0, done.output
    assert done.stdout.startswith("Forgotten: ZX-4471's name, e-mail, Slack id")
    again = CliRunner().invoke(cli, ["forget", "ZX-4471", "--yes"], env=env)
    assert again.exit_code == 2 and "ZX-4471" in again.stderr  # no such customer any more


def test_the_slack_answers_ask_with_a_button_and_escape_the_name():
    from clmbot.results import CustomerRef
    from clmbot.slack.views import render

    asked = render(
        ForgetConfirmResult(CustomerRef("X1", "<!channel> Evil & Co"), "forget X1 confirm"),
        UTC,
        NOW,
    )
    text = str(asked.blocks)
    assert "&lt;!channel&gt; Evil &amp; Co" in text and "<!channel>" not in text
    (button,) = [b for block in asked.blocks for b in block.get("elements", []) if "value" in b]
    assert button["style"] == "danger" and button["value"] == '"forget X1 confirm"'
    done = render(ForgottenResult("X1", 2, 1, 0, 3), UTC, NOW)
    assert "2 comments, 1 survey comment, 0 reasons" in done.text
