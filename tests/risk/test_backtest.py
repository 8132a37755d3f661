"""The backtest and the command line: a made-up shop where some customers stop buying, the
risk ranking them ahead of those who go on, and what `clmbot risk` and `clmbot backtest`
print."""

from __future__ import annotations

import csv
import io
import random
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from clmbot.cli import cli
from clmbot.config import Settings
from clmbot.importing.runner import import_file
from clmbot.risk.backtest import backtest, roc_auc

TODAY = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture
def shop(engine, tmp_path):
    """400 customers over two years, each with a rhythm of their own; 40% stop at some
    point, and some of them answer unhappily before they do."""
    rng = random.Random(11)
    events, answers = [], []
    for c in range(400):
        gap = rng.choice((10, 14, 21, 30, 45))
        at = TODAY - timedelta(days=rng.uniform(300, 730))
        stop = at + timedelta(days=rng.uniform(30, 600)) if rng.random() < 0.4 else TODAY
        while at < min(stop, TODAY):
            events.append(f"K{c:03d},purchase,{at:%Y-%m-%dT%H:%M:%SZ},{rng.uniform(10, 90):.2f}")
            at += timedelta(days=gap * rng.uniform(0.6, 1.4))
        if stop < TODAY and rng.random() < 0.3:
            answers.append(f"K{c:03d},nps,{rng.randint(0, 5)},,{stop:%Y-%m-%dT%H:%M:%SZ}")
    (tmp_path / "e.csv").write_text(
        "customer_external_id,kind,occurred_at,value\n" + "\n".join(events)
    )
    (tmp_path / "f.csv").write_text(
        "customer_external_id,kind,score,comment,responded_at\n" + "\n".join(answers)
    )
    settings = Settings(database_url=str(engine.url))
    assert import_file(engine, "events", tmp_path / "e.csv", settings, now=TODAY).ok
    assert import_file(engine, "feedback", tmp_path / "f.csv", settings, now=TODAY).ok


def test_the_risk_ranks_who_stops_ahead_of_who_goes_on(engine, shop):
    settings = Settings()
    dates = [TODAY - timedelta(days=180), TODAY - timedelta(days=90)]
    with engine.connect() as conn:
        lines = backtest(conn, dates, config=settings.risk, lifecycle=settings.lifecycle)
    for line in lines:
        assert line.scored > 200 and 0 < line.inactive < line.scored
        assert line.auc is not None and line.auc > 0.8, line
        assert line.precision is not None and line.precision > 0.6, line


def test_roc_auc_counts_ties_as_half():
    import numpy as np

    assert roc_auc(np.array([1.0, 2.0, 3.0]), np.array([False, False, True])) == 1.0
    assert roc_auc(np.array([1.0, 1.0]), np.array([False, True])) == 0.5
    assert roc_auc(np.array([1.0]), np.array([True])) is None


def test_the_cli_writes_the_risk_and_the_backtest(db_url, engine, shop, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env = {"DATABASE_URL": db_url}
    result = CliRunner().invoke(cli, ["risk", "--as-of", "2026-10-31", "--format", "csv"], env=env)
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert list(rows[0]) == ["external_id", "risk", "reasons"]
    assert len(rows) > 200
    risks = [int(r["risk"]) for r in rows]
    assert risks == sorted(risks, reverse=True) and min(risks) >= 0 and max(risks) <= 100
    assert any(r["reasons"].startswith("no purchase for") for r in rows)
    result = CliRunner().invoke(
        cli,
        [
            "backtest",
            "--from",
            "2026-03-01",
            "--to",
            "2026-06-01",
            "--every",
            "30d",
            "--horizon",
            "60d",
        ],
        env=env,
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[1].split() == [
        "as",
        "of",
        "scored",
        "flagged",
        "inactive",
        "of",
        "flagged",
        "precision",
        "recall",
        "ROC",
        "AUC",
    ]
    assert [ln.split()[0] for ln in lines[2:6]] == [
        "2026-03-01",
        "2026-03-31",
        "2026-04-30",
        "2026-05-30",
    ]
    bad = CliRunner().invoke(cli, ["risk", "--as-of", "yesterday-ish"], env=env)
    assert bad.exit_code == 2 and "is not a date; use YYYY-MM-DD" in bad.stderr
