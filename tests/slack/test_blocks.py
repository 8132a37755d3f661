from datetime import UTC, datetime

from clmbot.commands import COMMANDS, FunnelResult
from clmbot.lifecycle import Funnel, StageStats
from clmbot.slack.blocks import esc, funnel_message, help_message


def test_escaping():
    assert esc("<!channel> & <@U1>") == "&lt;!channel&gt; &amp; &lt;@U1&gt;"


def test_a_long_stage_list_splits_into_sections_of_ten_fields():
    stages = [StageStats(f"s{i}", i, 0, None, 0) for i in range(13)]
    now = datetime(2026, 11, 24, tzinfo=UTC)
    msg = funnel_message(FunnelResult(Funnel(now.replace(month=10), now, stages, [])), UTC)
    field_blocks = [b for b in msg.blocks if "fields" in b]
    assert [len(b["fields"]) for b in field_blocks] == [10, 3]


def test_help_fits_block_kit_caps():
    msg = help_message(list(COMMANDS.values()), "note")
    assert len(msg.blocks) <= 50
    assert all(len(b.get("text", {}).get("text", "")) <= 3000 for b in msg.blocks)
