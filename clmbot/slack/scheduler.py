"""The bot's background jobs, on APScheduler 3: the survey sender, every few seconds and
whenever someone queues or answers a survey (`wake`); every minute, the latest event and
answers kept on each customer for segments (`clmbot.store.latest`); and the morning's risk
pass and digests, at CLMBOT_ALERT_TIME in CLMBOT_TIMEZONE; and at start, the latest day
whose alert time has passed (today's, else yesterday's), when no copy has run it: a morning
missed while the bot was down runs then, and only the latest (a week away does not post
seven digests).

When the database does not answer, or Slack does not take a digest, the daily job tries
again with backoff (1 s, 2 s, 4 s … at most 5 minutes apart, for up to 6 hours) on its own
thread: the survey sender goes on meanwhile, and the digest is posted once when they are
back (see `clmbot.slack.digest` for the "once"). Any other failure is a bug: logged, and tried
at the next morning or restart.

The job store is in memory, on purpose: APScheduler 3 must not share a job store between
processes. Several copies of the bot each run their own sender; the queue's claims (see
`clmbot.surveys.outbox`) make sure each survey is sent by one of them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from apscheduler.schedulers.background import BackgroundScheduler

from clmbot.slack.digest import Pending
from clmbot.slack.survey_sender import SurveySender
from clmbot.store.db import database_down

log = logging.getLogger("clmbot.surveys")

SENDER_EVERY_SECONDS = 5
_SENDER = "survey-sender"
# How often the latest event and answers kept on each customer are brought up to date
# (`clmbot.store.latest`): until then, segments ask the tables, as fast as before.
UPKEEP_EVERY_SECONDS = 60
_UPKEEP = "keep-latest"


_DAILY = "daily-risk-pass"


@dataclass(frozen=True)
class Backoff:
    """Seconds between the daily job's tries, doubling from `first` to `most`; it stops
    trying once the waits add up to `give_up_after`."""

    first: float = 1.0
    most: float = 300.0
    give_up_after: float = 6 * 3600.0

    def delays(self) -> Iterator[float]:
        delay, total = self.first, 0.0
        while total + delay <= self.give_up_after:
            yield delay
            total += delay
            delay = min(delay * 2, self.most)


class Jobs:
    def __init__(
        self,
        sender: SurveySender,
        clock: Callable[[], datetime],
        *,
        daily: Callable[[datetime, date], object] | None = None,
        upkeep: Callable[[], object] | None = None,
        at: time = time(9, 0),
        zone: tzinfo = UTC,
        backoff: Backoff = Backoff(),
    ) -> None:
        self._sender = sender
        self._backoff = backoff
        self._stopping = threading.Event()
        # One daily try at a time (the catch-up and the morning's job may meet at a start).
        self._daily_lock = threading.Lock()
        self._clock = clock
        self._daily = daily
        self._at = at
        self._zone = zone
        self._scheduler = BackgroundScheduler(timezone=UTC)
        if daily is not None:
            self._scheduler.add_job(
                self._run_daily,
                "cron",
                hour=at.hour,
                minute=at.minute,
                timezone=zone,
                id=_DAILY,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=3600,  # the default (1 s) drops a run on a busy morning
            )
        self._every(self._send, SENDER_EVERY_SECONDS, _SENDER)
        self._upkeep_work = upkeep
        if upkeep is not None:
            self._every(self._upkeep, UPKEEP_EVERY_SECONDS, _UPKEEP)

    def _every(self, job: Callable[[], None], seconds: int, job_id: str) -> None:
        """`job` now and every `seconds`, one run at a time, missed runs coalesced."""
        self._scheduler.add_job(
            job,
            "interval",
            seconds=seconds,
            id=job_id,
            max_instances=1,
            coalesce=True,
            next_run_time=datetime.now(UTC),
        )

    def start(self) -> None:
        self._scheduler.start()
        now = self._clock()
        local = now.astimezone(self._zone)
        if self._daily is not None:
            # The latest morning due, if no copy has run it (the day's row decides).
            due = local.date() if local.time() >= self._at else local.date() - timedelta(days=1)
            self._scheduler.add_job(
                self._run_daily, args=[due], next_run_time=datetime.now(UTC), id="catch-up"
            )

    def _run_daily(self, day: date | None = None) -> None:
        assert self._daily is not None
        the_day = day or self._clock().astimezone(self._zone).date()
        delays = self._backoff.delays()
        with self._daily_lock:
            while not self._stopping.is_set():
                try:
                    self._daily(self._clock(), the_day)
                    return
                except Exception as exc:
                    if not (database_down(exc) or isinstance(exc, Pending)):
                        log.exception(
                            "the daily risk pass of %s failed; it runs again tomorrow, or at a "
                            "restart",
                            the_day,
                        )
                        return
                    why = str(exc) if isinstance(exc, Pending) else "the database is not answering"
                delay = next(delays, None)
                if delay is None:
                    log.error(
                        "the daily risk pass of %s gave up (%s); it runs again tomorrow, or at "
                        "a restart",
                        the_day,
                        why,
                    )
                    return
                log.warning(
                    "the daily risk pass of %s did not finish (%s); trying again in %ss",
                    the_day,
                    why,
                    delay,
                )
                self._stopping.wait(delay)

    def wake(self) -> None:
        """Run the sender now (a survey was queued or answered): not in 5 seconds."""
        try:
            self._scheduler.modify_job(_SENDER, next_run_time=datetime.now(UTC))
        except Exception:  # stopped, or stopping: the next start sends it
            log.debug("the survey sender could not be woken", exc_info=True)

    def stop(self) -> None:
        self._stopping.set()  # a daily job waiting to try again stops waiting
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)

    def _upkeep(self) -> None:
        assert self._upkeep_work is not None
        try:
            self._upkeep_work()
        except Exception as exc:
            if database_down(exc):
                log.warning(
                    "the customers' latest values wait for the database; tried again in %ss",
                    UPKEEP_EVERY_SECONDS,
                )
                return
            log.exception(
                "the customers' latest values could not be brought up to date; segments ask "
                "the tables meanwhile; tried again in %ss",
                UPKEEP_EVERY_SECONDS,
            )

    def _send(self) -> None:
        try:
            report = self._sender.run_once(self._clock())
        except Exception as exc:
            if database_down(exc):  # not a bug: one line, not a traceback every 5 seconds
                log.warning(
                    "the survey sender waits for the database; it runs again in %ss",
                    SENDER_EVERY_SECONDS,
                )
                return
            log.exception("the survey sender failed; it runs again in %ss", SENDER_EVERY_SECONDS)
            return
        done = {k: v for k, v in vars(report).items() if v and k != "errors"}
        if done:
            log.info("survey sender: %s", ", ".join(f"{k} {v}" for k, v in done.items()))
