"""Forgetting old passes' scores: a pass writes a row per customer, every day, so at a
million customers `risk_scores` would grow by a million rows a day for as long as the bot
runs. What reads scores reads the latest pass and the one before it (`/clm at-risk`, the
card, segments, the digest's "rose by", the Home tab); the backtest scores the past afresh
from the events. So a pass older than `[risk] keep_scores_days` loses its customers' scores
and keeps its own row (its day, how many were scored and at risk), marked
`scores_pruned_at`, so that nothing compares a pass with one whose scores are gone.

The rows go in chunks, each its own short transaction: on SQLite a million-row delete in
one would hold the one writer lock for seconds, and every stage move and acknowledgement
would wait behind it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, select, update

from clmbot.store.models import RiskRun, RiskScore

log = logging.getLogger(__name__)

# The latest passes whose scores are kept whatever their age: the latest is what at-risk
# reads, the one before is what the digest and the Home tab measure a rise against.
ALWAYS_KEPT = 2
CHUNK = 10_000  # rows deleted per transaction: about 35 ms on SQLite
_R = RiskRun.__table__
_S = RiskScore.__table__


@dataclass(frozen=True)
class Pruned:
    passes: int  # passes whose scores were deleted
    rows: int  # score rows deleted


def prune(
    engine: Engine, *, now: datetime, keep: timedelta | None, spare: int | None = None
) -> Pruned:
    """Delete the scores of every finished pass made as of more than `keep` before `now`,
    but the `ALWAYS_KEPT` latest and `spare` (a past day just filled in by hand, whose
    scores someone is about to read). `keep` None keeps everything. Running it twice, or
    in two copies at once, deletes each row once: a pass is marked pruned in the
    transaction that deletes its last rows."""
    if keep is None:
        return Pruned(0, 0)
    with engine.connect() as conn:
        latest = (
            select(_R.c.id)
            .where(_R.c.finished_at.is_not(None))
            .order_by(_R.c.as_of.desc(), _R.c.id.desc())
            .limit(ALWAYS_KEPT)
        )
        old = (
            conn.execute(
                select(_R.c.id)
                .where(
                    _R.c.finished_at.is_not(None),
                    _R.c.scores_pruned_at.is_(None),
                    _R.c.as_of < now - keep,
                    _R.c.id.not_in(latest.scalar_subquery()),
                    *([] if spare is None else [_R.c.id != spare]),
                )
                .order_by(_R.c.as_of)
            )
            .scalars()
            .all()
        )
    passes = rows = 0
    for run_id in old:
        rows += _prune_one(engine, run_id, now)
        passes += 1
    if passes:
        log.info(
            "deleted the scores of %d risk pass(es) older than %s: %d rows", passes, keep, rows
        )
    return Pruned(passes, rows)


def _prune_one(engine: Engine, run_id: int, now: datetime) -> int:
    """One pass's scores, a chunk per transaction, then its mark with the last chunk."""
    deleted = 0
    while True:
        with engine.begin() as conn:
            chunk = (
                select(_S.c.customer_id)
                .where(_S.c.run_id == run_id)
                .order_by(_S.c.customer_id)
                .limit(CHUNK)
            )
            gone = conn.execute(
                delete(_S).where(
                    _S.c.run_id == run_id, _S.c.customer_id.in_(chunk.scalar_subquery())
                )
            ).rowcount
            deleted += max(gone, 0)
            if gone < CHUNK:
                conn.execute(
                    update(_R)
                    .where(_R.c.id == run_id, _R.c.scores_pruned_at.is_(None))
                    .values(scores_pruned_at=now)
                )
                return deleted
