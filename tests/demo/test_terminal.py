"""Block Kit read in a terminal: markup, names, emoji and numbered buttons."""

from __future__ import annotations

from clmbot.demo.terminal import Style, blocks_text, changed, mrkdwn

PLAIN = Style(False)
COLOUR = Style(True)
NAMES = {"U1": "sari", "C1": "#customer-alerts"}.get


def names(some_id: str) -> str:
    return NAMES(some_id) or some_id


def test_markup_becomes_plain_text_when_piped():
    text = "*Acme* `C0001` _soon_ <@U1> in <#C1> &lt;b&gt; &amp; :warning: <https://x.io|site>"
    assert mrkdwn(text, PLAIN, names) == (
        "Acme 'C0001' soon @sari in #customer-alerts <b> & ⚠️ site (https://x.io)"
    )


def test_markup_becomes_terminal_styles_on_a_terminal():
    out = mrkdwn("*bold* and `code`", COLOUR, names)
    assert "\x1b[1mbold\x1b[0m" in out and "\x1b[36mcode\x1b[0m" in out
    assert "*" not in out and "`" not in out


def test_a_code_block_keeps_its_columns_and_its_stars():
    out = mrkdwn("```\nstage   now\n*a*       1\n```", PLAIN, names)
    assert out == "stage   now\n*a*       1"


def test_an_unknown_emoji_code_stays_as_written():
    assert mrkdwn(":not_an_emoji_at_all: :wave:", PLAIN, names) == ":not_an_emoji_at_all: 👋"


def test_buttons_are_numbered_over_the_whole_message():
    button = {"type": "button", "text": {"type": "plain_text", "text": "Go"}, "action_id": "a"}
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": "Title"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "one"}, "accessory": button},
        {"type": "actions", "elements": [button, {**button, "style": "primary", "value": "v"}]},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "small"}]},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": "*k*\nv1\nv2"}]},
    ]
    lines, buttons = blocks_text(blocks, PLAIN, names)
    assert lines == ["TITLE", "one", "  [1] Go", "  [2] Go  [3] Go ✓", "small", "k: v1 · v2"]
    assert [(b.number, b.value) for b in buttons] == [(1, ""), (2, ""), (3, "v")]
    # An edit prints only what changed, with the buttons numbered as in the whole message.
    lines, buttons = blocks_text(blocks, PLAIN, names, only={2})
    assert lines == ["  [2] Go  [3] Go ✓"] and len(buttons) == 3


def test_a_block_added_under_another_shows_with_it():
    a, b, c = ({"type": "section", "text": {"type": "mrkdwn", "text": t}} for t in "abc")
    note = {"type": "context", "elements": [{"type": "mrkdwn", "text": "assigned"}]}
    assert changed([a, b, c], [a, b, note, c]) == {1, 2}
    assert changed([a, b, c], [a, b, c]) == set()
    assert changed([a], [b]) == {0}


def test_a_message_without_blocks_shows_its_text():
    lines, buttons = blocks_text([], PLAIN, names, fallback="*hi* <@U1>")
    assert lines == ["hi @sari"] and buttons == []


def test_control_characters_from_data_never_reach_the_terminal():
    evil = "Acme\x1b[2J\x1b]0;owned\x07 Corp\x9b31m"
    assert mrkdwn(f"*{evil}*", COLOUR, names) == "\x1b[1mAcme[2J]0;owned Corp31m\x1b[0m"
    header = {"type": "header", "text": {"type": "plain_text", "text": evil}}
    assert blocks_text([header], PLAIN, names)[0] == ["ACME[2J]0;OWNED CORP31M"]


def test_a_quote_is_drawn_as_one_and_an_escaped_bracket_stays_text():
    assert mrkdwn(">great support\n&gt; not a quote ~old~", PLAIN, names) == (
        "│ great support\n> not a quote old"
    )
