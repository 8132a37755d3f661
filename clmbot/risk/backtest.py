"""Replaying the risk score over past dates: for each as-of date, who it would have flagged,
and who then went inactive within the horizon, so a team can test its rules on its own
history before changing them.

Inactive: no purchase within the horizon for a customer who had bought by then; no
activity at all for one who had not.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from scipy.stats import rankdata
from sqlalchemy import Connection, select

from clmbot.config import LifecycleConfig
from clmbot.risk.facts import PURCHASE
from clmbot.risk.score import score_all
from clmbot.risk.settings import RiskConfig
from clmbot.store.models import Event

_E = Event.__table__


@dataclass(frozen=True)
class BacktestLine:
    as_of: datetime
    scored: int
    flagged: int
    flagged_inactive: int
    inactive: int
    auc: float | None  # ROC AUC of the risk for "inactive within the horizon"

    @property
    def precision(self) -> float | None:
        return self.flagged_inactive / self.flagged if self.flagged else None

    @property
    def recall(self) -> float | None:
        return self.flagged_inactive / self.inactive if self.inactive else None


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float | None:
    """The chance a random positive scores above a random negative (ties count half)."""
    pos = int(positive.sum())
    neg = len(positive) - pos
    if pos == 0 or neg == 0:
        return None
    ranks = rankdata(scores)
    return float((ranks[positive].sum() - pos * (pos + 1) / 2) / (pos * neg))


def backtest(
    conn: Connection,
    as_of_dates: list[datetime],
    *,
    config: RiskConfig,
    lifecycle: LifecycleConfig,
) -> list[BacktestLine]:
    lines = []
    for as_of in as_of_dates:
        scored = score_all(conn, as_of, config=config, lifecycle=lifecycle)
        if not scored:
            lines.append(BacktestLine(as_of, 0, 0, 0, 0, None))
            continue
        end = as_of + config.horizon
        bought_before = _who(conn, as_of - timedelta(days=36500), as_of, PURCHASE)
        bought_after = _who(conn, as_of, end, PURCHASE)
        active_after = _who(conn, as_of, end, None)
        risk = np.array([r.risk for r in scored], dtype=float)
        inactive = np.array(
            [
                r.customer_id
                not in (bought_after if r.customer_id in bought_before else active_after)
                for r in scored
            ]
        )
        flagged = risk >= config.threshold
        lines.append(
            BacktestLine(
                as_of,
                len(scored),
                int(flagged.sum()),
                int((flagged & inactive).sum()),
                int(inactive.sum()),
                roc_auc(risk, inactive),
            )
        )
    return lines


def _who(conn: Connection, after: datetime, until: datetime, kind: str | None) -> set[int]:
    query = (
        select(_E.c.customer_id)
        .where(_E.c.occurred_at >= after, _E.c.occurred_at < until)
        .distinct()
    )
    if kind is not None:
        query = query.where(_E.c.kind == kind)
    return set(conn.execute(query).scalars())
