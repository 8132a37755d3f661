"""Saved segments: an expression kept under a name, used as a bare word in other expressions.

Names are one word (letters, digits, `-`, `_`, starting with a letter), compared in any case
and stored lower-cased. A name may not be a field (`plan`) or a word the commands read around
a segment (`export`, `since`, `by`, `chart`, …), or `/clm nps vip since 30d` could not be
told apart. A saved expression is checked when saved and may not use other saved names:
expansion is one level deep, so it cannot loop, and deleting a segment breaks no other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlmodel import Session

from clmbot.config import Settings
from clmbot.segments.language import FIELDS, SegmentError, parse_segment
from clmbot.store.models import SavedSegment

MAX_NAME = 40
_NAME = re.compile(r"[a-z][a-z0-9_-]*")
# Words the commands read before or after a segment, and the commands themselves.
RESERVED = frozenset(
    {
        "save", "delete", "list", "export", "by", "since", "chart", "detractors", "status",
        "help", "all", "none", "me", "and", "or", "not", "attr", "csv",
        "segment", "segments", "customer", "stage", "funnel", "nps", "csat", "feedback",
        "survey", "at-risk", "risk", "forget", "audit",
    }
)  # fmt: skip


@dataclass(frozen=True)
class SavedSegmentInfo:
    name: str  # lower case
    expression: str
    created_by: str
    created_at: datetime
    updated_at: datetime


def check_name(name: str) -> str:
    """`name` lower-cased, or `SegmentError` (position 1: the name) saying what to change."""
    lower = name.strip().lower()
    if not _NAME.fullmatch(lower):
        raise SegmentError(
            f"'{name[:MAX_NAME]}' cannot name a segment; use one word of letters, digits, - and "
            "_, starting with a letter, e.g. vip or at-risk-pro",
            1,
        )
    if len(lower) > MAX_NAME:
        raise SegmentError(
            f"the name is {len(lower)} characters long; the most is {MAX_NAME}", MAX_NAME + 1
        )
    if lower in FIELDS or lower in RESERVED:
        raise SegmentError(
            f"'{lower}' is a word clmbot reads in commands and filters; choose another name, "
            f"e.g. my-{lower}",
            1,
        )
    return lower


def save_segment(
    session: Session,
    name: str,
    expression: str,
    *,
    by: str,
    now: datetime,
    settings: Settings,
) -> tuple[SavedSegmentInfo, bool]:
    """Saves `expression` as `name`, replacing what that name held. Returns the saved segment
    and whether it replaced one. Raises `SegmentError` for a name or expression that cannot
    be used (positions in the expression's own text). Does not commit."""
    lower = check_name(name)
    # Only the names matter: with allow_saved=False, a name is refused, never expanded.
    names = dict.fromkeys(saved_map(session), "")
    parse_segment(expression, stages=settings.lifecycle.stages, saved=names, allow_saved=False)
    text = expression.strip()
    row = session.scalars(select(SavedSegment).where(SavedSegment.name == lower)).first()
    replaced = row is not None
    if row is None:
        row = SavedSegment(
            name=lower, expression=text, created_by=by, created_at=now, updated_at=now
        )
        session.add(row)
    else:
        row.expression = text
        row.updated_at = now
    session.flush()
    return _info(row), replaced


def delete_segment(session: Session, name: str) -> bool:
    """Deletes the saved segment `name` (any case); False when there was none. Does not
    commit."""
    result = session.execute(delete(SavedSegment).where(SavedSegment.name == name.lower()))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def list_segments(session: Session) -> list[SavedSegmentInfo]:
    """Every saved segment, by name."""
    rows = session.scalars(select(SavedSegment).order_by(SavedSegment.name)).all()
    return [_info(r) for r in rows]


# Read on every segment asked: made once, and run as the Core statement it is.
_ALL_SAVED = select(SavedSegment.__table__.c.name, SavedSegment.__table__.c.expression)


def saved_map(session: Session) -> dict[str, str]:
    """Name -> expression, for `parse_segment(saved=…)`."""
    rows = session.connection().execute(_ALL_SAVED).all()
    return {name: expression for name, expression in rows}


def _info(row: SavedSegment) -> SavedSegmentInfo:
    return SavedSegmentInfo(
        row.name, row.expression, row.created_by, row.created_at, row.updated_at
    )
