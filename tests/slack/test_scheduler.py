"""The bot's background jobs (`clmbot.slack.scheduler`): the upkeep of the customers' kept
latest values runs as the bot starts, and a failure of it is one log line, not a stop."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy.exc import OperationalError

from clmbot.slack.scheduler import Jobs

NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)


class IdleSender:
    def run_once(self, now: Any) -> SimpleNamespace:
        return SimpleNamespace()


def _jobs(upkeep) -> Jobs:
    return Jobs(IdleSender(), lambda: NOW, upkeep=upkeep)  # type: ignore[arg-type]


def test_the_upkeep_runs_as_the_bot_starts():
    ran = threading.Event()
    jobs = _jobs(ran.set)
    jobs.start()
    try:
        assert ran.wait(10)
    finally:
        jobs.stop()


def _logged_failure(caplog, error: Exception) -> logging.LogRecord:
    """The one log line of an upkeep that raised `error` once the bot started."""
    tries = threading.Event()

    def failing() -> None:
        tries.set()
        raise error

    jobs = _jobs(failing)
    with caplog.at_level(logging.WARNING, logger="clmbot.surveys"):
        jobs.start()
        try:
            assert tries.wait(10)
        finally:
            jobs.stop()
    (record,) = [r for r in caplog.records if "latest values" in r.getMessage()]
    return record


def test_a_failed_upkeep_is_logged_once_and_the_jobs_go_on(caplog):
    record = _logged_failure(caplog, RuntimeError("a bug"))
    assert record.levelno == logging.ERROR and "segments ask the tables" in record.getMessage()


def test_an_unreachable_database_is_a_warning_without_a_traceback(caplog):
    down = OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused"))
    record = _logged_failure(caplog, down)
    assert record.levelno == logging.WARNING and record.exc_info is None
