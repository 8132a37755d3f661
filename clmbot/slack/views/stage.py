"""The answer to a stage move."""

from __future__ import annotations

from clmbot.results import StageResult
from clmbot.slack.views.base import Block, Where, context, esc, section


def stage_blocks(result: StageResult, where: Where) -> list[Block]:
    move, c = result.move, result.customer
    if not move.changed:
        return [section(f"*{esc(c.name)}* is already in *{esc(move.to_stage)}*; nothing changed.")]
    why = f": {esc(move.reason)}" if move.reason else ""
    return [
        section(
            f":white_check_mark: Moved *{esc(c.name)}* from {esc(move.from_stage)} to "
            f"*{esc(move.to_stage)}*{why}"
        ),
        context(f"Recorded in the stage history, by <@{esc(move.by)}>"),
    ]


VIEWS = {StageResult: stage_blocks}
