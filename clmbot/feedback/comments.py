"""`/clm feedback`: the latest comments, with their scores, a page at a time.

Comments carry personal data (what a customer wrote, who they are), so forgotten customers'
answers are never listed, whatever the filter: their scores still count in the reports,
anonymously, but here nothing of theirs is shown.

Speed: a page is a few rows out of tens of thousands, so it is read the way an index gives
it. Each (kind, detractor or not) is its own stream, read newest first along the
(kind, responded_at) index and stopped after `offset + limit + 1` rows; the streams are then
merged in one outer ORDER BY. A single `ORDER BY is_detractor DESC, responded_at DESC` would
instead sort every commented answer of the period, looking each one's customer up first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, func, literal, select, union_all
from sqlmodel import Session

from clmbot.feedback.queries import KINDS, Kind, check_kind, check_period
from clmbot.feedback.scores import CSAT_DISSATISFIED_MAX, NPS_PASSIVE_MIN
from clmbot.store.models import Customer, Feedback

# Counting every comment of a year means reading every answer of it (the text is not in an
# index) and its customer: with a segment, 150 ms on SQLite for 1,000. Past this many (twenty
# pages of ten), `total` stops counting and says "at least" (`total_capped`).
COUNT_CAP = 200
MAX_LIMIT = 100

# The highest score of an unhappy answer, per kind: NPS detractors (0-6), CSAT 1-2.
_DETRACTOR_MAX = {"nps": NPS_PASSIVE_MIN - 1, "csat": CSAT_DISSATISFIED_MAX}


@dataclass(frozen=True)
class Comment:
    """One answer with a comment, and who gave it (never a forgotten customer)."""

    kind: Kind
    score: int
    comment: str
    responded_at: datetime
    external_id: str
    name: str
    owner_slack_id: str | None
    is_detractor: bool  # NPS 0-6 or CSAT 1-2


@dataclass(frozen=True)
class CommentPage:
    """`items` from position `offset` of the whole list. `total`: how many comments the
    list holds, counted up to `COUNT_CAP`; when `total_capped`, there are at least that many.
    `has_more`: a next page exists (known exactly, whatever the cap)."""

    items: tuple[Comment, ...]
    offset: int
    total: int
    has_more: bool
    total_capped: bool = False


def comments(
    session: Session,
    *,
    since: datetime,
    now: datetime,
    where: ColumnElement[bool] | None = None,
    kind: Kind | None = None,
    detractors_first: bool = False,
    offset: int = 0,
    limit: int = 10,
) -> CommentPage:
    """The answers given in [since, now] with a comment (not blank), newest first, of
    `kind` (both when None), from the customers `where` selects. `detractors_first`: the
    unhappy answers (newest first) before all the others (newest first), for a team that
    wants to call the unhappy ones first."""
    check_period(since, now)
    if offset < 0 or not 0 < limit <= MAX_LIMIT:
        raise ValueError(f"offset must be >= 0 and limit from 1 to {MAX_LIMIT}")
    kinds = KINDS if kind is None else (check_kind(kind),)
    wanted = offset + limit + 1  # one more than the page: is there a next page?
    streams = [
        _stream(k, detractor, since, now, where).limit(wanted).subquery()
        for k in kinds
        for detractor in ((True, False) if detractors_first else (None,))
    ]
    merged: Any = union_all(*(select(*s.c) for s in streams)) if len(streams) > 1 else None
    rows_from = merged.subquery() if merged is not None else streams[0]
    order = [rows_from.c.responded_at.desc(), rows_from.c.id.desc()]
    if detractors_first:
        order.insert(0, rows_from.c.is_detractor.desc())
    rows = session.execute(select(rows_from).order_by(*order).offset(offset).limit(limit + 1)).all()
    items = tuple(
        Comment(
            kind=r.kind,
            score=r.score,
            comment=r.comment.strip(),
            responded_at=r.responded_at,
            external_id=r.external_id,
            name=r.name,
            owner_slack_id=r.owner_slack_id,
            is_detractor=bool(r.is_detractor),
        )
        for r in rows[:limit]
    )
    total, capped = _count(session, kinds, since, now, where)
    return CommentPage(
        items=items,
        offset=offset,
        total=max(total, offset + len(items)) if capped else total,
        has_more=len(rows) > limit,
        total_capped=capped,
    )


def _listed(
    kind: Kind, since: datetime, now: datetime, where: ColumnElement[bool] | None
) -> list[ColumnElement[bool]]:
    """What every listed answer satisfies: of `kind`, in the period, with a comment that is
    not blank, from a customer not forgotten (and matching `where`)."""
    conditions = [
        Feedback.kind == kind,
        Feedback.responded_at >= since,
        Feedback.responded_at <= now,
        Feedback.comment.is_not(None),
        func.trim(Feedback.comment) != "",
        Customer.forgotten_at.is_(None),
    ]
    if where is not None:
        conditions.append(where)
    return conditions


def _stream(
    kind: Kind,
    detractor: bool | None,
    since: datetime,
    now: datetime,
    where: ColumnElement[bool] | None,
) -> Select[Any]:
    """The answers of one kind (only the unhappy ones, or only the others, unless
    `detractor` is None) newest first: an ORDER BY the (kind, responded_at) index gives."""
    unhappy = Feedback.score <= _DETRACTOR_MAX[kind]
    conditions = _listed(kind, since, now, where)
    if detractor is True:
        conditions.append(unhappy)
    elif detractor is False:
        conditions.append(Feedback.score > _DETRACTOR_MAX[kind])
    flag: Any = literal(detractor) if detractor is not None else unhappy
    return (
        select(
            Feedback.id,
            Feedback.kind,
            Feedback.score,
            Feedback.comment,
            Feedback.responded_at,
            Customer.external_id,
            Customer.name,
            Customer.owner_slack_id,
            flag.label("is_detractor"),
        )
        .join(Customer, Customer.id == Feedback.customer_id)
        .where(*conditions)
        .order_by(Feedback.responded_at.desc(), Feedback.id.desc())
    )


def _count(
    session: Session,
    kinds: tuple[Kind, ...],
    since: datetime,
    now: datetime,
    where: ColumnElement[bool] | None,
) -> tuple[int, bool]:
    """How many comments the list holds, up to `COUNT_CAP`: (count, whether it stopped)."""
    total = 0
    for kind in kinds:
        first = (
            select(literal(1))
            .select_from(Feedback)
            .join(Customer, Customer.id == Feedback.customer_id)
            .where(*_listed(kind, since, now, where))
            .limit(COUNT_CAP + 1 - total)
            .subquery()
        )
        total += session.execute(select(func.count()).select_from(first)).scalar_one()
        if total > COUNT_CAP:
            return COUNT_CAP, True
    return total, False
