"""The Home tab's view on hand-made dashboards: how a change of risk reads, what long or
strange data becomes, and that extremes stay within Block Kit's caps."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

from clmbot.dashboard import (
    Dashboard,
    FunnelGlance,
    MyRisk,
    RiskLine,
    ScoreCard,
    StageCount,
    Step,
    SurveysInFlight,
)
from clmbot.feedback.reports import MonthScore
from clmbot.feedback.scores import csat, nps
from clmbot.slack.views.base import Where
from clmbot.slack.views.home import home_blocks
from clmbot.surveys.status import RunStatus

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
WHERE = Where(ZoneInfo("Asia/Jakarta"), NOW)


def board(risk: MyRisk, *, stages: int = 6, runs: int = 4) -> Dashboard:
    months = tuple(
        MonthScore(date(2026, m, 1), NOW, NOW, nps(m, 2, 3) if m % 2 else nps(0, 0, 0))
        for m in range(6, 12)
    )
    cards = (
        ScoreCard("nps", NOW - timedelta(days=90), NOW, nps(10, 5, 5), nps(0, 0, 0), months),
        ScoreCard(
            "csat",
            NOW - timedelta(days=90),
            NOW,
            csat(8, 2),
            csat(1, 1),
            tuple(MonthScore(m.month, NOW, NOW, csat(1, 1)) for m in months),
        ),
    )
    names = [f"<stage {i}>" for i in range(stages)]
    funnel = FunnelGlance(
        NOW - timedelta(days=90),
        NOW,
        tuple(StageCount(n, i) for i, n in enumerate(names)),
        tuple(Step(a, b, 10, 3) for a, b in pairwise(names)),
    )
    run = RunStatus(7, "nps", "<!here> plan:pro", NOW, "U0ADMIN", 1, 2, 3, 4, 0, 0)
    surveys = SurveysInFlight(1, 2, (run,) * runs, runs + 10)
    return Dashboard("U0ME", NOW, risk, cards, funnel, surveys)


def texts(blocks: list[dict]) -> str:
    out = []
    for b in blocks:
        if "text" in b:
            out.append(b["text"]["text"])
        out += [f["text"] for f in b.get("fields", [])]
        out += [e["text"] for e in b.get("elements", []) if isinstance(e.get("text"), str)]
    return "\n".join(out)


def test_a_change_of_risk_reads_as_the_digest_says_it() -> None:
    lines = (
        RiskLine("A", "Up", 90, 80, ("a", "b", "c", "d"), 1250.5),
        RiskLine("B", "Down", 80, 83, (), None),
        RiskLine("C", "Same", 75, 75, ("only",), 10),
        RiskLine("D", "New", 72, None, ("x",), 10),
    )
    risk = MyRisk(date(2026, 11, 24), 70, lines, 9, 5000.0, 40, date(2026, 11, 23))
    said = texts(home_blocks(board(risk), WHERE))
    assert "*9 of your 40 customers* are at risk (70 or more) in the pass of Tue 24 Nov" in said
    assert (
        "*Up* `A` · risk *90* (+10 since Mon 23 Nov) · MRR 1,250.50\n• a\n• b\n• _and 2 more_"
        in said
    )
    assert "*Down* `B` · risk *80* (-3 since Mon 23 Nov) · MRR —\n_no single reason" in said
    assert "*Same* `C` · risk *75* · MRR 10\n• only" in said
    assert "*New* `D` · risk *72* (new since Mon 23 Nov)" in said
    assert "5 more at risk. `/clm at-risk owner:@me`" in said
    # The first pass: nothing to compare with, so no change is claimed.
    first = MyRisk(date(2026, 11, 24), 70, lines[3:], 1, 10.0, 40, None)
    assert "*New* `D` · risk *72* · MRR 10" in texts(home_blocks(board(first), WHERE))


def test_the_views_of_a_quiet_morning() -> None:
    none_at_risk = MyRisk(date(2026, 11, 24), 70, (), 0, 0.0, 1, None)
    said = texts(home_blocks(board(none_at_risk), WHERE))
    assert "None of your 1 customer is at risk (70 or more) in the pass of Tue 24 Nov." in said
    assert "Updated 19:00 WIB on Tue 24 Nov" in said  # the team's zone


def test_extremes_stay_within_block_kit() -> None:
    long = "N&<" * 200
    lines = tuple(RiskLine(long, long, 99, 1, (long,) * 9, 1e12) for _ in range(5))
    risk = MyRisk(date(2026, 11, 24), 70, lines, 10**6, 1e15, 10**6, date(2026, 11, 23))
    blocks = home_blocks(board(risk, stages=25, runs=4), WHERE)
    assert len(blocks) <= 100
    for b in blocks:
        if "text" in b:
            assert len(b["text"]["text"]) <= (150 if b["type"] == "header" else 3000)
        assert len(b.get("fields", [])) <= 10
        assert all(len(f["text"]) <= 2000 for f in b.get("fields", []))
    said = texts(blocks)
    assert "<" not in said.replace("<@U0ADMIN>", "")  # every "<" of data is escaped
    assert "&lt;stage 24&gt;" in said and "&lt;!here&gt; plan:pro" in said
    stage_fields = [b for b in blocks if len(b.get("fields", [])) and "stage" in texts([b])]
    assert [len(b["fields"]) for b in stage_fields] == [10, 10, 5]


def test_a_funnel_given_as_last_counted_says_when() -> None:
    quiet = MyRisk(date(2026, 11, 24), 70, (), 0, 0.0, 1, None)
    fresh = board(quiet)
    assert "Counted at" not in texts(home_blocks(fresh, WHERE))
    counted = replace(fresh, funnel=replace(fresh.funnel, counted_at=NOW - timedelta(minutes=5)))
    said = texts(home_blocks(counted, WHERE))
    assert (
        ":hourglass_flowing_sand: Counted at 18:55:00: stage moves made since are not in it yet"
        in said
    )
