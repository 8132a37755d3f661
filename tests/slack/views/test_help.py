from datetime import UTC, datetime

from clmbot.commands.registry import help_result
from clmbot.slack.views import render


def test_help_fits_block_kit_caps():
    msg = render(help_result("note"), UTC, datetime(2026, 11, 24, tzinfo=UTC))
    assert len(msg.blocks) <= 50
    assert all(len(b.get("text", {}).get("text", "")) <= 3000 for b in msg.blocks)
