"""The morning's work: the day's risk pass (stored once, whichever copy of the bot gets the
day), then one digest per route, each posted by the copy whose `digests` row went in; and
a click's redraw of the message that shows the alert.

A digest is first a row (with its alerts), then posted, then given its message: posted
once, whatever fails.
- Two copies: the row's unique key (run, route) picks the one that prepares it; the one that
  posts holds the digest's lock for as long as it posts (PostgreSQL: an advisory lock, which
  dies with its connection), so a copy that finds it unposted and held leaves it alone.
- Each message is recorded as soon as Slack answers (the head's ts on the row, a thread
  part's on its alerts), so a later try posts only what is missing.
- Slack answered 5xx, or the line dropped, after a post: it may have been posted. Every
  digest message carries its id in Slack's message metadata; before posting again, the
  channel (or the thread) is looked at, and a message found there is recorded instead.
- A copy died, or the database went away, between posting and recording: the row stays
  unposted, the next try (the daily job's backoff, or a restart's catch-up, by any copy)
  looks in the channel first, the same way.
The look-up needs `channels:history` (`groups:history` for a private channel); without it,
a digest whose post was cut off is posted again, and the log says so: twice rather than
never.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError
from sqlalchemy import Engine, Executable, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError

from clmbot.alerts.select import AlertLine, alert_lines, resolve, to_raise
from clmbot.alerts.settings import Route
from clmbot.config import Settings
from clmbot.risk import retention, runs
from clmbot.risk.score import CustomerRisk
from clmbot.segments import SegmentError
from clmbot.segments import resolve as resolve_segment
from clmbot.slack.posted_once import post_once
from clmbot.slack.posted_once import why as _why
from clmbot.slack.retries import SERVER_ERRORS, once_client
from clmbot.slack.views import digest as views
from clmbot.store.db import pg_lock_key, session_scope
from clmbot.store.models import OPEN, Alert, Digest, RiskRun

log = logging.getLogger("clmbot.alerts")
_D = Digest.__table__
_R = RiskRun.__table__
# Thread replies of ten after the digest; beyond them, the digest points to /clm at-risk
# (a first morning, or a big drift, must not post a thousand messages).
MOST_THREAD_PARTS = 5
# The metadata event type of every digest message (the head, the all-quiet note, a thread
# part): how a later try finds what an earlier one posted.
DIGEST_EVENT = "clmbot_digest"
# SQLite has one bot process: its posters wait for each other here.
_SQLITE_POSTING = threading.Lock()


@dataclass
class DayReport:
    day: date
    ran: bool  # this copy ran the pass (False: another had the day)
    scored: int = 0
    at_risk: int = 0
    top: list[CustomerRisk] = field(default_factory=list)
    posted: dict[str, int] = field(default_factory=dict)  # route -> customers raised
    problems: list[str] = field(default_factory=list)
    # Routes whose digest Slack did not take (after its retries): worth another try later.
    pending: list[str] = field(default_factory=list)
    # Older passes whose scores this run deleted (`[risk] keep_scores_days`).
    pruned: retention.Pruned | None = None


class Pending(RuntimeError):
    """Some digest of the day is not posted yet because Slack did not answer: the daily job
    tries again later (see `clmbot.slack.scheduler`)."""


def run_day(
    engine: Engine,
    client: WebClient | None,
    settings: Settings,
    *,
    day: date,
    as_of: datetime,
    now: datetime,
    by: str,
    post: bool = True,
    retake_own: bool = False,
    sleep: Callable[[float], None] = time.sleep,
) -> DayReport:
    """The day's pass and digests; again, after a failure, the digests not posted yet.

    `retake_own`: `by` names this process alone, so a pass it claimed and left unfinished
    (the database went away mid-way) is its own lost try, taken again now rather than
    an hour later. A database that does not answer raises: the caller tries again."""
    if retake_own:
        _retake_own(engine, day, by, now)
    outcome = runs.run(engine, day, as_of=as_of, now=now, settings=settings, by=by)
    if outcome is None:
        run_id = _finished_run(engine, day)
        if run_id is None or not post or client is None:
            return DayReport(day, ran=False)  # another copy is on it, or nothing to post
        report = DayReport(day, ran=False)
        if not _unposted_routes(engine, run_id, settings.routes):
            return report
    else:
        run_id = outcome.run_id
        report = DayReport(day, True, outcome.scored, outcome.at_risk, outcome.top)
    with session_scope(engine) as session:
        resolve(
            session,
            now=now,
            run_id=run_id,
            threshold=settings.risk.threshold,
            stages=settings.lifecycle.stages,
        )
    if post and client is not None:
        for route in settings.routes:
            try:
                raised = post_digest(engine, client, settings, run_id, day, route, now, sleep=sleep)
            except SegmentError as exc:
                report.problems.append(f"route {route.name}: {exc}")
                log.error("the digest for route %s was not posted: %s", route.name, exc)
                continue
            except (SlackApiError, SlackRequestError, OSError) as exc:
                if isinstance(exc, SlackApiError) and not _transient(exc):
                    report.problems.append(f"route {route.name}: {exc.response.get('error')}")
                    log.error(
                        "the digest for route %s was not posted: Slack said %s",
                        route.name,
                        exc.response.get("error"),
                    )
                    continue
                report.pending.append(route.name)
                log.warning(
                    "the digest for route %s is not posted yet (%s); tried again later",
                    route.name,
                    _why(exc),
                )
                continue
            if raised is not None:
                report.posted[route.name] = raised
    if outcome is not None:
        report.pruned = _prune(engine, settings, now, spare=run_id)
    return report


def _prune(engine: Engine, settings: Settings, now: datetime, *, spare: int) -> retention.Pruned:
    """Old passes' scores, once the day's digests are out (nobody waits for this). A
    database lost meanwhile leaves the rest for tomorrow's run: the pass and its digests
    are done, and are not to be tried again for it."""
    days = settings.risk.keep_scores_days
    try:
        return retention.prune(
            engine, now=now, keep=timedelta(days=days) if days else None, spare=spare
        )
    except DBAPIError as exc:
        log.warning("old risk scores not deleted (%s); the next day's pass tries again", _why(exc))
        return retention.Pruned(0, 0)


def post_digest(
    engine: Engine,
    client: WebClient,
    settings: Settings,
    run_id: int,
    day: date,
    route: Route,
    now: datetime,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> int | None:
    """Post one route's digest; None when another copy has it, or it is posted already.
    Returns how many were raised."""
    digest_id, fresh = _prepare(engine, settings, run_id, route, now)
    with _holding(engine, digest_id) as held:
        if held is None:
            return None
        poster = _Poster(client, route.channel, digest_id, day, route.name, sleep, look=not fresh)
        with session_scope(engine) as session:
            lines = alert_lines(session, digest_id=digest_id)
            placed = set() if fresh else _placed_ids(session, digest_id)
        if not lines:
            if settings.alerts.all_quiet:
                poster.post(views.all_quiet(day).as_kwargs(), part=None)
            held.record(_posted(digest_id, None, now))
            return 0
        _post_lines(held, poster, settings, lines, placed, day, route, digest_id, now)
        return len(lines)


def _post_lines(
    held: _Held,
    poster: _Poster,
    settings: Settings,
    lines: list[AlertLine],
    placed: set[int],
    day: date,
    route: Route,
    digest_id: int,
    now: datetime,
) -> None:
    """The head, then its thread; what an earlier try recorded is not posted again."""
    money = settings.display.money
    zone = settings.timezone
    first, rest = lines[: views.IN_MESSAGE], lines[views.IN_MESSAGE :]
    message = views.digest(
        first,
        total=len(lines),
        mrr=sum(line.mrr or 0 for line in lines),
        day=day,
        route=route.name,
        money=money,
        zone=zone,
        more_in_thread=len(rest),
        beyond=max(len(rest) - views.IN_MESSAGE * MOST_THREAD_PARTS, 0),
        snooze_days=settings.alerts.snooze.days,
    )
    ts = held.message_ts or poster.post(message.as_kwargs(), part=None)
    held.record(_placed([line.id for line in first], route.channel, ts))
    held.record(update(_D).where(_D.c.id == digest_id).values(message_ts=ts))
    shown = rest[: views.IN_MESSAGE * MOST_THREAD_PARTS]
    for n, start in enumerate(range(0, len(shown), views.IN_MESSAGE), start=1):
        part = shown[start : start + views.IN_MESSAGE]
        if all(line.id in placed for line in part):
            continue
        reply = views.thread_part(part, money, zone, settings.alerts.snooze.days)
        reply_ts = poster.post(reply.as_kwargs(), part=n, thread_ts=ts)
        held.record(_placed([line.id for line in part], route.channel, reply_ts))
    held.record(_posted(digest_id, ts, now))  # last: a try cut short is tried again


def redraw(engine: Engine, client: WebClient, settings: Settings, channel: str, ts: str) -> None:
    """The message that shows these alerts, drawn again from what is stored."""
    with session_scope(engine) as session:
        lines = alert_lines(session, message=(channel, ts))
        digest = session.execute(
            Digest.__table__.select().where(
                Digest.__table__.c.channel_id == channel, Digest.__table__.c.message_ts == ts
            )
        ).first()
        day = (
            session.get(RiskRun, digest.run_id).day if digest is not None else None  # type: ignore[union-attr]
        )
    if not lines:
        return
    money, zone = settings.display.money, settings.timezone
    if digest is not None:  # the digest itself: keep its headline
        with session_scope(engine) as session:
            everyone = alert_lines(
                session,
                digest_id=digest.id,
            )
        message = views.digest(
            lines,
            total=len(everyone),
            mrr=sum(line.mrr or 0 for line in everyone),
            day=day or date.today(),
            route=digest.route,
            money=money,
            zone=zone,
            more_in_thread=max(len(everyone) - len(lines), 0),
            snooze_days=settings.alerts.snooze.days,
        )
    else:
        message = views.thread_part(lines, money, zone, settings.alerts.snooze.days)
    client.chat_update(channel=channel, ts=ts, **message.as_kwargs())


def _placed(ids: list[int], channel: str, ts: str) -> Executable:
    return update(Alert).where(Alert.id.in_(ids)).values(channel_id=channel, message_ts=ts)


def _posted(digest_id: int, ts: str | None, now: datetime) -> Executable:
    return update(_D).where(_D.c.id == digest_id).values(message_ts=ts, posted_at=now)


def _prepare(
    engine: Engine, settings: Settings, run_id: int, route: Route, now: datetime
) -> tuple[int, bool]:
    """The route's digest row and its alerts, made by whichever copy inserts it first;
    returns its id, and whether this call made it (False: an earlier try, or another
    copy, did; it may have posted it)."""
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    with session_scope(engine) as session:
        digest_id = session.execute(
            dialect.insert(_D)
            .values(run_id=run_id, route=route.name, channel_id=route.channel, alerted=0)
            .on_conflict_do_nothing()
            .returning(_D.c.id)
        ).scalar()
        if digest_id is None:
            existing = session.execute(
                select(_D.c.id).where(_D.c.run_id == run_id, _D.c.route == route.name)
            ).scalar_one()
            return int(existing), False
        where = None
        if route.segment:
            _, where = resolve_segment(session, route.segment, settings=settings, now=now)
        raised = to_raise(
            session,
            run_id,
            route=route.name,
            where=where,
            threshold=settings.risk.threshold,
            rise=settings.alerts.rise,
            now=now,
            terminal=settings.lifecycle.terminal,
        )
        for r in raised:
            session.add(
                Alert(
                    digest_id=digest_id,
                    customer_id=r.customer_id,
                    risk=r.risk,
                    previous_risk=r.previous,
                    reasons=list(r.reasons),
                    status=OPEN,
                    created_at=now,
                    updated_at=now,
                )
            )
        session.flush()
        session.execute(update(_D).where(_D.c.id == digest_id).values(alerted=len(raised)))
    return int(digest_id), True


@dataclass
class _Held:
    """An unposted digest row this caller holds: what an earlier try recorded, and where
    this one records (in the held transaction on PostgreSQL, at once on SQLite)."""

    message_ts: str | None
    record: Callable[[Executable], object]


@contextmanager
def _holding(engine: Engine, digest_id: int) -> Iterator[_Held | None]:
    """The digest, held while it is posted; None when it is posted, or held by another copy
    that is posting it now. What is recorded is committed at once."""
    query = select(_D.c.message_ts, _D.c.posted_at).where(_D.c.id == digest_id)

    def record(statement: Executable) -> None:
        with engine.begin() as conn:
            conn.execute(statement)

    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            key = {"k": pg_lock_key(conn, f"clmbot digest {digest_id}")}
            held = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), key).scalar()
            conn.commit()
            if not held:
                yield None
                return
            try:
                row = conn.execute(query).first()
                conn.commit()
                if row is None or row.posted_at is not None:
                    yield None
                    return
                yield _Held(row.message_ts, record)
            finally:
                try:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), key)
                    conn.commit()
                except Exception:  # the database went away: the lock went with the connection
                    conn.invalidate()
        return

    with _SQLITE_POSTING:
        with engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None or row.posted_at is not None:
            yield None
            return
        yield _Held(row.message_ts, record)


@dataclass
class _Poster:
    """Posts one digest's messages once each (`clmbot.slack.posted_once`): a lost answer is
    looked for before a retry, and, on a later try (`look`), before the first post too."""

    client: WebClient
    channel: str
    digest_id: int
    day: date
    route: str
    sleep: Callable[[float], None]
    look: bool
    _once: WebClient | None = None

    def post(
        self, kwargs: dict[str, Any], *, part: int | None, thread_ts: str | None = None
    ) -> str:
        payload = {
            "digest_id": self.digest_id,
            "day": self.day.isoformat(),
            "route": self.route,
            "part": part or 0,
        }
        if self._once is None:
            self._once = once_client(self.client)
        return post_once(
            self.client,
            kwargs,
            channel=self.channel,
            event=DIGEST_EVENT,
            payload=payload,
            what=f"digest {self.digest_id} part {part or 0}",
            look_first=self.look,
            thread_ts=thread_ts,
            once=self._once,
            sleep=self.sleep,
        )


def _placed_ids(session: Any, digest_id: int) -> set[int]:
    """The digest's alerts an earlier try showed in a message."""
    return set(
        session.execute(
            select(Alert.id).where(Alert.digest_id == digest_id, Alert.message_ts.is_not(None))
        ).scalars()
    )


def _transient(exc: SlackApiError) -> bool:
    status = exc.response.status_code
    return status == 429 or status in SERVER_ERRORS


def _finished_run(engine: Engine, day: date) -> int | None:
    with engine.connect() as conn:
        return conn.execute(
            select(_R.c.id).where(_R.c.day == day, _R.c.finished_at.is_not(None))
        ).scalar()


def _unposted_routes(engine: Engine, run_id: int, routes: tuple[Route, ...] | list[Route]) -> bool:
    """Whether some route of the run has no digest yet, or one not posted."""
    with engine.connect() as conn:
        posted = set(
            conn.execute(
                select(_D.c.route).where(_D.c.run_id == run_id, _D.c.posted_at.is_not(None))
            ).scalars()
        )
    return any(route.name not in posted for route in routes)


def _retake_own(engine: Engine, day: date, by: str, now: datetime) -> None:
    """Make this worker's unfinished pass of `day` look stale to `runs.claim`, which then
    gives it back at once. (Better in `runs.claim` itself: see the issue's notes.)"""
    with engine.begin() as conn:
        conn.execute(
            update(_R)
            .where(_R.c.day == day, _R.c.by == by, _R.c.finished_at.is_(None))
            .values(started_at=now - runs.STALE - timedelta(seconds=1))
        )
