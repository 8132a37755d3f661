"""The team-wide reports worked out once as the bot starts, in the background.

Kept reports (`clmbot.store.cache`) live in each process's memory, so a bot just started
(or restarted by a deploy, or each of `--workers` processes) has none: the first people to
ask for the funnel, NPS, CSAT or the at-risk list would each wait while it is worked out,
seconds at a million customers, and every command behind them would wait for the cores.
Working them out as the bot comes up, at the lowest CPU priority, means the first asks
are given a kept report or wait for the one already under way.

They are asked as a person would ask them (`run_command` with no arguments), so that they
are kept under the very keys the commands use: the default periods, threshold and page.
They read and write nothing else (none of these commands writes), and a failure is only
logged: a report not warmed is worked out when first asked, as before.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Engine

from clmbot.commands.run import run_command
from clmbot.commands.spec import Actor
from clmbot.config import Settings
from clmbot.store import cache
from clmbot.store.db import session_scope

log = logging.getLogger(__name__)

WARMED = ("funnel", "nps", "csat", "at-risk")
WARMER = Actor("clmbot:warm-up", is_admin=False)


def warm_reports(
    engine: Engine, settings: Settings, clock: Callable[[], datetime]
) -> threading.Thread:
    """Start working `WARMED` out on a thread of its own; returned for tests to join."""

    def work() -> None:
        cache.lowest_priority()
        started = time.monotonic()
        for command in WARMED:
            try:
                with session_scope(engine) as session:
                    run_command(
                        command, session=session, settings=settings, now=clock(), actor=WARMER
                    )
            except Exception as error:  # a report not warmed is worked out when first asked
                log.warning("could not work out %s ahead (%s)", command, type(error).__name__)
        log.info("team-wide reports worked out ahead in %.1f s", time.monotonic() - started)

    thread = threading.Thread(target=work, name="clmbot-warm-up", daemon=True)
    thread.start()
    return thread
