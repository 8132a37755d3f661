"""Old passes' scores are deleted after `[risk] keep_scores_days`, their counts kept, and
nothing compares a pass with one whose scores are gone."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from click.testing import CliRunner
from sqlalchemy import func, select

from clmbot.cli import cli
from clmbot.config import Settings
from clmbot.dashboard import my_risk
from clmbot.risk import retention
from clmbot.risk.stored import at_risk
from clmbot.slack.digest import run_day
from clmbot.store.db import session_scope
from clmbot.store.models import RiskRun, RiskScore
from tests.helpers import rows
from tests.risk.test_backtest import TODAY, shop  # noqa: F401  (the fixture)

_S = RiskScore.__table__


def _scores_per_run(engine) -> dict[int, int]:
    with engine.connect() as conn:
        counted = conn.execute(select(_S.c.run_id, func.count()).group_by(_S.c.run_id)).all()
    return {run_id: n for run_id, n in counted}


def _settings(keep: int) -> Settings:
    settings = Settings()
    return replace(settings, risk=replace(settings.risk, keep_scores_days=keep))


def _morning(engine, settings: Settings, days_ago: int):
    at = TODAY - timedelta(days=days_ago)
    return run_day(engine, None, settings, day=at.date(), as_of=at, now=at, by="t", post=False)


def test_each_morning_deletes_the_scores_of_passes_older_than_kept(engine, shop):  # noqa: F811
    settings = _settings(keep=3)
    for days_ago in (9, 6, 5, 4, 1, 0):
        report = _morning(engine, settings, days_ago)
        assert report.ran
    runs = {
        day: (rid, scored, risky, pruned)
        for rid, day, scored, risky, pruned in rows(
            engine, "risk_runs", "id", "day", "scored", "at_risk", "scores_pruned_at"
        )
    }
    scored = _scores_per_run(engine)
    kept = {day for day, (rid, *_) in runs.items() if rid in scored}
    # Made as of more than 3 days before the latest morning: 9, 6, 5 and 4 days ago.
    assert kept == {(TODAY - timedelta(days=d)).date() for d in (1, 0)}
    for day, (rid, n, risky, pruned) in runs.items():
        if day in kept:
            assert pruned is None and scored[rid] == n
        else:
            # The pass stays, with how many it scored and raised, marked with when.
            assert pruned is not None and n > 200 and risky > 0
    # Each morning deletes what aged out since the one before: the morning 5 days ago, the
    # pass of 9 days ago (over 3 days older than it); today's, the pass of 4 days ago.
    assert runs[(TODAY - timedelta(days=9)).date()][3] == TODAY - timedelta(days=5)
    assert runs[(TODAY - timedelta(days=6)).date()][3] == TODAY - timedelta(days=1)
    assert report.pruned == retention.Pruned(1, runs[(TODAY - timedelta(days=4)).date()][1])
    with session_scope(engine) as session:
        page = at_risk(session, now=TODAY, threshold=settings.risk.threshold)
    assert page.day == TODAY.date() and page.total > 0


def test_the_two_latest_passes_stay_however_old(engine, shop):  # noqa: F811
    settings = _settings(keep=2)
    for days_ago in (30, 20):
        _morning(engine, settings, days_ago)
    # A bot that stopped for weeks: the next prune, long after, keeps what at-risk reads
    # and what the digest measures a rise against.
    gone = retention.prune(engine, now=TODAY, keep=timedelta(days=2))
    assert gone == retention.Pruned(0, 0)
    assert len(_scores_per_run(engine)) == 2


def test_nothing_is_deleted_with_keep_zero_and_a_prune_twice_deletes_once(
    engine,
    shop,  # noqa: F811
    monkeypatch,
):
    for days_ago in (40, 30, 20, 0):
        _morning(engine, _settings(keep=0), days_ago)
    assert len(_scores_per_run(engine)) == 4
    monkeypatch.setattr(retention, "CHUNK", 37)  # many chunks, the last one short
    first = retention.prune(engine, now=TODAY, keep=timedelta(days=10))
    assert first.passes == 2 and first.rows > 2 * 200
    assert len(_scores_per_run(engine)) == 2
    assert retention.prune(engine, now=TODAY, keep=timedelta(days=10)) == retention.Pruned(0, 0)


def test_a_past_day_filled_in_by_hand_keeps_its_scores_until_the_next_morning(
    db_url,
    engine,
    shop,  # noqa: F811
    tmp_path,
    monkeypatch,
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "clmbot.toml").write_text("[risk]\nkeep_scores_days = 5\n")
    settings = _settings(keep=5)
    for days_ago in (60, 50, 1, 0):
        _morning(engine, settings, days_ago)
    env = {"DATABASE_URL": db_url}
    done = CliRunner().invoke(cli, ["alerts", "run", "--as-of", "2026-09-15"], env=env)
    assert done.exit_code == 0, done.output
    assert "The pass of 2026-09-15 is stored." in done.stdout
    with engine.connect() as conn:
        filled = conn.execute(
            select(RiskRun.id).where(RiskRun.day == TODAY.replace(month=9, day=15).date())
        ).scalar_one()
    assert _scores_per_run(engine)[filled] > 200
    # Its pass before (50 days ago) has no scores left: the Home tab as of then compares
    # with nothing, rather than calling everyone's risk new against an empty pass.
    with session_scope(engine) as session:
        home = my_risk(session, "U0NOBODY", now=TODAY.replace(month=9, day=16), threshold=70)
    assert home.day == TODAY.replace(month=9, day=15).date() and home.previous_day is None
    # The next morning deletes it, and says so on the command line.
    again = CliRunner().invoke(cli, ["alerts", "run", "--as-of", TODAY.date().isoformat()], env=env)
    assert again.exit_code == 1  # today's pass is taken: nothing ran, nothing pruned
    tomorrow = TODAY + timedelta(days=1)
    report = run_day(
        engine, None, settings, day=tomorrow.date(), as_of=tomorrow, now=tomorrow, by="t"
    )
    assert report.pruned is not None and report.pruned.passes == 1
    assert filled not in _scores_per_run(engine)


def test_the_command_line_says_what_it_deleted(db_url, engine, shop, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.chdir(tmp_path)
    (tmp_path / "clmbot.toml").write_text("[risk]\nkeep_scores_days = 2\n")
    for days_ago in (400, 300, 200):  # made by a release that kept everything
        _morning(engine, _settings(keep=0), days_ago)
    done = CliRunner().invoke(
        cli, ["alerts", "run", "--as-of", "2026-10-31"], env={"DATABASE_URL": db_url}
    )
    assert done.exit_code == 0, done.output
    assert "Deleted the customers' scores of 2 older passes (" in done.stdout
    assert "[risk] keep_scores_days = 2)." in done.stdout
    assert len(_scores_per_run(engine)) == 2
