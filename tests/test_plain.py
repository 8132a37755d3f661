from datetime import UTC, datetime

from clmbot.plain import funnel_text, move_text, render
from clmbot.results import (
    CHANNEL,
    Conversion,
    FileOut,
    Funnel,
    FunnelChartResult,
    StageMove,
    StageStats,
)


def test_funnel_text_shows_counts_medians_and_rates():
    result = Funnel(
        since=datetime(2026, 8, 26, tzinfo=UTC),
        now=datetime(2026, 11, 24, tzinfo=UTC),
        stages=[
            StageStats("awareness", 1200, 300, 12.25, 40100),
            StageStats("purchase", 80, 20, None, 0),
        ],
        conversions=[
            Conversion("awareness", "purchase", 400, 100),
            Conversion("purchase", "retention", 0, 0),
        ],
    )
    text = funnel_text(result, UTC)
    assert text.splitlines()[0] == (
        "Funnel on 2026-11-24: 1,280 customers. Period 2026-08-26 to 2026-11-24 (90 days)."
    )
    assert "awareness           1,200      300   12.2 (of 40,100)" in text
    assert "awareness → purchase   25%  (100 of 400)" in text
    assert "purchase → retention     —  (0 of 0)" in text


def test_move_text():
    at = datetime(2026, 1, 1, tzinfo=UTC)
    assert move_text(StageMove(1, "a", "b", at, "U1", "why", True), "Acme") == (
        "Acme moved from a to b (why)."
    )
    assert "already in b" in move_text(StageMove(1, "b", "b", at, "U1", None, False), "Acme")


def test_funnel_chart_text_says_what_the_picture_shows_and_where_it_is():
    now = datetime(2026, 11, 24, tzinfo=UTC)
    funnel = Funnel(datetime(2026, 8, 26, tzinfo=UTC), now, [StageStats("a", 1, 0, None, 0)], [])
    file = FileOut("funnel.png", b"", "Customer funnel", CHANNEL)
    assert render(FunnelChartResult(funnel, file), UTC) == (
        "Customer funnel: 1 customer by stage on 2026-11-24, with the conversion between "
        "stages since 2026-08-26 (90 days), in funnel.png."
    )
