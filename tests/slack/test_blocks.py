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


def test_long_data_is_cut_visibly_and_within_block_kit_limits():
    from datetime import UTC, date, datetime

    from clmbot.commands import ProfileResult
    from clmbot.profile import Profile
    from clmbot.slack.blocks import profile_message
    from clmbot.store.models import Customer, Feedback

    now = datetime(2026, 11, 24, tzinfo=UTC)
    c = Customer(
        external_id="A1",
        name="N" * 400,
        stage="purchase",
        tags=[f"t{i}" for i in range(400)],
        created_at=now,
        updated_at=now,
        signup_date=date(2025, 1, 1),
    )
    answer = Feedback(
        customer_id=1,
        kind="nps",
        score=3,
        comment="x & y " * 600,
        responded_at=now,
        source="import",
    )
    msg = profile_message(ProfileResult(Profile(c, [], 0, None, None, answer, None, 0)), UTC, now)
    for block in msg.blocks:
        for element in block.get("elements", []):
            assert len(element["text"]) <= 3000
        if block["type"] == "section" and "text" in block:
            assert len(block["text"]["text"]) <= 3000
    assert msg.blocks[0]["text"]["text"].endswith("…") and len(msg.blocks[0]["text"]["text"]) == 150
    about = msg.blocks[1]["elements"][0]["text"]
    assert "t9 and 390 more" in about
    comment = next(b for b in msg.blocks if "x &amp; y" in b.get("text", {}).get("text", ""))
    assert "…_" in comment["text"]["text"] and "&a…" not in comment["text"]["text"]
