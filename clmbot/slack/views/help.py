"""Help, greetings, and the answers that say what to type instead."""

from __future__ import annotations

from clmbot.results import (
    GreetingResult,
    HelpResult,
    NotYetResult,
    RefusedResult,
    UsageResult,
)
from clmbot.slack.views.base import Block, Where, context, esc, header, section


def help_blocks(result: HelpResult, where: Where) -> list[Block]:
    prefix = where.prefix
    blocks: list[Block] = []
    if result.note:
        blocks.append(section(f":thinking_face: {esc(result.note)}"))
    blocks.append(header("clmbot: the customer lifecycle, from Slack"))
    for spec in result.commands:
        admin = " _(admins)_" if spec.admin_only else ""
        blocks.append(
            section(
                f"*`{esc(prefix + spec.usage)}`*{admin}\n{esc(spec.summary)}\n"
                f"Example: `{esc(prefix + spec.example)}`"
            )
        )
    later = (
        " Coming later: " + ", ".join(f"`{p}`" for p in result.planned) + "."
        if result.planned
        else ""
    )
    blocks.append(
        context(
            "A customer is its external id, its e-mail, or the start of its name "
            '("quotes" for names with spaces when a stage follows).' + later
        )
    )
    return blocks


def greeting_blocks(result: GreetingResult, where: Where) -> list[Block]:
    prefix = where.prefix
    examples = " or ".join(f"`{esc(prefix + spec.example)}`" for spec in result.examples)
    return [
        section(
            f":wave: Hello! Ask me about customers with the same words as after `/clm`, e.g. "
            f"{examples}. `{esc(prefix)}help` lists everything."
        )
    ]


def usage_blocks(result: UsageResult, where: Where) -> list[Block]:
    spec, prefix = result.spec, where.prefix
    return [
        section(
            f":warning: {esc(result.problem)}\n*Usage:* `{esc(prefix + spec.usage)}`\n"
            f"*Example:* `{esc(prefix + spec.example)}`"
        )
    ]


def not_yet_blocks(result: NotYetResult, where: Where) -> list[Block]:
    prefix = where.prefix
    return [
        section(
            f"`{prefix}{result.command}` is not available yet in this clmbot. "
            f"`{prefix}help` lists what is."
        )
    ]


def refused_blocks(result: RefusedResult, where: Where) -> list[Block]:
    return [section(f":no_entry: {result.message}")]


VIEWS = {
    HelpResult: help_blocks,
    GreetingResult: greeting_blocks,
    UsageResult: usage_blocks,
    NotYetResult: not_yet_blocks,
    RefusedResult: refused_blocks,
}
