"""A day's risk pass, stored: claimed by its day (whichever copy of the bot inserts the day
first runs it), every customer's score written in bulk; `clmbot.risk.stored` reads it back
for `/clm at-risk` and segments (`risk>70`).

A pass that died (started, never finished, over an hour ago) may be claimed again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import Engine, delete, insert, update
from sqlalchemy.dialects import postgresql, sqlite

from clmbot.config import Settings
from clmbot.risk.score import CustomerRisk, score_all
from clmbot.store.models import RiskRun, RiskScore

STALE = timedelta(hours=1)
_R = RiskRun.__table__
_S = RiskScore.__table__
_BATCH = 5000


@dataclass(frozen=True)
class RunOutcome:
    run_id: int
    day: date
    as_of: datetime
    scored: int
    at_risk: int  # at or above the threshold
    top: list[CustomerRisk]  # the highest, for a summary


def claim(engine: Engine, day: date, *, as_of: datetime, now: datetime, by: str) -> int | None:
    """The run's id when this caller may run `day`; None when another has it (or did)."""
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    with engine.begin() as conn:
        inserted = conn.execute(
            dialect.insert(_R)
            .values(day=day, as_of=as_of, by=by, started_at=now, scored=0, at_risk=0)
            .on_conflict_do_nothing(index_elements=["day"])
            .returning(_R.c.id)
        ).scalar()
        if inserted is not None:
            return int(inserted)
        taken = conn.execute(
            update(_R)
            .where(
                _R.c.day == day,
                _R.c.finished_at.is_(None),
                _R.c.started_at < now - STALE,
            )
            .values(as_of=as_of, by=by, started_at=now, error=None)
            .returning(_R.c.id)
        ).scalar()
    return None if taken is None else int(taken)


def run(
    engine: Engine, day: date, *, as_of: datetime, now: datetime, settings: Settings, by: str
) -> RunOutcome | None:
    """Score everyone as of `as_of` and store it as `day`'s run; None when `day` is taken."""
    run_id = claim(engine, day, as_of=as_of, now=now, by=by)
    if run_id is None:
        return None
    try:
        with engine.connect() as conn:
            scored = score_all(conn, as_of, config=settings.risk, lifecycle=settings.lifecycle)
        threshold = settings.risk.threshold
        at_risk = sum(r.risk >= threshold for r in scored)
        with engine.begin() as conn:
            conn.execute(delete(_S).where(_S.c.run_id == run_id))  # a stale run's part
            for start in range(0, len(scored), _BATCH):
                conn.execute(
                    insert(_S),
                    [
                        {
                            "run_id": run_id,
                            "customer_id": r.customer_id,
                            "risk": r.risk,
                            "reasons": list(r.reasons),
                        }
                        for r in scored[start : start + _BATCH]
                    ],
                )
            conn.execute(
                update(_R)
                .where(_R.c.id == run_id)
                .values(finished_at=now, scored=len(scored), at_risk=at_risk)
            )
    except Exception as exc:
        with engine.begin() as conn:
            conn.execute(update(_R).where(_R.c.id == run_id).values(error=type(exc).__name__[:200]))
        raise
    return RunOutcome(run_id, day, as_of, len(scored), at_risk, scored[:10])
