from datetime import UTC, date, datetime

from clmbot.results import Answer, CustomerInfo, Profile, ProfileResult
from clmbot.slack.views import render


def test_long_data_is_cut_visibly_and_within_block_kit_limits():
    now = datetime(2026, 11, 24, tzinfo=UTC)
    c = CustomerInfo(
        external_id="A1",
        name="N" * 400,
        stage="purchase",
        tags=tuple(f"t{i}" for i in range(400)),
        signup_date=date(2025, 1, 1),
    )
    answer = Answer(score=3, comment="x & y " * 600, responded_at=now)
    msg = render(ProfileResult(Profile(c, [], 0, None, None, answer, None, 0)), UTC, now)
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
