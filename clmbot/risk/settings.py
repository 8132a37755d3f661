"""`[risk]` in clmbot.toml: the weights and thresholds of the risk score. The defaults work
without tuning; `clmbot backtest` shows what a change would have done on the team's past."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

WEIGHTS = ("detractor", "unhappy_csat", "stuck", "moved_back", "activity_fall")
KNOWN = {
    "horizon_days",
    "threshold",
    "stuck_quantile",
    "stuck_stages",
    "keep_scores_days",
    *WEIGHTS,
}
# Each customer's score of a pass is kept this long (the pass's counts for ever): at a
# million customers a pass is a million rows, every day.
KEEP_SCORES_DAYS = 35


@dataclass(frozen=True)
class RiskConfig:
    # "Inactive" means no purchase (or, for those who never bought, no activity) within this.
    horizon: timedelta = timedelta(days=90)
    # A customer at or above this is alerted (and flagged in the backtest).
    threshold: int = 70
    # How much each signal adds, from 0 (ignored) to 1 (certain churn on its own); signals
    # combine as independent chances, so the score stays within 0-100.
    detractor: float = 0.35  # NPS 0-6, or a fall of 3 points or more
    unhappy_csat: float = 0.30  # CSAT 1 or 2
    stuck: float = 0.30  # longer in a stage than most customers stay there
    moved_back: float = 0.30  # moved to an earlier stage within the horizon
    activity_fall: float = 0.25  # half or less of their usual activity in the last 30 days
    stuck_quantile: float = 0.75  # "most customers": this share of completed stays
    # Stages a customer is meant to move on from; None: the funnel's stages but its last two.
    stuck_stages: tuple[str, ...] | None = None
    # Each customer's score in a pass is kept this many days (0: for ever); the pass itself,
    # its counts and the two latest passes' scores are always kept.
    keep_scores_days: int = KEEP_SCORES_DAYS


def parse_risk(body: dict[str, Any]) -> tuple[RiskConfig, str | None]:
    unknown = set(body) - KNOWN
    if unknown:
        return RiskConfig(), (
            f"unknown setting risk.{sorted(unknown)[0]}; known in [risk]: "
            + ", ".join(sorted(KNOWN))
        )
    values: dict[str, Any] = {}
    for key in WEIGHTS:
        value = body.get(key, getattr(RiskConfig, key))
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            return RiskConfig(), f"risk.{key} must be a weight from 0 to 1"
        values[key] = float(value)
    horizon = body.get("horizon_days", 90)
    if isinstance(horizon, bool) or not isinstance(horizon, int) or not 7 <= horizon <= 730:
        return RiskConfig(), "risk.horizon_days must be a whole number of days from 7 to 730"
    threshold = body.get("threshold", 70)
    if isinstance(threshold, bool) or not isinstance(threshold, int) or not 1 <= threshold <= 100:
        return RiskConfig(), "risk.threshold must be a whole number from 1 to 100"
    quantile = body.get("stuck_quantile", 0.75)
    if (
        isinstance(quantile, bool)
        or not isinstance(quantile, int | float)
        or not 0.5 <= quantile < 1
    ):
        return RiskConfig(), "risk.stuck_quantile must be a share from 0.5 to 0.99, e.g. 0.75"
    stages = body.get("stuck_stages")
    if stages is not None and (
        not isinstance(stages, list) or not all(isinstance(s, str) for s in stages)
    ):
        return RiskConfig(), 'risk.stuck_stages must be a list of stages, e.g. ["consideration"]'
    keep = body.get("keep_scores_days", KEEP_SCORES_DAYS)
    if isinstance(keep, bool) or not isinstance(keep, int) or not (keep == 0 or 2 <= keep <= 3650):
        return RiskConfig(), (
            "risk.keep_scores_days must be a whole number of days from 2 to 3650, "
            "or 0 to keep every pass's scores"
        )
    return RiskConfig(
        keep_scores_days=keep,
        horizon=timedelta(days=horizon),
        threshold=threshold,
        stuck_quantile=float(quantile),
        stuck_stages=tuple(stages) if stages is not None else None,
        **values,
    ), None
