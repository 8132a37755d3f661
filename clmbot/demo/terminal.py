"""What the demo prints: Block Kit as a person would read it in Slack, in a terminal.

Slack's markup becomes the terminal's (bold, dim, colour) when the output is a terminal,
and plain text when it is piped (or NO_COLOR is set), so a script's output can be compared
and read in a file. Emoji shortcodes become the emoji Slack would draw. Every button gets a
number, counted over the whole message, which is what `:click N` presses.
"""

from __future__ import annotations

import difflib
import html
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import emoji

Block = dict[str, Any]

_BOLD = re.compile(r"(?<![\w*])\*(?!\s)([^*\n]+?)(?<!\s)\*(?![\w*])")
_ITALIC = re.compile(r"(?<![\w_])_(?!\s)([^_\n]+?)(?<!\s)_(?![\w_])")
_CODE = re.compile(r"`([^`\n]+)`")
_FENCE = re.compile(r"```\n?(.*?)\n?```", re.S)
_QUOTE = re.compile(r"(?m)^>[ ]?")
_STRIKE = re.compile(r"(?<![\w~])~(?!\s)([^~\n]+?)(?<!\s)~(?![\w~])")
_LINK = re.compile(r"<([^<>|]+)(?:\|([^<>]*))?>")


@dataclass(frozen=True)
class Style:
    """ANSI styles when `colour`, nothing otherwise."""

    colour: bool

    def _wrap(self, code: str, text: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.colour and text else text

    def bold(self, text: str) -> str:
        return self._wrap("1", text)

    def dim(self, text: str) -> str:
        return self._wrap("2", text)

    def italic(self, text: str) -> str:
        return self._wrap("3", text)

    def code(self, text: str) -> str:
        return self._wrap("36", text) if self.colour else f"'{text}'"

    def button(self, text: str) -> str:
        return self._wrap("1;34", text)

    def frame(self, text: str) -> str:
        return self._wrap("35", text)

    def warn(self, text: str) -> str:
        return self._wrap("33", text)


@dataclass(frozen=True)
class Button:
    number: int
    label: str
    action_id: str
    value: str


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """Text from data without the control characters a terminal would obey (an escape
    sequence in a customer's name must not recolour or rewrite the screen)."""
    return _CONTROL.sub("", text)


def emojized(text: str) -> str:
    """`:warning:` → ⚠️, as Slack draws it; a code no one knows stays as it is."""
    return emoji.emojize(text, language="alias")


def mrkdwn(text: str, style: Style, names: Callable[[str], str]) -> str:
    """Slack's mrkdwn for the terminal. `names` turns a user or channel id into a name."""

    def link(match: re.Match[str]) -> str:
        target, label = match.group(1), match.group(2)
        if target.startswith("@"):
            return style.bold(f"@{names(target[1:])}")
        if target.startswith("#"):
            return style.bold(f"#{names(target[1:]).lstrip('#')}")
        if target.startswith("!"):
            return f"@{target[1:].split('^')[0]}"
        return f"{label} ({target})" if label and label != target else target

    text = printable(text)
    fences: list[str] = []

    def keep_fence(match: re.Match[str]) -> str:
        fences.append(match.group(1))
        return f"\x00{len(fences) - 1}\x00"

    out = _FENCE.sub(keep_fence, text)
    out = _QUOTE.sub("│ ", out)  # a quote (a customer's comment); an escaped &gt; stays text
    out = _STRIKE.sub(lambda m: style.dim(m.group(1)), out)
    out = _LINK.sub(link, out)
    out = _CODE.sub(lambda m: style.code(m.group(1)), out)
    out = _BOLD.sub(lambda m: style.bold(m.group(1)), out)
    out = _ITALIC.sub(lambda m: style.italic(m.group(1)), out)
    out = html.unescape(emojized(out))
    for n, fence in enumerate(fences):  # a code block: as it is, aligned columns and all
        out = out.replace(f"\x00{n}\x00", html.unescape(fence))
    return out


def blocks_text(
    blocks: list[Block],
    style: Style,
    names: Callable[[str], str],
    *,
    fallback: str = "",
    only: set[int] | None = None,
) -> tuple[list[str], list[Button]]:
    """The lines a person reads, and the message's buttons in order (numbered from 1).
    `only`: the indexes of the blocks to print (an edit shows what changed); the buttons
    are numbered over the whole message all the same."""
    lines: list[str] = []
    buttons: list[Button] = []

    def take(element: Block) -> str:
        button = Button(
            len(buttons) + 1,
            printable(str((element.get("text") or {}).get("text", ""))),
            str(element.get("action_id", "")),
            str(element.get("value", "")),
        )
        buttons.append(button)
        label = emojized(button.label)
        primary = element.get("style") == "primary"
        return style.button(f"[{button.number}] {label}{' ✓' if primary else ''}")

    for index, block in enumerate(blocks):
        shown: list[str] = []
        kind = block.get("type")
        if kind == "header":
            title = emojized(printable(str(block["text"]["text"])))
            shown.append(style.bold(title) if style.colour else title.upper())
        elif kind == "section":
            if block.get("text"):
                shown.extend(_text(block["text"], style, names).splitlines() or [""])
            for item in block.get("fields") or []:
                first, *rest = _text(item, style, names).splitlines() or [""]
                shown.append(f"{first}: {' · '.join(rest)}" if rest else first)
            accessory = block.get("accessory")
            if accessory and accessory.get("type") == "button":
                shown.append("  " + take(accessory))
        elif kind == "context":
            parts = [_text(e, style, names) for e in block.get("elements") or [] if "text" in e]
            shown.extend(style.dim(line) for line in " · ".join(parts).splitlines())
        elif kind == "actions":
            pressed = [take(e) for e in block.get("elements") or [] if e.get("type") == "button"]
            if pressed:
                shown.append("  " + "  ".join(pressed))
        elif kind == "divider":
            shown.append(style.dim("─" * 40))
        elif kind == "image":
            shown.append(f"[picture: {printable(str(block.get('alt_text', '')))}]")
        if only is None or index in only:
            lines.extend(shown)
    if not blocks and fallback:
        lines.extend(mrkdwn(fallback, style, names).splitlines())
    return lines, buttons


def _text(item: Block, style: Style, names: Callable[[str], str]) -> str:
    text = str(item.get("text", ""))
    if item.get("type") == "plain_text":
        return emojized(printable(text))
    return mrkdwn(text, style, names)


def changed(before: list[Block], after: list[Block]) -> set[int]:
    """The indexes of the blocks of `after` that are new or not as they were in `before`,
    each with the block before it (a line added under a customer shows which customer)."""
    keys = [json.dumps(b, sort_keys=True) for b in before]
    new = [json.dumps(b, sort_keys=True) for b in after]
    shown: set[int] = set()
    for op, _, _, j1, j2 in difflib.SequenceMatcher(None, keys, new, autojunk=False).get_opcodes():
        if op in ("replace", "insert"):
            shown.update(range(max(j1 - 1, 0), j2))
    return shown
