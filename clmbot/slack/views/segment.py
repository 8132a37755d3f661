"""Segments: a summary with "open card" buttons, the saved list, and saves and exports."""

from __future__ import annotations

from clmbot import plain
from clmbot.results import (
    SegmentDeletedResult,
    SegmentExportResult,
    SegmentListResult,
    SegmentResult,
    SegmentSavedResult,
)
from clmbot.slack.views.base import (
    Block,
    Where,
    clip,
    context,
    esc,
    header,
    open_profile_button,
    section,
    user,
)
from clmbot.slack.views.funnel import bar

LISTED = 25  # saved segments shown in one answer; the rest are counted


def segment_blocks(result: SegmentResult, where: Where) -> list[Block]:
    s = result.summary
    money = where.display.money
    about = f"`{esc(clip(result.expression, 500))}`"
    if result.canonical != result.expression:
        about += f" = `{esc(clip(result.canonical, 1000))}`"
    lost = f" · {esc(money(s.churned_mrr))} paid by churned customers" if s.churned_mrr else ""
    blocks: list[Block] = [
        header(f"{plain.plural(s.count, 'customer')} · MRR {money(s.mrr)}"),
        context(f"Segment {about}{lost}"),
    ]
    if not s.count:
        blocks.append(section("No customer matches. Loosen a filter, or check a value on a card."))
        return blocks
    top = max(n for _, n in s.by_stage)
    stages = "\n".join(f"`{bar(n / top)}` {esc(stage)} *{n:,}*" for stage, n in s.by_stage[:20])
    blocks.append(section(f"*By stage*\n{stages}"))
    title = (
        f"*The first {len(s.sample)}* (live customers first, by MRR)"
        if s.count > len(s.sample)
        else "*The customers*"
    )
    for i, c in enumerate(s.sample):
        line = (
            f"*{esc(clip(c.name, 100))}* `{esc(clip(c.external_id, 60))}` · {esc(c.stage)}"
            f" · {esc(c.plan or '—')} · {esc(money(c.mrr) if c.mrr is not None else '—')}"
            f" · {user(c.owner_slack_id)}"
        )
        block = section((title + "\n" if i == 0 else "") + line)
        block["accessory"] = open_profile_button(c.external_id, "Open card", i)
        blocks.append(block)
    if s.count > len(s.sample):
        blocks.append(
            context(
                f"{s.count - len(s.sample):,} more: "
                f"`{esc(where.prefix)}segment {esc(clip(result.expression, 500))} export` sends "
                "you all of them as a CSV, in a DM."
            )
        )
    return blocks


def saved_blocks(result: SegmentSavedResult, where: Where) -> list[Block]:
    seg = result.segment
    verb = "Replaced" if result.replaced else "Saved"
    return [
        section(
            f":white_check_mark: {verb} segment *{esc(seg.name)}*: "
            f"`{esc(clip(seg.expression, 1500))}`"
            + (f" ({seg.count:,} customers now)." if seg.count is not None else ".")
        ),
        context(
            f"Use it as `{esc(where.prefix)}segment {esc(seg.name)}`, or in `nps`, `csat` and "
            "`feedback`. Recorded in the audit log."
        ),
    ]


def deleted_blocks(result: SegmentDeletedResult, where: Where) -> list[Block]:
    return [
        section(f":wastebasket: Deleted segment *{esc(result.name)}*. Recorded in the audit log.")
    ]


def list_blocks(result: SegmentListResult, where: Where) -> list[Block]:
    if not result.segments:
        return [
            section(
                f"No saved segments yet. Save one with "
                f"`{esc(where.prefix)}segment save vip plan:pro mrr>500`."
            )
        ]
    lines = []
    for seg in result.segments[:LISTED]:
        count = f"*{seg.count:,}*" if seg.count is not None else ":warning: cannot run"
        problem = f"\n      _{esc(clip(seg.problem, 200))}_" if seg.problem else ""
        lines.append(f"*{esc(seg.name)}* · {count} · `{esc(clip(seg.expression, 200))}`{problem}")
    blocks: list[Block] = [
        header(f"{len(result.segments)} saved segment{'s' if len(result.segments) != 1 else ''}")
    ]
    for i in range(0, len(lines), 10):
        blocks.append(section("\n".join(lines[i : i + 10])))
    if len(result.segments) > LISTED:
        blocks.append(context(f"and {len(result.segments) - LISTED} more"))
    return blocks


def export_blocks(result: SegmentExportResult, where: Where) -> list[Block]:
    return [
        section(
            f":page_facing_up: I sent you *{esc(result.file.filename)}* in a DM: "
            f"{result.count:,} customers matching `{esc(clip(result.expression, 1000))}`."
        ),
        context(
            "It holds personal data (names, e-mails): keep it out of channels. Cells a "
            "spreadsheet would run as a formula start with a ' so they stay text."
        ),
    ]


VIEWS = {
    SegmentResult: segment_blocks,
    SegmentSavedResult: saved_blocks,
    SegmentDeletedResult: deleted_blocks,
    SegmentListResult: list_blocks,
    SegmentExportResult: export_blocks,
}
