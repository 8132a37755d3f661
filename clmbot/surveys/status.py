"""`survey status`: each recent run, counted by where its surveys are now."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select
from sqlmodel import Session

from clmbot.store.models import (
    ANSWERED,
    CANCELLED,
    EXPIRED,
    FAILED,
    QUEUED,
    SENDING,
    SENT,
    Survey,
    SurveyRun,
)

RUNS_SHOWN = 10


@dataclass(frozen=True)
class RunStatus:
    run_id: int
    kind: str
    target: str
    created_at: datetime
    created_by: str
    queued: int  # waiting to be sent (their window, or the sender)
    sent: int  # delivered, no answer yet
    answered: int
    expired: int
    cancelled: int  # opted out or no longer to be asked before it went
    failed: int  # Slack refused it (no such user, a DM that cannot be opened)

    @property
    def delivered(self) -> int:
        return self.sent + self.answered + self.expired

    @property
    def response_rate(self) -> float | None:
        """Answered of those delivered."""
        return self.answered / self.delivered if self.delivered else None


def run_statuses(session: Session, *, limit: int = RUNS_SHOWN) -> tuple[list[RunStatus], int]:
    """The latest `limit` runs, newest first, and how many runs there are in all."""
    runs = session.execute(
        select(SurveyRun).order_by(SurveyRun.created_at.desc(), SurveyRun.id.desc()).limit(limit)
    ).scalars()
    runs = list(runs)
    total = session.execute(select(func.count()).select_from(SurveyRun)).scalar() or 0
    if not runs:
        return [], total

    def n(*statuses: str) -> object:
        return func.sum(case((Survey.status.in_(statuses), 1), else_=0))

    counts = {
        row[0]: row[1:]
        for row in session.execute(
            select(
                Survey.run_id,
                n(QUEUED, SENDING),
                n(SENT),
                n(ANSWERED),
                n(EXPIRED),
                n(CANCELLED),
                n(FAILED),
            )
            .where(Survey.run_id.in_([r.id for r in runs]))
            .group_by(Survey.run_id)
        ).all()
    }
    out = []
    for run in runs:
        c = [int(x or 0) for x in counts.get(run.id, (0,) * 6)]
        assert run.id is not None
        out.append(RunStatus(run.id, run.kind, run.target, run.created_at, run.created_by, *c))
    return out, total
