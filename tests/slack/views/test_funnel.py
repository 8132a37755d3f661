from datetime import UTC, datetime

from clmbot.results import Funnel, FunnelResult, StageStats
from clmbot.slack.views import render


def test_a_long_stage_list_splits_into_sections_of_ten_fields():
    stages = [StageStats(f"s{i}", i, 0, None, 0) for i in range(13)]
    now = datetime(2026, 11, 24, tzinfo=UTC)
    msg = render(FunnelResult(Funnel(now.replace(month=10), now, stages, [])), UTC, now)
    field_blocks = [b for b in msg.blocks if "fields" in b]
    assert [len(b["fields"]) for b in field_blocks] == [10, 3]
