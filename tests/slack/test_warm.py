"""The team-wide reports worked out as the bot starts: the first asks after a start find them
kept, and a report that cannot be worked out is only logged, without what it read."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from clmbot.commands.run import run_command
from clmbot.commands.spec import Actor
from clmbot.config import Settings
from clmbot.slack.warm import WARMED, warm_reports
from clmbot.store import cache
from clmbot.store.db import make_engine, session_scope
from clmbot.store.models import Customer

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
MEMBER = Actor("U0MEMBER", is_admin=False, channel="C0CS", admins=("U0ADMIN",))


def test_the_first_asks_after_a_start_are_given_kept_reports(
    engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with session_scope(engine) as s:
        s.add(
            Customer(external_id="A1", name="Ann", stage="purchase", created_at=NOW, updated_at=NOW)
        )
    warm_reports(engine, settings, lambda: NOW).join(30)
    worked: list[object] = []
    real = cache.kept

    def watched(session, key, **kw):  # type: ignore[no-untyped-def]
        compute = kw["compute"]
        kw["compute"] = lambda: worked.append(key) or compute()
        return real(session, key, **kw)

    monkeypatch.setattr(cache, "kept", watched)
    for command in WARMED:  # as people ask them, seconds later
        with session_scope(engine) as s:
            run_command(
                command, session=s, settings=settings, now=NOW + timedelta(seconds=20), actor=MEMBER
            )
    assert worked == []


def test_a_report_that_cannot_be_worked_out_ahead_is_logged_without_its_data(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bare = make_engine(f"sqlite:///{tmp_path / 'no-tables.db'}")  # never migrated
    with caplog.at_level(logging.INFO, logger="clmbot.slack.warm"):
        warm_reports(bare, Settings(database_url=str(bare.url)), lambda: NOW).join(30)
    bare.dispose()
    failed = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert failed == [f"could not work out {c} ahead (OperationalError)" for c in WARMED]
    assert "worked out ahead" in caplog.text
