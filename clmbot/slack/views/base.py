"""The pieces every Slack view is built of, and the rules they keep.

Every string that came from data (names, reasons, comments) is escaped: a customer called
`<!channel>` must not ping a channel. Block Kit caps (50 blocks, 3,000 characters a section,
10 fields, 75 characters a button) are kept by construction here, with a visible "…" where
text was cut, never silently.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any

from clmbot.config import DisplayConfig
from clmbot.plain import IN_CHANNEL as IN_CHANNEL
from clmbot.plain import IN_DM as IN_DM
from clmbot.results import FileOut

Block = dict[str, Any]
# How much of long data a card shows; the rest is marked with "…", never dropped silently.
TAGS_SHOWN = 10
COMMENT_SHOWN = 600
REASON_SHOWN = 200


@dataclass(frozen=True)
class Where:
    """What a view needs to know about where it is read: the team's zone and clock, what
    commands are typed after there (`/clm ` in a channel, nothing in a DM), the currency."""

    zone: tzinfo
    now: datetime
    prefix: str = IN_CHANNEL
    display: DisplayConfig = field(default_factory=DisplayConfig)


@dataclass
class Message:
    text: str
    blocks: list[Block] = field(default_factory=list)
    # A file that goes with the answer (an export, a chart): uploaded before the answer is
    # sent, and the answer says where it went.
    upload: FileOut | None = None
    # Messages to edit once this one is sent (`chat.update` arguments): a survey question
    # redrawn with the score a customer typed.
    edits: list[dict[str, Any]] = field(default_factory=list)
    # What to do once it is sent: wake the survey sender after a survey was queued or
    # answered, so that it goes out (or reaches the team) in seconds.
    after: Callable[[], None] | None = None
    # The result it shows, when it shows one: the console demo prints it as plain text.
    result: Any = None

    def sent(self) -> None:
        if self.after is not None:
            self.after()

    def as_kwargs(self) -> dict[str, Any]:
        # The fallback text is mrkdwn too (notifications render it): escape it like data.
        return {"text": esc(self.text), "blocks": self.blocks}


def esc(value: object) -> str:
    """Text for mrkdwn: &, < and > escaped, as Slack asks."""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    """At most `limit` characters, with a visible … where text was cut (never silently).
    Cut data before escaping it, so that no `&amp;` is cut in half."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def clip_markdown(markdown: str, limit: int) -> str:
    """`clip` for text already escaped and marked up: never ends inside an entity (`&lt;`)
    or a mention (`<@U…>`), which Slack would show as they are."""
    if len(markdown) <= limit:
        return markdown
    cut = markdown[: limit - 1]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:] and len(cut) - amp < 8:
        cut = cut[:amp]
    angle = cut.rfind("<")
    if angle != -1 and ">" not in cut[angle:]:
        cut = cut[:angle]
    return cut + "…"


def section(markdown: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip_markdown(markdown, 3000)}}


def context(*markdown: str) -> Block:
    elements = [{"type": "mrkdwn", "text": clip_markdown(m, 3000)} for m in markdown[:10]]
    return {"type": "context", "elements": elements}


def sections(title: str, lines: list[str], limit: int = 3000) -> list[Block]:
    """`title` and `lines` in as many sections as their length needs (a section holds 3,000
    characters): a long list is split between lines, never cut off."""
    blocks: list[Block] = []
    chunk = title
    for line in lines:
        if chunk and len(chunk) + 1 + len(line) > limit:
            blocks.append(section(chunk))
            chunk = ""
        chunk = f"{chunk}\n{line}" if chunk else line
    if chunk:
        blocks.append(section(chunk))
    return blocks


def header(title: str) -> Block:
    return {
        "type": "header",
        "text": {"type": "plain_text", "text": clip(title, 150), "emoji": True},
    }


def fields(pairs: list[tuple[str, str]]) -> Block:
    return {
        "type": "section",
        "fields": [
            {"type": "mrkdwn", "text": clip_markdown(f"*{k}*\n{v}", 2000)} for k, v in pairs[:10]
        ],
    }


def user(slack_id: str | None) -> str:
    return f"<@{slack_id}>" if slack_id else "—"


OPEN_PROFILE = "open_profile"
RUN_WORDS = "run_words"


def run_button(words: str | list[str], label: str, index: int = 0) -> Block | None:
    """A button that runs `words` (or a text, as typed: filters whose quotes matter) as a
    command for whoever clicks it (who is checked again, as if they had typed it). None when
    the words do not fit in a button's value."""
    value = json.dumps(words, ensure_ascii=False)
    if len(value) > 2000:
        return None
    return {
        "type": "button",
        "action_id": f"{RUN_WORDS}:{index}",
        "text": {"type": "plain_text", "text": clip(label, 75), "emoji": False},
        "value": value,
    }


def open_profile_button(external_id: str, label: str, index: int = 0) -> Block:
    """A button that answers with the customer's card (action ids are unique per block)."""
    return {
        "type": "button",
        "action_id": f"{OPEN_PROFILE}:{index}",
        "text": {"type": "plain_text", "text": clip(label, 75), "emoji": False},
        "value": external_id[:2000],
    }


def strip_markup(markdown: str) -> str:
    return markdown.replace("`", "").replace("*", "")


def database_down(error_id: str) -> Message:
    """The database did not answer: nothing to report, only to wait for (the bot reconnects
    by itself); the id still lets an admin find it in the log."""
    body = (
        ":hourglass: The database is not answering just now, so I could not do that. Try "
        f"again in a minute. If it keeps happening, tell an admin: error id `{error_id}`."
    )
    return Message(strip_markup(body.replace(":hourglass: ", "")), [section(body)])


def too_busy() -> Message:
    """More commands at once than the bot can answer: said at once, rather than a minute late."""
    body = (
        ":hourglass: Many requests are arriving at once and I could not take yours. Nothing "
        "was done: try again in a minute."
    )
    return Message(strip_markup(body.replace(":hourglass: ", "")), [section(body)])


def apology(error_id: str) -> Message:
    body = (
        f":warning: Sorry, something went wrong on our side and your request was not "
        f"completed. Error id `{error_id}`: an admin can find the details in the bot's log "
        "under that id."
    )
    return Message(strip_markup(body.replace(":warning: ", "")), [section(body)])
