"""A customer's card, and the answers to a reference that names several customers or none."""

from __future__ import annotations

from datetime import datetime, tzinfo

from clmbot import plain
from clmbot.results import Answer, MatchesResult, NoMatchResult, ProfileResult
from clmbot.slack.views.base import (
    COMMENT_SHOWN,
    REASON_SHOWN,
    TAGS_SHOWN,
    Block,
    Where,
    clip,
    context,
    esc,
    fields,
    header,
    open_profile_button,
    run_button,
    section,
    user,
)


def matches_blocks(result: MatchesResult, where: Where) -> list[Block]:
    """Several customers match: listed, each with a button that finishes what was asked for
    that customer (opens their card, or makes the stage move), and how to be exact."""
    listed = "\n".join(
        f"• {esc(clip(c.name, 100))} (`{esc(clip(c.external_id, 60))}`)" for c in result.matches
    )
    more = "\n…and more: type more of the name." if result.more else ""
    words = (result.command, result.matches[0].external_id, *result.rest)
    example = where.prefix + " ".join(_quoted(w) for w in words)
    count = f"{len(result.matches)}+" if result.more else str(len(result.matches))
    if result.command == "customer":
        question = ""
        buttons = [
            open_profile_button(c.external_id, c.name, i) for i, c in enumerate(result.matches)
        ]
    else:
        question = (
            f" Which one did you mean to `{esc(' '.join((result.command, '…', *result.rest)))}`?"
        )
        buttons = [
            run_button([result.command, c.external_id, *result.rest], c.name, i)
            for i, c in enumerate(result.matches)
        ]
    blocks = [section(f"*{count} customers match “{esc(result.ref)}”.*{question}\n{listed}{more}")]
    if all(b is not None for b in buttons):
        blocks.append({"type": "actions", "block_id": "matches", "elements": buttons})
    blocks.append(context(f"To be exact, use the external id or the e-mail, e.g. `{esc(example)}`"))
    return blocks


def _quoted(word: str) -> str:
    return f'"{word}"' if any(c.isspace() for c in word) else word


def no_match_blocks(result: NoMatchResult, where: Where) -> list[Block]:
    if result.closest:
        closest = ", ".join(f"*{esc(n)}*" for n in result.closest)
        tail = f" Closest names: {closest}."
    else:
        tail = " No name is close either: try the external id or the e-mail."
    return [section(f"No customer matches “{esc(result.ref)}”.{tail}")]


def _answer(answer: Answer | None, zone: tzinfo) -> str:
    if answer is None:
        return "—"
    return f"{answer.score} on {plain.day(answer.responded_at, zone)}"


def _ago(at: datetime, now: datetime) -> str:
    days = (now - at).days
    return "today" if days < 1 else f"{days} day{'s' if days > 1 else ''} ago"


def profile_blocks(result: ProfileResult, where: Where) -> list[Block]:
    zone, now = where.zone, where.now
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
                ("MRR", esc(plain.mrr(p, where.display))),
                ("Last activity", activity),
                ("Events, last 30 days", str(p.events_last_30_days)),
                ("NPS, latest", _answer(p.latest_nps, zone)),
                ("CSAT, latest", _answer(p.latest_csat, zone)),
            ]
        ),
    ]
    if p.risk is not None:
        why = "\n".join(f"• {esc(clip(r, REASON_SHOWN))}" for r in p.risk_reasons[:5])
        blocks.append(section(f"*Churn risk {p.risk}*/100" + (f"\n{why}" if why else "")))
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
    return blocks


def _by(by: str, reason: str | None) -> str:
    """Who moved the customer and why: "by @Sari: renewed", "by import of customers.csv"."""
    if by == "import" and reason and "import of " in reason:
        return "by import of " + esc(reason.split("import of ", 1)[1])
    who = user(by) if by[:1] in ("U", "W") else esc(by)
    return f"by {who}: {esc(clip(reason, REASON_SHOWN))}" if reason else f"by {who}"


VIEWS = {
    MatchesResult: matches_blocks,
    NoMatchResult: no_match_blocks,
    ProfileResult: profile_blocks,
}
