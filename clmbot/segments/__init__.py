"""Segments: the customers a filter expression selects (`/clm segment plan:pro nps<7`).

`language` reads an expression into a tree, `compile` turns the tree into a SQLAlchemy
WHERE clause, `query` runs it (summary, CSV export), `saved` keeps expressions under names.
`resolve` is the usual way in: text to WHERE clause, saved names included.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import ColumnElement
from sqlmodel import Session

from clmbot.config import Settings
from clmbot.segments.compile import compile_segment
from clmbot.segments.language import Filter, Segment, SegmentError, parse_segment
from clmbot.segments.query import (
    CustomerRow,
    ExportRow,
    SegmentSummary,
    count,
    iter_rows,
    summarise,
    write_csv,
)
from clmbot.segments.saved import (
    SavedSegmentInfo,
    delete_segment,
    list_segments,
    save_segment,
    saved_map,
)

__all__ = [
    "CustomerRow",
    "ExportRow",
    "Filter",
    "SavedSegmentInfo",
    "Segment",
    "SegmentError",
    "SegmentSummary",
    "compile_segment",
    "count",
    "delete_segment",
    "iter_rows",
    "list_segments",
    "parse_segment",
    "resolve",
    "save_segment",
    "saved_map",
    "summarise",
    "write_csv",
]


def resolve(
    session: Session,
    text: str,
    *,
    settings: Settings,
    now: datetime,
    actor_id: str | None = None,
    saved: Mapping[str, str] | None = None,
) -> tuple[Segment, ColumnElement[bool]]:
    """`text` parsed (saved names expanded) and compiled for `session`'s database, as of
    `now`, for `actor_id` (`owner:@me`). Raises `SegmentError`, whose position is in `text`.
    `saved`: the saved segments, when the caller resolves many and has read them once."""
    if saved is None:
        saved = saved_map(session)
    segment = parse_segment(text, stages=settings.lifecycle.stages, saved=saved)
    where = compile_segment(
        segment,
        now=now,
        dialect=session.get_bind().dialect.name,
        zone=settings.timezone,
        actor_id=actor_id,
    )
    return segment, where
