"""Survey runs as the team sees them: what was queued and skipped, a confirmation for a
large run, and each run's progress."""

from __future__ import annotations

from clmbot import plain
from clmbot.results import SurveyConfirmResult, SurveyQueuedResult, SurveyStatusResult
from clmbot.slack.views.base import Block, Where, clip, context, esc, header, run_button, section
from clmbot.slack.views.funnel import bar
from clmbot.surveys.queue import SKIP_REASONS


def _skipped(skipped: tuple[tuple[str, int], ...]) -> str:
    return "\n".join(f"• {n:,} {esc(SKIP_REASONS.get(key, key))}" for key, n in skipped)


def queued_blocks(result: SurveyQueuedResult, where: Where) -> list[Block]:
    kind = result.kind.upper()
    target = f"`{esc(clip(result.target, 500))}`"
    if result.queued == 0:
        blocks = [section(f"No {kind} survey queued for {target}.")]
        if result.skipped:
            blocks.append(section(f"*Skipped*\n{_skipped(result.skipped)}"))
        else:
            blocks.append(context("No customer matches."))
        return blocks
    plural = "s" if result.queued != 1 else ""
    now = result.queued - result.later
    if result.later and now:
        timing = f"{now:,} go out now, {result.later:,} when their hours begin"
    elif result.later and result.first_send:
        timing = f"The first goes out at {plain.when(result.first_send, where.zone)}"
    else:
        timing = "They go out now"
    blocks: list[Block] = [
        section(
            f":incoming_envelope: Queued *{result.queued:,} {kind} survey{plural}* for {target} "
            f"(run #{result.run_id})."
        ),
        context(
            f"{timing}, by DM, in each customer's own hours ({esc(result.window)}) and "
            f"language. `{where.prefix}survey status` shows the answers coming in."
        ),
    ]
    if result.skipped:
        blocks.append(section(f"*Skipped*\n{_skipped(result.skipped)}"))
    return blocks


def confirm_blocks(result: SurveyConfirmResult, where: Where) -> list[Block]:
    blocks: list[Block] = [
        section(
            f":question: This would ask *{result.eligible:,} customers* for their "
            f"{result.kind.upper()} (`{esc(clip(result.target, 500))}`). Queue them?"
        )
    ]
    if result.skipped:
        blocks.append(section(f"*Would be skipped*\n{_skipped(result.skipped)}"))
    button = run_button(result.confirm, f"Queue {result.eligible:,} surveys")
    if button is not None:
        button["style"] = "primary"
        blocks.append({"type": "actions", "block_id": "survey_confirm", "elements": [button]})
    blocks.append(context(f"Or type `{where.prefix}{esc(clip(result.confirm, 600))}`"))
    return blocks


def status_blocks(result: SurveyStatusResult, where: Where) -> list[Block]:
    if not result.runs:
        return [
            section(
                f"No surveys yet. Queue some with `{where.prefix}survey nps <customer | segment | "
                "filters>`."
            )
        ]
    blocks: list[Block] = [header("Survey runs")]
    for r in result.runs:
        rate = r.response_rate
        by = f"<@{esc(r.created_by)}>" if r.created_by[:1] in "UW" else esc(r.created_by)
        lines = [
            f"*#{r.run_id} {r.kind.upper()}* · `{esc(clip(r.target, 200))}` · "
            f"{plain.day(r.created_at, where.zone)} by {by}",
            f"`{bar(rate)}` *{plain.percent(rate)}* response rate · {r.answered:,} answered · "
            f"{r.sent:,} waiting · {r.expired:,} expired · {r.queued:,} queued",
        ]
        if r.failed or r.cancelled:
            lines.append(f"_{r.failed:,} refused by Slack · {r.cancelled:,} cancelled_")
        blocks.append(section("\n".join(lines)))
    more = result.total - len(result.runs)
    note = "Rate: answered of those delivered."
    blocks.append(context(note + (f" {more:,} older runs not shown." if more > 0 else "")))
    return blocks


VIEWS = {
    SurveyQueuedResult: queued_blocks,
    SurveyConfirmResult: confirm_blocks,
    SurveyStatusResult: status_blocks,
}
