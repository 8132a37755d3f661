"""The stored risk pass: one per day whoever runs it, read back by at-risk, and the
commands that run and show it."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from click.testing import CliRunner

from clmbot.cli import cli
from clmbot.config import Settings
from clmbot.risk import runs
from clmbot.store.db import make_engine
from tests.helpers import rows
from tests.risk.test_backtest import TODAY, shop  # noqa: F401  (the fixture)


def test_a_day_runs_once_however_many_ask(db_url, engine, shop):  # noqa: F811
    settings = Settings()
    day = TODAY.date()
    outcomes = []

    def one() -> None:
        own = make_engine(db_url)
        outcomes.append(runs.run(own, day, as_of=TODAY, now=TODAY, settings=settings, by="t"))
        own.dispose()

    threads = [threading.Thread(target=one) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done = [o for o in outcomes if o is not None]
    assert len(done) == 1 and done[0].scored > 200
    assert len(rows(engine, "risk_runs", "day")) == 1
    assert len(rows(engine, "risk_scores", "customer_id")) == done[0].scored


def test_a_pass_that_died_is_run_again_after_an_hour(engine, shop):  # noqa: F811
    day = TODAY.date()
    assert runs.claim(engine, day, as_of=TODAY, now=TODAY, by="dead") is not None
    assert runs.claim(engine, day, as_of=TODAY, now=TODAY + timedelta(minutes=30), by="b") is None
    later = TODAY + timedelta(hours=2)
    outcome = runs.run(engine, day, as_of=TODAY, now=later, settings=Settings(), by="b")
    assert outcome is not None and outcome.scored > 200


def test_alerts_run_then_at_risk_on_the_command_line(db_url, engine, shop, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.chdir(tmp_path)
    env = {"DATABASE_URL": db_url}
    empty = CliRunner().invoke(cli, ["at-risk"], env=env)
    assert empty.exit_code == 0 and "No risk pass is stored yet" in empty.stdout
    dry = CliRunner().invoke(cli, ["alerts", "run", "--as-of", "2026-10-31", "--dry-run"], env=env)
    assert dry.exit_code == 0 and "nothing stored" in dry.stdout
    assert rows(engine, "risk_runs", "day") == []
    done = CliRunner().invoke(cli, ["alerts", "run", "--as-of", "2026-10-31"], env=env)
    assert done.exit_code == 0, done.output
    assert "The pass of 2026-10-31 is stored." in done.stdout
    assert "No digest posted: a past day is stored, not posted." in done.stdout
    again = CliRunner().invoke(cli, ["alerts", "run", "--as-of", "2026-10-31"], env=env)
    assert again.exit_code == 1 and "was run already" in again.stderr
    listed = CliRunner().invoke(cli, ["at-risk"], env=env)
    assert "highest first (the pass of 2026-10-31; page 1)" in listed.stdout
    assert "More: clmbot at-risk page 2" in listed.stdout
    risky = CliRunner().invoke(cli, ["segment", "risk>=70"], env=env)
    assert risky.exit_code == 0 and "Segment risk>=70:" in risky.stdout


def test_stored_reasons_come_back_as_written(engine, now):
    """The run's rows go straight to the driver (COPY on PostgreSQL, whose text format has
    its own escapes): any reason, whatever its characters, reads back the same."""
    from sqlalchemy import insert, select

    from clmbot.risk.score import Scores
    from clmbot.store.models import Customer, RiskScore

    odd = ('back\\slash "quoted"', "tab\there\nnewline", "café ✓ \u2028", "\\N", "")
    with engine.begin() as conn:
        ids = [
            conn.execute(
                insert(Customer).values(
                    external_id=f"X{i}",
                    name=f"X {i}",
                    stage="retention",
                    tags=[],
                    attributes={},
                    locale="",
                    created_at=now,
                    updated_at=now,
                )
            ).inserted_primary_key[0]
            for i in range(3)
        ]
    run_id = runs.claim(engine, now.date(), as_of=now, now=now, by="t")
    assert run_id is not None
    reasons = [odd, (), odd[:1]]
    scored = Scores(ids, ["X0", "X1", "X2"], ["X 0", "X 1", "X 2"], [90, 10, 50], reasons)
    with engine.begin() as conn:
        runs.store(conn, run_id, scored)
    with engine.connect() as conn:
        got = dict(conn.execute(select(RiskScore.customer_id, RiskScore.reasons)).all())
    assert got == {i: list(r) for i, r in zip(ids, reasons, strict=True)}


def test_reasons_joined_by_hand_are_the_json_the_encoder_writes():
    import json

    cases = [
        (),
        ("",),
        ("no purchase for 93 days, usually every 30",),
        ("NPS 3 on 2026-11-02, a detractor", "in trial for 40 days, most move on within 14"),
        ('said "no"', "back\\slash", "tab\there", "café", "\x7f", "line\u2028sep", "\\N"),
    ]
    for texts in cases:
        assert runs._plain_json(texts) == json.dumps(list(texts))
        for one in texts:
            assert runs._plain_json((one, "plain")) == json.dumps([one, "plain"])


@pytest.mark.parametrize("n", [0, 1, 99, 100, 250])
def test_every_row_of_a_run_is_stored_whatever_their_number(engine, now, n):
    """SQLite takes the rows a hundred to a statement, the rest in one: none is lost or
    stored twice, each with its own risk and reasons, in whatever order they came."""
    from sqlalchemy import select

    from clmbot.risk.score import Scores
    from clmbot.store.models import RiskScore

    ids = [(i * 7919) % 1000 + 1 for i in range(n)]  # distinct, not in order
    risks = [i % 101 for i in range(n)]
    reasons = [(f"reason {i}",) if i % 3 else () for i in range(n)]
    names = [str(i) for i in ids]
    run_id = runs.claim(engine, now.date(), as_of=now, now=now, by="t")
    assert run_id is not None
    with engine.begin() as conn:
        runs.store(conn, run_id, Scores(ids, names, names, risks, reasons))
    with engine.connect() as conn:
        got = conn.execute(
            select(RiskScore.customer_id, RiskScore.risk, RiskScore.reasons).where(
                RiskScore.run_id == run_id
            )
        ).all()
    assert sorted(tuple(row) for row in got) == sorted(
        (i, r, list(t)) for i, r, t in zip(ids, risks, reasons, strict=True)
    )
