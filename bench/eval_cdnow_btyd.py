"""The published baselines on the same CDNOW split as bench/eval_cdnow.py, fitted here:
BG/NBD and Pareto/NBD (ranked by expected purchases in the 39 weeks after 1997-09-30),
BG/NBD's P(alive), and days since the last purchase.

It needs the `lifetimes` package (0.11.3, the models and the data), which clmbot does not
depend on: run it in a virtual environment of its own,

    python3 -m venv /tmp/btyd && /tmp/btyd/bin/pip install lifetimes==0.11.3
    /tmp/btyd/bin/python bench/eval_cdnow_btyd.py

Measured: BG/NBD 0.763, Pareto/NBD 0.769, BG/NBD's P(alive) 0.320, recency 0.759 (ROC AUC
for "no purchase in the next 39 weeks"; clmbot's risk: 0.770).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from pathlib import Path

import lifetimes
import numpy as np
from lifetimes import BetaGeoFitter, ParetoNBDFitter
from scipy.stats import rankdata

CALIBRATION_END, HOLDOUT_END = date(1997, 9, 30), date(1998, 6, 30)


def auc(score: np.ndarray, positive: np.ndarray) -> float:
    ranks = rankdata(score)
    pos = int(positive.sum())
    return float((ranks[positive].sum() - pos * (pos + 1) / 2) / (pos * (len(positive) - pos)))


def main() -> None:
    text = (Path(lifetimes.__file__).parent / "datasets" / "CDNOW_master.txt").read_text()
    bought: dict[str, set[date]] = defaultdict(set)
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 4:
            d = parts[1]
            bought[parts[0]].add(date(int(d[:4]), int(d[4:6]), int(d[6:])))
    x, t_x, age, gone = [], [], [], []
    for days in bought.values():
        before = sorted(d for d in days if d <= CALIBRATION_END)
        if not before:
            continue
        x.append(len(before) - 1)
        t_x.append((before[-1] - before[0]).days)
        age.append((CALIBRATION_END - before[0]).days)
        gone.append(not any(CALIBRATION_END < d <= HOLDOUT_END for d in days))
    f, r, t = (np.array(v, dtype=float) for v in (x, t_x, age))
    y = np.array(gone)
    horizon = (HOLDOUT_END - CALIBRATION_END).days
    bg = BetaGeoFitter().fit(f, r, t)
    pn = ParetoNBDFitter().fit(f, r, t)
    expected_bg = bg.conditional_expected_number_of_purchases_up_to_time(horizon, f, r, t)
    expected_pn = pn.conditional_expected_number_of_purchases_up_to_time(horizon, f, r, t)
    print(f"{len(y):,} customers, {y.mean():.0%} buy nothing in the next 39 weeks")
    print(f"  BG/NBD expected purchases      ROC AUC {auc(-expected_bg, y):.4f}")
    print(f"  Pareto/NBD expected purchases  ROC AUC {auc(-expected_pn, y):.4f}")
    alive = bg.conditional_probability_alive(f, r, t)
    print(f"  BG/NBD P(alive)                ROC AUC {auc(-alive, y):.4f}")
    print(f"  days since the last purchase   ROC AUC {auc(t - r, y):.4f}")


if __name__ == "__main__":
    main()
