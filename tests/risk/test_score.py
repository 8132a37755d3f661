"""The risk score on hand-made histories: each signal with its reason in plain words, and a
score as of a date that later data does not change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from clmbot.config import Settings
from clmbot.importing.runner import import_file
from clmbot.risk.score import CustomerRisk, score_all, whole

AS_OF = datetime(2026, 11, 1, tzinfo=UTC)


def day(n: int) -> str:
    """A time `n` days before AS_OF."""
    return (AS_OF - timedelta(days=n)).strftime("%Y-%m-%dT%H:%M:%SZ")


def load(engine, tmp_path, kind: str, header: str, lines: list[str]) -> None:
    path = tmp_path / f"{kind}-{len(list(tmp_path.iterdir()))}.csv"
    path.write_text(header + "\n" + "\n".join(lines) + "\n")
    report = import_file(engine, kind, path, Settings(database_url=str(engine.url)), now=AS_OF)
    assert report.ok, report.summary()


def scores(engine, as_of=AS_OF, settings=None) -> dict[str, CustomerRisk]:
    settings = settings or Settings()
    with engine.connect() as conn:
        found = score_all(conn, as_of, config=settings.risk, lifecycle=settings.lifecycle)
    return {r.external_id: r for r in found}


@pytest.fixture
def shop(engine, tmp_path):
    """A regular every 21 days who stopped 64 days ago, one who still buys, a one-time buyer,
    and customers who answered, stalled or went back."""
    events = []
    for n in range(64, 400, 21):  # buys every 21 days, the last 64 days ago
        events.append(f"LAPSED,purchase,{day(n)},40")
    for n in range(3, 400, 21):
        events.append(f"STEADY,purchase,{day(n)},40")
    events.append(f"ONCE,purchase,{day(200)},15")
    for i in range(30):  # everyone's rhythm: about a month
        for n in range(5 + i, 300, 30):
            events.append(f"P{i:02d},purchase,{day(n)},20")
    for n in range(40, 220, 4):  # logged in twice a week, then almost never
        events.append(f"QUIET,login,{day(n)},")
    events.append(f"QUIET,login,{day(10)},")
    events += [f"QUIET,purchase,{day(n)},30" for n in (12, 40, 70)]
    load(engine, tmp_path, "events", "customer_external_id,kind,occurred_at,value", events)
    load(
        engine,
        tmp_path,
        "feedback",
        "customer_external_id,kind,score,comment,responded_at",
        [
            f"STEADY,nps,9,,{day(100)}",
            f"STEADY,nps,5,,{day(20)}",
            f"P01,csat,2,,{day(15)}",
            f"P02,nps,3,,{day(15)}",
        ],
    )
    stages = ["customer_external_id,stage,moved_at,by,reason"]
    for i in range(12):  # most leave consideration within about two weeks
        stages += [
            f"L{i:02d},consideration,{day(200)},crm,",
            f"L{i:02d},purchase,{day(200 - 8 - i)},crm,",
        ]
    stages += [f"STUCK,awareness,{day(60)},crm,", f"STUCK,consideration,{day(45)},crm,"]
    stages += [f"BACK,retention,{day(100)},crm,", f"BACK,purchase,{day(12)},crm,renewal lost"]
    current = {"STUCK": "consideration", "BACK": "purchase"}
    customers = ["external_id,name,stage"] + [
        f"{c},{c.title()},{current.get(c, 'purchase')}"
        for c in ("STUCK", "BACK", *(f"L{i:02d}" for i in range(12)))
    ]
    load(engine, tmp_path, "customers", customers[0], customers[1:])
    load(engine, tmp_path, "stages", stages[0], stages[1:])


def test_each_signal_says_why_in_plain_words(engine, shop):
    got = scores(engine)
    assert got["LAPSED"].reasons[0] == "no purchase for 64 days, usually every 21"
    assert got["LAPSED"].risk >= 70
    assert "NPS fell from 9 to 5" in got["STEADY"].reasons
    assert "CSAT 2 on 2026-10-17" in got["P01"].reasons
    assert "NPS 3 on 2026-10-17, a detractor" in got["P02"].reasons
    assert "in consideration for 45 days, most move on within 16" in got["STUCK"].reasons
    assert "moved back from retention to purchase 12 days ago" in got["BACK"].reasons
    assert got["QUIET"].reasons == ("activity fell: 2 events in the last 30 days, usually 8",)
    assert any(
        r.startswith("no purchase since their first, 200 days ago") for r in got["ONCE"].reasons
    )


def test_a_steady_customer_scores_low_and_a_lapsed_one_high(engine, shop):
    got = scores(engine)
    assert got["LAPSED"].risk > got["P05"].risk
    assert not any(r.startswith("no purchase") for r in got["P05"].reasons)
    # Customers with no activity at all: as likely to stay quiet as such customers were.
    assert got["BACK"].reasons[0] == (
        "no activity recorded since they became a customer, 100 days ago"
    )


def test_a_score_as_of_a_date_ignores_what_came_after(engine, shop, tmp_path):
    before = scores(engine, AS_OF - timedelta(days=30))
    load(
        engine,
        tmp_path,
        "events",
        "customer_external_id,kind,occurred_at,value",
        [f"LAPSED,purchase,{day(5)},40", f"NEWBIE,purchase,{day(3)},10"],
    )
    load(
        engine,
        tmp_path,
        "feedback",
        "customer_external_id,kind,score,comment,responded_at",
        [f"P03,nps,0,,{day(2)}"],
    )
    after = scores(engine, AS_OF - timedelta(days=30))
    assert after == before
    assert "NEWBIE" not in after
    assert scores(engine)["LAPSED"].risk < before["LAPSED"].risk + 100  # today's sees it


def test_weights_come_from_clmbot_toml(engine, shop, tmp_path):
    (tmp_path / "clmbot.toml").write_text("[risk]\ndetractor = 0\nactivity_fall = 0.9\n")
    from clmbot.config import load_settings

    settings = load_settings({}, cwd=tmp_path, dotenv=False)
    got = scores(engine, settings=settings)
    assert not any("NPS" in r for r in got["P02"].reasons)
    assert got["QUIET"].risk >= 90


def test_the_highest_few_rank_as_the_whole_list_does():
    """`Scores.rows` ranks only those who can be among the first asked for: the same
    customers in the same order as ranking everyone, ties at the edge included."""
    import random

    from clmbot.risk.score import Scores

    rng = random.Random(3)
    n = 1_000
    ids = list(range(1, n + 1))
    external = [f"C{rng.randrange(10**6):06d}-{i}" for i in ids]
    risk = [rng.choice((99, 99, 98, 70, 40, 3)) for _ in ids]
    scored = Scores(ids, external, [f"N{i}" for i in ids], risk, [("r",)] * n)
    everyone = scored.rows()
    assert [r.risk for r in everyone] == sorted(risk, reverse=True)
    for start, stop in ((0, 10), (5, 15), (0, 400), (990, 2000), (0, 0), (7, 3)):
        assert scored.rows(start, stop) == everyone[start:stop]
    tied = [r.external_id for r in everyone if r.risk == 99]
    assert tied == sorted(tied)
    assert Scores([], [], [], [], []).rows(0, 10) == []


def test_whole_numbers_in_reasons_are_written_as_the_float_format_writes_them():
    rng = np.random.default_rng(8)
    values = np.concatenate(
        [
            rng.uniform(0, 1000, 20_000),
            np.arange(0, 400) + 0.5,  # ties: half to even, both ways
            np.nextafter(np.arange(0, 400) + 0.5, 0),
            np.nextafter(np.arange(0, 400) + 0.5, 1000),
            [0.0, -0.0, -0.4, -3.0, 2.0**53 - 1, 2.0**53, 1e300, np.nan, np.inf, -np.inf],
        ]
    )
    assert [f"{w}" for w in whole(values)] == [f"{v:.0f}" for v in values.tolist()]
