from clmbot.slack.views.base import esc


def test_escaping():
    assert esc("<!channel> & <@U1>") == "&lt;!channel&gt; &amp; &lt;@U1&gt;"


def test_a_long_list_is_split_over_sections_never_cut():
    from clmbot.slack.views.base import sections

    lines = [f"line {i:03d} " + "x" * 90 for i in range(100)]
    blocks = sections("*Title*", lines)
    texts = [b["text"]["text"] for b in blocks]
    assert len(blocks) > 1 and all(len(t) <= 3000 for t in texts)
    assert "\n".join(texts) == "\n".join(["*Title*", *lines])
    assert sections("*T*", []) == [{"type": "section", "text": {"type": "mrkdwn", "text": "*T*"}}]
