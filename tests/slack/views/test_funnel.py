from datetime import UTC, datetime, timedelta

from clmbot.results import CHANNEL, FileOut, Funnel, FunnelChartResult, FunnelResult, StageStats
from clmbot.slack.views import render


def test_a_long_stage_list_splits_into_sections_of_ten_fields():
    stages = [StageStats(f"s{i}", i, 0, None, 0) for i in range(13)]
    now = datetime(2026, 11, 24, tzinfo=UTC)
    msg = render(FunnelResult(Funnel(now.replace(month=10), now, stages, [])), UTC, now)
    field_blocks = [b for b in msg.blocks if "fields" in b]
    assert [len(b["fields"]) for b in field_blocks] == [10, 3]


def test_a_funnel_chart_answer_says_where_it_went_and_carries_the_file():
    now = datetime(2026, 11, 24, tzinfo=UTC)
    stages = [StageStats("awareness", 1_200, 0, None, 0), StageStats("churned", 34, 0, None, 0)]
    funnel = Funnel(now - timedelta(days=30), now, stages, [], ("churned",))
    file = FileOut("funnel.png", b"\x89PNG", "Customer funnel", CHANNEL)
    msg = render(FunnelChartResult(funnel, file), UTC, now)
    assert msg.upload is file  # uploaded before the answer is sent
    (block,) = msg.blocks
    assert block["text"]["text"] == (
        ":bar_chart: I posted *Customer funnel* here: 1,234 customers by stage, with the "
        "conversion between stages over the last 30 days."
    )
    assert msg.text == (
        "Customer funnel: 1,234 customers by stage on 2026-11-24, with the conversion between "
        "stages since 2026-10-25 (30 days), in funnel.png."
    )


def test_a_funnel_counted_before_it_was_asked_says_when():
    now = datetime(2026, 11, 24, 12, 0, 40, tzinfo=UTC)
    stages = [StageStats("awareness", 1_200, 0, None, 0)]
    counted = datetime(2026, 11, 24, 12, 0, 5, tzinfo=UTC)
    funnel = Funnel(now - timedelta(days=90), now, stages, [], counted_at=counted)
    msg = render(FunnelResult(funnel), UTC, now)
    said = [e["text"] for b in msg.blocks if b["type"] == "context" for e in b["elements"]]
    assert said[1] == (
        ":hourglass_flowing_sand: Counted at 12:00:05: stage moves made since are not in it yet "
        "(the history changes faster than a funnel this large can be counted; ask again in a "
        "minute or two)."
    )
    assert "Counted at 12:00:05" in msg.text
    fresh = render(FunnelResult(Funnel(now - timedelta(days=90), now, stages, [])), UTC, now)
    assert "Counted at" not in str(fresh.blocks) + fresh.text


def test_a_median_stay_counts_its_stays_with_thousands_separated():
    now = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    stages = [StageStats("retention", 412_000, 9_100, 41.04, 40_100)]
    msg = render(FunnelResult(Funnel(now - timedelta(days=90), now, stages, [])), UTC, now)
    assert "median stay 41.0 days (of 40,100)" in str(msg.blocks)
