"""The bot's background jobs, on APScheduler 3: the survey sender, every few seconds and
whenever someone queues or answers a survey (`wake`); and the morning's risk pass and
digests, at CLMBOT_ALERT_TIME in CLMBOT_TIMEZONE; and at start, the latest day whose alert
time has passed (today's, else yesterday's), when no copy has run it: a morning missed while
the bot was down runs then, and only the latest (a week away does not post seven digests).

The job store is in memory, on purpose: APScheduler 3 must not share a job store between
processes. Several copies of the bot each run their own sender; the queue's claims (see
`clmbot.surveys.outbox`) make sure each survey is sent by one of them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from apscheduler.schedulers.background import BackgroundScheduler

from clmbot.slack.survey_sender import SurveySender

log = logging.getLogger("clmbot.surveys")

SENDER_EVERY_SECONDS = 5
_SENDER = "survey-sender"


_DAILY = "daily-risk-pass"


class Jobs:
    def __init__(
        self,
        sender: SurveySender,
        clock: Callable[[], datetime],
        *,
        daily: Callable[[datetime, date], object] | None = None,
        at: time = time(9, 0),
        zone: tzinfo = UTC,
    ) -> None:
        self._sender = sender
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
        self._scheduler.add_job(
            self._send,
            "interval",
            seconds=SENDER_EVERY_SECONDS,
            id=_SENDER,
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
        now = self._clock()
        try:
            self._daily(now, day or now.astimezone(self._zone).date())
        except Exception:
            log.exception("the daily risk pass failed; it runs again tomorrow, or at a restart")

    def wake(self) -> None:
        """Run the sender now (a survey was queued or answered): not in 5 seconds."""
        try:
            self._scheduler.modify_job(_SENDER, next_run_time=datetime.now(UTC))
        except Exception:  # stopped, or stopping: the next start sends it
            log.debug("the survey sender could not be woken", exc_info=True)

    def stop(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)

    def _send(self) -> None:
        try:
            report = self._sender.run_once(self._clock())
        except Exception:
            log.exception("the survey sender failed; it runs again in %ss", SENDER_EVERY_SECONDS)
            return
        done = {k: v for k, v in vars(report).items() if v and k != "errors"}
        if done:
            log.info("survey sender: %s", ", ".join(f"{k} {v}" for k, v in done.items()))
