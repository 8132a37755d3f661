"""Results as Block Kit messages, each with a plain-text fallback (notifications, screen
readers, clients without blocks).

Every string that came from data (names, reasons, comments) is escaped: a customer called
`<!channel>` must not ping a channel. Block Kit caps (50 blocks, 3,000 characters a section,
10 fields) are respected by construction: lists here are short and bounded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any

from clmbot import text as plain
from clmbot.commands import (
    PLANNED,
    CommandSpec,
    FunnelResult,
    GreetingResult,
    HelpResult,
    MatchesResult,
    NoMatchResult,
    NotYetResult,
    ProfileResult,
    RefusedResult,
    Result,
    StageResult,
    UsageResult,
)
from clmbot.config import DisplayConfig
from clmbot.store.models import Feedback

SLASH = "/clm"
# What a command is typed after: in a channel, the slash command; in a DM, nothing.
IN_CHANNEL = SLASH + " "
IN_DM = ""
# How much of long data a card shows; the rest is marked with "…", never dropped silently.
TAGS_SHOWN = 10
COMMENT_SHOWN = 600
REASON_SHOWN = 200
Block = dict[str, Any]


@dataclass
class Message:
    text: str
    blocks: list[Block] = field(default_factory=list)

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


def render(
    result: Result,
    zone: tzinfo,
    now: datetime,
    *,
    prefix: str = IN_CHANNEL,
    display: DisplayConfig | None = None,
) -> Message:
    """`prefix`: what commands are typed after where the answer goes (`/clm ` in a channel,
    nothing in a DM with the bot)."""
    match result:
        case HelpResult():
            return help_message(result.commands, result.note, prefix)
        case GreetingResult():
            return greeting_message(result, prefix)
        case UsageResult():
            return usage_message(result.spec, result.problem, prefix)
        case NotYetResult():
            return Message(
                f"{prefix}{result.command} is not available yet.",
                [
                    section(
                        f"`{prefix}{result.command}` is not available yet in this clmbot. "
                        f"`{prefix}help` lists what is."
                    )
                ],
            )
        case RefusedResult():
            return Message(_strip(result.message), [section(f":no_entry: {result.message}")])
        case MatchesResult():
            return matches_message(result, prefix)
        case NoMatchResult():
            return no_match_message(result)
        case ProfileResult():
            return profile_message(result, zone, now, display or DisplayConfig())
        case StageResult():
            return stage_message(result)
        case FunnelResult():
            return funnel_message(result, zone)
    raise TypeError(f"no rendering for {type(result).__name__}")


def _strip(markdown: str) -> str:
    return markdown.replace("`", "").replace("*", "")


def help_message(
    commands: list[CommandSpec], note: str | None = None, prefix: str = IN_CHANNEL
) -> Message:
    blocks: list[Block] = []
    if note:
        blocks.append(section(f":thinking_face: {esc(note)}"))
    blocks.append(header("clmbot: the customer lifecycle, from Slack"))
    for spec in commands:
        admin = " _(admins)_" if spec.admin_only else ""
        blocks.append(
            section(
                f"*`{esc(prefix + spec.usage)}`*{admin}\n{esc(spec.summary)}\n"
                f"Example: `{esc(prefix + spec.example)}`"
            )
        )
    blocks.append(
        context(
            "A customer is its external id, its e-mail, or the start of its name "
            '("quotes" for names with spaces when a stage follows). Coming later: '
            + ", ".join(f"`{p}`" for p in PLANNED)
            + "."
        )
    )
    lines = [note] if note else []
    lines += [f"{prefix}{s.usage}: {s.summary}" for s in commands]
    return Message("\n".join(lines), blocks)


def greeting_message(result: GreetingResult, prefix: str) -> Message:
    examples = " or ".join(f"`{esc(prefix + spec.example)}`" for spec in result.examples)
    body = (
        f":wave: Hello! Ask me about customers with the same words as after `/clm`, e.g. "
        f"{examples}. `{esc(prefix)}help` lists everything."
    )
    return Message(_strip(body.replace(":wave: ", "")), [section(body)])


def usage_message(spec: CommandSpec, problem: str, prefix: str = IN_CHANNEL) -> Message:
    body = (
        f":warning: {esc(problem)}\n*Usage:* `{esc(prefix + spec.usage)}`\n"
        f"*Example:* `{esc(prefix + spec.example)}`"
    )
    return Message(f"{_strip(problem)} Usage: {prefix}{spec.usage}", [section(body)])


def matches_message(result: MatchesResult, prefix: str = IN_CHANNEL) -> Message:
    """Several customers match: listed, each with a button that finishes what was asked for
    that customer (opens their card, or makes the stage move), and how to be exact."""
    lookup = result.lookup
    listed = "\n".join(
        f"• {esc(clip(c.name, 100))} (`{esc(clip(c.external_id, 60))}`)" for c in lookup.matches
    )
    more = "\n…and more: type more of the name." if lookup.more else ""
    words = (result.command, lookup.matches[0].external_id, *result.rest)
    example = prefix + " ".join(_quoted(w) for w in words)
    count = f"{len(lookup.matches)}+" if lookup.more else str(len(lookup.matches))
    if result.command == "customer":
        question = ""
        buttons = [
            open_profile_button(c.external_id, c.name, i) for i, c in enumerate(lookup.matches)
        ]
    else:
        question = (
            f" Which one did you mean to `{esc(' '.join((result.command, '…', *result.rest)))}`?"
        )
        buttons = [
            run_button([result.command, c.external_id, *result.rest], c.name, i)
            for i, c in enumerate(lookup.matches)
        ]
    blocks = [section(f"*{count} customers match “{esc(lookup.ref)}”.*{question}\n{listed}{more}")]
    if all(b is not None for b in buttons):
        blocks.append({"type": "actions", "block_id": "matches", "elements": buttons})
    blocks.append(context(f"To be exact, use the external id or the e-mail, e.g. `{esc(example)}`"))
    names = ", ".join(c.name for c in lookup.matches)
    return Message(f"{count} customers match “{lookup.ref}”: {names}", blocks)


def _quoted(word: str) -> str:
    return f'"{word}"' if any(c.isspace() for c in word) else word


OPEN_PROFILE = "open_profile"
RUN_WORDS = "run_words"


def run_button(words: list[str], label: str, index: int = 0) -> Block | None:
    """A button that runs `words` as a command for whoever clicks it (who is checked again,
    as if they had typed it). None when the words do not fit in a button's value."""
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


def no_match_message(result: NoMatchResult) -> Message:
    if result.closest:
        closest = ", ".join(f"*{esc(n)}*" for n in result.closest)
        tail = f" Closest names: {closest}."
        plain_tail = " Closest names: " + ", ".join(result.closest) + "."
    else:
        tail = plain_tail = " No name is close either: try the external id or the e-mail."
    return Message(
        f"No customer matches “{result.ref}”.{plain_tail}",
        [section(f"No customer matches “{esc(result.ref)}”.{tail}")],
    )


def _answer(answer: Feedback | None, zone: tzinfo) -> str:
    if answer is None:
        return "—"
    return f"{answer.score} on {plain.day(answer.responded_at, zone)}"


def _ago(at: datetime, now: datetime) -> str:
    days = (now - at).days
    return "today" if days < 1 else f"{days} day{'s' if days > 1 else ''} ago"


def profile_message(
    result: ProfileResult, zone: tzinfo, now: datetime, display: DisplayConfig | None = None
) -> Message:
    display = display or DisplayConfig()
    p = result.profile
    c = p.customer
    since = plain.stage_since(p, zone)
    activity = (
        f"{esc(p.last_activity.kind)}, {plain.day(p.last_activity.at, zone)} "
        f"({_ago(p.last_activity.at, now)})"
        if p.last_activity
        else "none recorded"
    )
    about = [f"`{esc(c.external_id)}`"]
    if c.email:
        about.append(esc(c.email))
    if c.signup_date:
        about.append(f"customer since {c.signup_date.isoformat()}")
    if c.tags:
        shown = ", ".join(esc(clip(t, 40)) for t in c.tags[:TAGS_SHOWN])
        more = f" and {len(c.tags) - TAGS_SHOWN} more" if len(c.tags) > TAGS_SHOWN else ""
        about.append(f"tags: {shown}{more}")
    blocks: list[Block] = [
        header(c.name),
        context(" · ".join(about)),
        fields(
            [
                ("Stage", f"{esc(c.stage)}{since}"),
                ("Owner", user(c.owner_slack_id)),
                ("Plan", esc(c.plan or "—")),
                ("MRR", plain.mrr(p, display)),
                ("Last activity", activity),
                ("Events, last 30 days", str(p.events_last_30_days)),
                ("NPS, latest", _answer(p.latest_nps, zone)),
                ("CSAT, latest", _answer(p.latest_csat, zone)),
            ]
        ),
    ]
    comments = [
        f"*{label}* {a.score}: _{esc(clip(a.comment, COMMENT_SHOWN))}_"
        for label, a in (("NPS", p.latest_nps), ("CSAT", p.latest_csat))
        if a is not None and a.comment
    ]
    if comments:
        blocks.append(section("\n".join(f"> {line}" for line in comments)))
    if p.history:
        lines = []
        for h in p.history:
            move = (
                f"{esc(h.from_stage)} → *{esc(h.to_stage)}*"
                if h.from_stage
                else (f"started in *{esc(h.to_stage)}*")
            )
            lines.append(f"`{plain.day(h.at, zone)}`  {move}  {_by(h.by, h.reason)}")
        blocks.append(section("*Stage history*\n" + "\n".join(lines)))
        if p.history_total > len(p.history):
            blocks.append(context(f"{p.history_total - len(p.history)} earlier moves not shown"))
    return Message(plain.profile_text(p, zone, display), blocks)


def _by(by: str, reason: str | None) -> str:
    """Who moved the customer and why: "by @Sari: renewed", "by import of customers.csv"."""
    if by == "import" and reason and "import of " in reason:
        return "by import of " + esc(reason.split("import of ", 1)[1])
    who = user(by) if by[:1] in ("U", "W") else esc(by)
    return f"by {who}: {esc(clip(reason, REASON_SHOWN))}" if reason else f"by {who}"


def stage_message(result: StageResult) -> Message:
    move, c = result.move, result.customer
    if not move.changed:
        return Message(
            f"{c.name} is already in {move.to_stage}; nothing changed.",
            [section(f"*{esc(c.name)}* is already in *{esc(move.to_stage)}*; nothing changed.")],
        )
    why = f": {esc(move.reason)}" if move.reason else ""
    return Message(
        plain.move_text(move, c.name),
        [
            section(
                f":white_check_mark: Moved *{esc(c.name)}* from {esc(move.from_stage)} to "
                f"*{esc(move.to_stage)}*{why}"
            ),
            context(f"Recorded in the stage history, by <@{esc(move.by)}>"),
        ],
    )


def _bar(rate: float | None, width: int = 10) -> str:
    if rate is None:
        return "░" * width
    filled = round(rate * width)
    return "█" * filled + "░" * (width - filled)


def funnel_message(result: FunnelResult, zone: tzinfo) -> Message:
    f = result.funnel
    days = round((f.now - f.since).total_seconds() / 86400)
    cells = []
    for s in f.stages:
        median = "—" if s.median_days is None else f"{s.median_days:.1f} days (of {s.stays})"
        cells.append(
            (esc(s.stage), f"*{s.customers:,}* now · {s.entered:,} entered\nmedian stay {median}")
        )
    blocks: list[Block] = [
        header("Funnel"),
        context(
            f"{f.total:,} customers on {plain.day(f.now, zone)} · period "
            f"{plain.day(f.since, zone)} to {plain.day(f.now, zone)} ({days} days)"
        ),
        *(fields(cells[i : i + 10]) for i in range(0, len(cells), 10)),
    ]
    if f.conversions:
        lines = [
            f"{esc(c.from_stage)} → {esc(c.to_stage)}  `{_bar(c.rate)}` "
            f"*{plain.percent(c.rate)}* ({c.converted:,} of {c.base:,})"
            for c in f.conversions
        ]
        blocks.append(section("*Conversion in the period*\n" + "\n".join(lines)))
        blocks.append(
            context(
                "Of the customers in a stage during the period, the share who "
                "reached the next stage or a later one within it. A median stay "
                "counts the stays that ended in the period."
            )
        )
    return Message(plain.funnel_text(f, zone), blocks)


def apology(error_id: str) -> Message:
    body = (
        f":warning: Sorry, something went wrong on our side and your request was not "
        f"completed. Error id `{error_id}`: an admin can find the details in the bot's log "
        "under that id."
    )
    return Message(_strip(body.replace(":warning: ", "")), [section(body)])
