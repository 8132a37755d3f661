"""The funnel: customers per stage, conversions as bars, median stays; and what is said when
it was posted as a picture."""

from __future__ import annotations

from clmbot import plain
from clmbot.results import FunnelChartResult, FunnelResult
from clmbot.slack.views.base import Block, Where, context, esc, fields, header, section, sections


def bar(rate: float | None, width: int = 10) -> str:
    """A share as a bar of blocks, readable in any font Slack uses for code."""
    if rate is None:
        return "░" * width
    filled = round(max(0.0, min(rate, 1.0)) * width)
    return "█" * filled + "░" * (width - filled)


def funnel_blocks(result: FunnelResult, where: Where) -> list[Block]:
    f, zone = result.funnel, where.zone
    days = plain.period_days(f.since, f.now)
    cells = []
    for s in f.stages:
        median = "—" if s.median_days is None else f"{s.median_days:.1f} days (of {s.stays:,})"
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
    when = plain.counted_at(f, zone)
    if when:
        blocks.insert(2, context(f":hourglass_flowing_sand: {esc(when)}"))
    if f.conversions:
        lines = [
            f"{esc(c.from_stage)} → {esc(c.to_stage)}  `{bar(c.rate)}` "
            f"*{plain.percent(c.rate)}* ({c.converted:,} of {c.base:,})"
            for c in f.conversions
        ]
        blocks += sections("*Conversion in the period*", lines)
        blocks.append(
            context(
                "Of the customers in a stage during the period, the share who "
                "reached the next stage or a later one within it. A median stay "
                "counts the stays that ended in the period."
            )
        )
    blocks.append(context(f"`{esc(where.prefix)}funnel chart` posts the funnel as a picture"))
    return blocks


def funnel_chart_blocks(result: FunnelChartResult, where: Where) -> list[Block]:
    """Only the asker sees this; the picture itself went to the channel."""
    f = result.funnel
    return [
        section(
            f":bar_chart: I posted *{esc(result.file.title)}* here: {f.total:,} customers by "
            f"stage, with the conversion between stages over the last "
            f"{plain.period_days(f.since, f.now)} days."
        )
    ]


VIEWS = {FunnelResult: funnel_blocks, FunnelChartResult: funnel_chart_blocks}
