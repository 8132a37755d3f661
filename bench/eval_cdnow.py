"""How well the risk score ranks who stops buying, on a real public purchase history.

The data: CDNOW (Fader, Hardie & Lee), every purchase of the 23,570 customers who first
bought at the CD retailer in the first quarter of 1997, through June 1998: 69,659 rows of
customer, day, CDs and dollars. It ships inside the `lifetimes` package on PyPI
(lifetimes/datasets/CDNOW_master.txt), which this script downloads with pip (nothing of it
is kept in this repository), unless --file names a copy.

The test, as the buy-till-you-die literature runs it: calibrate on the 39 weeks to
1997-09-30, and rank who makes no purchase in the 39 weeks after. The events are imported
with `clmbot import events` into a new SQLite file, scored with `clmbot risk`'s service as
of the end of 1997-09-30 with a 273-day horizon, and compared, by ROC AUC, with days since
the last purchase alone (the published models: BG/NBD and Pareto/NBD ranked by expected
purchases about 0.77, recency about 0.76; BG/NBD's P(alive) alone worse than chance).

    python bench/eval_cdnow.py [--file CDNOW_master.txt]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import zipfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np

from clmbot.config import Settings
from clmbot.importing.runner import import_file
from clmbot.risk.backtest import backtest, roc_auc
from clmbot.risk.settings import RiskConfig
from clmbot.store.db import make_engine
from clmbot.store.migrate import upgrade

CALIBRATION_END = date(1997, 9, 30)
HOLDOUT = timedelta(weeks=39)


def cdnow_text(folder: Path) -> str:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(folder),
         "lifetimes==0.11.3"],
        check=True,
    )  # fmt: skip
    wheel = next(folder.glob("*ifetimes-0.11.3-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        return z.read("lifetimes/datasets/CDNOW_master.txt").decode()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--file", type=Path)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="clmbot-cdnow-"))
    text = args.file.read_text() if args.file else cdnow_text(folder)
    events = folder / "events.csv"
    rows = 0
    with events.open("w") as out:
        out.write("customer_external_id,kind,occurred_at,value\n")
        for line in text.splitlines()[1:]:
            parts = line.split()
            if len(parts) < 4:
                continue
            day = f"{parts[1][:4]}-{parts[1][4:6]}-{parts[1][6:]}"
            out.write(f"C{parts[0]},purchase,{day},{parts[3]}\n")
            rows += 1
    engine = make_engine(f"sqlite:///{folder / 'cdnow.db'}")
    upgrade(engine)
    settings = Settings(database_url=str(engine.url))
    report = import_file(engine, "events", events, settings, now=datetime(1998, 7, 1, tzinfo=UTC))
    print(f"imported {rows:,} purchases: {report.summary().splitlines()[0]}")
    as_of = datetime.combine(CALIBRATION_END + timedelta(days=1), datetime.min.time(), UTC)
    config = RiskConfig(horizon=HOLDOUT)
    with engine.connect() as conn:
        (line,) = backtest(conn, [as_of], config=config, lifecycle=settings.lifecycle)
        last = dict(
            conn.exec_driver_sql(
                "SELECT customer_id, max(occurred_at) FROM events WHERE occurred_at < ? "
                "GROUP BY customer_id",
                (as_of.replace(tzinfo=None).isoformat(" "),),
            ).all()
        )
        after = {
            c
            for (c,) in conn.exec_driver_sql(
                "SELECT DISTINCT customer_id FROM events WHERE occurred_at >= ? AND "
                "occurred_at < ?",
                (
                    as_of.replace(tzinfo=None).isoformat(" "),
                    (as_of + HOLDOUT).replace(tzinfo=None).isoformat(" "),
                ),
            )
        }
    ids = sorted(last)
    recency = np.array(
        [(as_of.replace(tzinfo=None) - datetime.fromisoformat(last[c])).days for c in ids],
        dtype=float,
    )
    gone = np.array([c not in after for c in ids])
    print(
        f"as of {CALIBRATION_END}: {line.scored:,} customers, {line.inactive:,} buy nothing "
        f"in the next 39 weeks ({line.inactive / line.scored:.0%})"
    )
    print(f"  clmbot risk                 ROC AUC {line.auc:.4f}")
    print(f"  days since last purchase    ROC AUC {roc_auc(recency, gone):.4f}")
    print("  published: BG/NBD and Pareto/NBD expected purchases ~0.77; recency ~0.76")
    print(
        f"  risk >= {config.threshold}: {line.flagged:,} flagged, {line.flagged_inactive:,} "
        f"of them inactive (precision {line.precision:.0%}, recall {line.recall:.0%})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
