"""The morning's work: the day's risk pass (stored once, whichever copy of the bot gets the
day), then one digest per route, each posted by the copy whose `digests` row went in; and
a click's redraw of the message that shows the alert.

A digest is first a row, then posted, then given its message: a copy that dies between
posting and recording leaves the row without a message, and no one posts it again (at most
once: a team would rather miss one digest than read it twice).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import Engine, update
from sqlalchemy.dialects import postgresql, sqlite

from clmbot.alerts.select import alert_lines, resolve, to_raise
from clmbot.alerts.settings import Route
from clmbot.config import Settings
from clmbot.risk import runs
from clmbot.risk.score import CustomerRisk
from clmbot.segments import SegmentError
from clmbot.segments import resolve as resolve_segment
from clmbot.slack.views import digest as views
from clmbot.store.db import session_scope
from clmbot.store.models import OPEN, Alert, Digest, RiskRun

log = logging.getLogger("clmbot.alerts")
_D = Digest.__table__
# Thread replies of ten after the digest; beyond them, the digest points to /clm at-risk
# (a first morning, or a big drift, must not post a thousand messages).
MOST_THREAD_PARTS = 5


@dataclass
class DayReport:
    day: date
    ran: bool  # this copy ran the pass (False: another had the day)
    scored: int = 0
    at_risk: int = 0
    top: list[CustomerRisk] = field(default_factory=list)
    posted: dict[str, int] = field(default_factory=dict)  # route -> customers raised
    problems: list[str] = field(default_factory=list)


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
) -> DayReport:
    outcome = runs.run(engine, day, as_of=as_of, now=now, settings=settings, by=by)
    if outcome is None:
        return DayReport(day, ran=False)
    report = DayReport(day, True, outcome.scored, outcome.at_risk, outcome.top)
    with session_scope(engine) as session:
        resolve(
            session,
            now=now,
            run_id=outcome.run_id,
            threshold=settings.risk.threshold,
            stages=settings.lifecycle.stages,
        )
    if post and client is not None:
        for route in settings.routes:
            try:
                raised = post_digest(engine, client, settings, outcome.run_id, day, route, now)
            except (SegmentError, SlackApiError, OSError) as exc:
                report.problems.append(f"route {route.name}: {exc}")
                log.error("the digest for route %s was not posted: %s", route.name, exc)
                continue
            if raised is not None:
                report.posted[route.name] = raised
    return report


def post_digest(
    engine: Engine,
    client: WebClient,
    settings: Settings,
    run_id: int,
    day: date,
    route: Route,
    now: datetime,
) -> int | None:
    """Post one route's digest; None when another copy has it. Returns how many were raised."""
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    with session_scope(engine) as session:
        digest_id = session.execute(
            dialect.insert(_D)
            .values(run_id=run_id, route=route.name, channel_id=route.channel, alerted=0)
            .on_conflict_do_nothing()
            .returning(_D.c.id)
        ).scalar()
        if digest_id is None:
            return None
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
        lines = alert_lines(
            session,
            digest_id=digest_id,
        )
    money = settings.display.money
    zone = settings.timezone
    if not lines:
        if settings.alerts.all_quiet:
            client.chat_postMessage(channel=route.channel, **views.all_quiet(day).as_kwargs())
        _posted(engine, digest_id, None, now)
        return 0
    first, rest = lines[: views.IN_MESSAGE], lines[views.IN_MESSAGE :]
    total_mrr = sum(line.mrr or 0 for line in lines)
    message = views.digest(
        first,
        total=len(lines),
        mrr=total_mrr,
        day=day,
        route=route.name,
        money=money,
        zone=zone,
        more_in_thread=len(rest),
        beyond=max(len(rest) - views.IN_MESSAGE * MOST_THREAD_PARTS, 0),
        snooze_days=settings.alerts.snooze.days,
    )
    ts = client.chat_postMessage(channel=route.channel, **message.as_kwargs())["ts"]
    _placed(engine, [line.id for line in first], route.channel, ts)
    _posted(engine, digest_id, ts, now)
    shown = rest[: views.IN_MESSAGE * MOST_THREAD_PARTS]
    for start in range(0, len(shown), views.IN_MESSAGE):
        part = shown[start : start + views.IN_MESSAGE]
        reply = views.thread_part(part, money, zone, settings.alerts.snooze.days)
        reply_ts = client.chat_postMessage(
            channel=route.channel, thread_ts=ts, **reply.as_kwargs()
        )["ts"]
        _placed(engine, [line.id for line in part], route.channel, reply_ts)
    return len(lines)


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


def _placed(engine: Engine, ids: list[int], channel: str, ts: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(Alert).where(Alert.id.in_(ids)).values(channel_id=channel, message_ts=ts)
        )


def _posted(engine: Engine, digest_id: int, ts: str | None, now: datetime) -> None:
    with engine.begin() as conn:
        conn.execute(update(_D).where(_D.c.id == digest_id).values(message_ts=ts, posted_at=now))
