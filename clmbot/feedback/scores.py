"""NPS and CSAT arithmetic, with 95% intervals: pure functions of counts, no database.

Kept apart from the queries so the formulas (PRODUCT.md, "Feedback arithmetic") can be
checked by hand against the tests, and so every report (headline, trend month, group) turns
counts into a score the same way.

Why these intervals: NPS and CSAT are read off small samples (a segment, a month), where the
plain normal interval collapses to zero width at 0% or 100% and claims certainty that is not
there. The adjusted Wald interval for NPS (add ¾ to promoters and detractors, 3 to n) and the
Wilson interval for a proportion both stay honest at the extremes and at small n.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import sqrt

Z95 = 1.96  # two-sided 95% normal quantile

NPS_PROMOTER_MIN = 9  # 9-10
NPS_PASSIVE_MIN = 7  # 7-8; 0-6 are detractors
CSAT_SATISFIED_MIN = 4  # 4-5 count as satisfied
CSAT_DISSATISFIED_MAX = 2  # 1-2: the CSAT counterpart of a detractor (for comments)


@dataclass(frozen=True)
class NpsScore:
    """An NPS over `n` answers. `score` is %promoters - %detractors, -100..+100; `low` and
    `high` bound its 95% interval (adjusted Wald). All three are None when `n` is 0:
    no answers is not a score of 0."""

    promoters: int
    passives: int
    detractors: int
    n: int
    score: float | None
    low: float | None
    high: float | None


@dataclass(frozen=True)
class CsatScore:
    """A CSAT over `n` answers: the share of 4s and 5s in percent, 0..100, with its 95%
    Wilson interval. `unsatisfied` counts the 1s, 2s and 3s (everything not satisfied), so
    `satisfied + unsatisfied == n`. None when `n` is 0."""

    satisfied: int
    unsatisfied: int
    n: int
    score: float | None
    low: float | None
    high: float | None


Score = NpsScore | CsatScore


def nps(promoters: int, passives: int, detractors: int) -> NpsScore:
    """The NPS of these counts, with its adjusted Wald 95% interval, clipped to ±100."""
    n = promoters + passives + detractors
    if n == 0:
        return NpsScore(promoters, passives, detractors, 0, None, None, None)
    score = 100.0 * (promoters - detractors) / n
    n_adj = n + 3
    p = (promoters + 0.75) / n_adj
    d = (detractors + 0.75) / n_adj
    centre = p - d
    half = Z95 * sqrt(max(p + d - centre * centre, 0.0) / n_adj)
    low = max(-100.0, 100.0 * (centre - half))
    high = min(100.0, 100.0 * (centre + half))
    return NpsScore(promoters, passives, detractors, n, score, low, high)


def csat(satisfied: int, unsatisfied: int) -> CsatScore:
    """The CSAT of these counts, in percent, with its Wilson 95% interval."""
    n = satisfied + unsatisfied
    if n == 0:
        return CsatScore(satisfied, unsatisfied, 0, None, None, None)
    share = satisfied / n
    z2 = Z95 * Z95
    denominator = 1 + z2 / n
    centre = (share + z2 / (2 * n)) / denominator
    half = Z95 * sqrt(share * (1 - share) / n + z2 / (4 * n * n)) / denominator
    low = max(0.0, 100.0 * (centre - half))
    high = min(100.0, 100.0 * (centre + half))
    return CsatScore(satisfied, unsatisfied, n, 100.0 * share, low, high)


def nps_category(score: int) -> str:
    """'promoter', 'passive' or 'detractor': for showing one answer."""
    if score >= NPS_PROMOTER_MIN:
        return "promoter"
    return "passive" if score >= NPS_PASSIVE_MIN else "detractor"


def is_detractor(kind: str, score: int) -> bool:
    """An unhappy answer: NPS 0-6, or CSAT 1-2 (a 3 on CSAT is neutral, not a complaint)."""
    if kind == "nps":
        return score < NPS_PASSIVE_MIN
    return score <= CSAT_DISSATISFIED_MAX
