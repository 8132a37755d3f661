"""The daily digest: a headline (how many drifted, the MRR they hold), then each customer
with owner, risk, change, reasons and the buttons to act; a click redraws the message with
who did what."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, tzinfo

from clmbot import plain
from clmbot.alerts.select import AlertLine
from clmbot.slack.views.base import (
    Block,
    Message,
    clip,
    context,
    esc,
    header,
    open_profile_button,
    section,
    user,
)
from clmbot.store.models import ASSIGNED, CONTACTED, RESOLVED, SNOOZED

ALERT_ACTION = "alert"
IN_MESSAGE = 10  # customers in the digest itself; the rest go to its thread


def _state(line: AlertLine, zone: tzinfo) -> str:
    who = user(line.updated_by) if line.updated_by and line.updated_by[:1] in "UW" else ""
    if line.status == ASSIGNED:
        return f":bust_in_silhouette: Assigned to {who}"
    if line.status == CONTACTED:
        return f":telephone_receiver: Contacted by {who}"
    if line.status == SNOOZED and line.snoozed_until is not None:
        return f":zzz: Snoozed by {who} until {plain.day(line.snoozed_until, zone)}"
    if line.status == RESOLVED:
        return ":white_check_mark: Resolved (a stage move or a good answer)"
    return ""


def _button(alert_id: int, verb: str, label: str) -> Block:
    return {
        "type": "button",
        "action_id": f"{ALERT_ACTION}:{verb}",
        "text": {"type": "plain_text", "text": label},
        "value": str(alert_id),
    }


def alert_blocks(
    line: AlertLine, money: Callable[[float], str], zone: tzinfo, snooze_days: int = 14
) -> list[Block]:
    change = (
        f" (+{line.risk - line.previous} since the last pass)"
        if line.previous is not None and line.risk > line.previous
        else " (new)"
        if line.previous is None
        else ""
    )
    mrr = esc(money(line.mrr)) if line.mrr is not None else "—"
    reasons = "\n".join(f"• {esc(clip(r, 200))}" for r in line.reasons[:4])
    text = (
        f"*{esc(clip(line.name, 100))}* `{esc(clip(line.external_id, 60))}` · risk "
        f"*{line.risk}*{change} · MRR {mrr} · owner {user(line.owner_slack_id)}\n{reasons}"
    )
    blocks: list[Block] = [section(text)]
    state = _state(line, zone)
    if state:
        blocks.append(context(state))
    elements = [open_profile_button(line.external_id, "Open profile", line.id)]
    if line.status != RESOLVED:
        elements = [
            _button(line.id, "assign", "Assign to me"),
            _button(line.id, "snooze", f"Snooze {snooze_days} days"),
            _button(line.id, "contacted", "Contacted"),
            *elements,
        ]
    blocks.append({"type": "actions", "block_id": f"alert:{line.id}", "elements": elements})
    return blocks


def digest(
    lines: list[AlertLine],
    *,
    total: int,
    mrr: float,
    day: date,
    route: str,
    money: Callable[[float], str],
    zone: tzinfo,
    more_in_thread: int = 0,
    beyond: int = 0,
    snooze_days: int = 14,
) -> Message:
    """The digest's own message: the headline and its first customers."""
    title = f"{total} customer{'s' if total != 1 else ''} drifting toward churn"
    blocks: list[Block] = [
        header(title),
        context(
            f"{day:%A %d %B %Y} · they hold MRR {esc(money(mrr))}"
            + (f" · route {esc(route)}" if route != "default" else "")
        ),
    ]
    for line in lines:
        blocks += alert_blocks(line, money, zone, snooze_days)
    if more_in_thread - beyond > 0:
        blocks.append(context(f"{more_in_thread - beyond} more in the thread :thread:"))
    if beyond:
        blocks.append(context(f"{beyond} more not listed here: `/clm at-risk` shows everyone"))
    return Message(f"{title}, MRR {money(mrr)}", blocks[:50])


def thread_part(
    lines: list[AlertLine], money: Callable[[float], str], zone: tzinfo, snooze_days: int = 14
) -> Message:
    blocks: list[Block] = []
    for line in lines:
        blocks += alert_blocks(line, money, zone, snooze_days)
    return Message(f"{len(lines)} more customers drifting toward churn", blocks[:50])


def all_quiet(day: date) -> Message:
    text = f"All quiet on {day:%A %d %B}: no customer drifted toward churn."
    return Message(text, [section(f":sunny: {text}")])
