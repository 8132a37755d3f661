"""NPS and CSAT: the score with its interval, the trend as bars, groups, charts, comments."""

from __future__ import annotations

import json

from clmbot import plain
from clmbot.feedback.reports import SMALL_GROUP
from clmbot.results import ChartResult, FeedbackResult, ScoreByResult, ScoreResult
from clmbot.slack.views.base import (
    RUN_WORDS,
    Block,
    Where,
    clip,
    context,
    esc,
    header,
    section,
    user,
)
from clmbot.slack.views.funnel import bar

COMMENT_SHOWN = 500


def _share(kind: str, score: float | None) -> float | None:
    """A score as a 0..1 share of its scale, for a bar."""
    if score is None:
        return None
    return (score + 100) / 200 if kind == "nps" else score / 100


def score_blocks(result: ScoreResult, where: Where) -> list[Block]:
    r, kind = result.report, result.report.kind
    cur, name = r.current, kind.upper()
    who = f" · `{esc(clip(result.of, 500))}`" if result.of else ""
    period = plain.period_text(r.since, r.now, where.zone)
    if not cur.n:
        return [
            header(f"{name}: no answers"),
            context(f"{period}{who}"),
            section("No answers in this period. Widen it (`since 2y`) or the filters."),
        ]
    blocks: list[Block] = [
        header(f"{name} {plain.score_value(kind, cur.score)}"),
        context(f"95% interval {plain.interval(kind, cur.low, cur.high)} · {period}{who}"),
        section(
            f"{esc(plain.counts(cur))}\nEach customer's latest answer: *{r.respondents:,}* "
            f"customers ({r.responses:,} answers in all)."
        ),
    ]
    lines = [
        f"`{m.month.strftime('%Y-%m')}` `{bar(_share(kind, m.score))}` "
        + (f"*{plain.score_value(kind, m.score)}* ({m.n:,})" if m.n else "no answers")
        for m in r.trend[-24:]
    ]
    blocks.append(section("*By month*\n" + "\n".join(lines)))
    if len(r.trend) > 24:
        blocks.append(context(f"{len(r.trend) - 24} earlier months: ask with a later `since`"))
    blocks.append(
        context(f"`{esc(where.prefix)}{kind} chart` posts the trend as a picture with its interval")
    )
    return blocks


def score_by_blocks(result: ScoreByResult, where: Where) -> list[Block]:
    r, kind = result.report, result.report.kind
    who = f" · `{esc(clip(result.of, 500))}`" if result.of else ""
    period = plain.period_text(r.since, r.now, where.zone)
    blocks: list[Block] = [
        header(f"{kind.upper()} by {r.group}"),
        context(f"{plain.score_value(kind, r.overall.score)} overall · {period}{who}"),
    ]
    if not r.overall.n:
        blocks.append(section("No answers in this period."))
        return blocks
    lines = []
    for line in r.lines[:40]:
        label = user(line.value) if r.group == "owner" and line.value else esc(line.value or "none")
        small = " _too few to mean much_" if line.small else ""
        lines.append(
            f"`{bar(_share(kind, line.score))}` *{plain.score_value(kind, line.score)}* {label} "
            f"({plain.interval(kind, line.result.low, line.result.high)}, {line.n:,}){small}"
        )
    for i in range(0, len(lines), 20):
        blocks.append(section("\n".join(lines[i : i + 20])))
    more = f" {len(r.lines) - 40} more groups not shown." if len(r.lines) > 40 else ""
    blocks.append(
        context(
            f"Each customer's latest answer; in brackets the 95% interval and how many "
            f"customers. Under {SMALL_GROUP} customers a group's score says little.{more}"
        )
    )
    return blocks


def chart_blocks(result: ChartResult, where: Where) -> list[Block]:
    return [
        section(
            f":chart_with_upwards_trend: I posted *{esc(result.file.title)}* here: "
            f"{result.report.respondents:,} customers' answers."
        )
    ]


def feedback_blocks(result: FeedbackResult, where: Where) -> list[Block]:
    page = result.page
    who = f" · `{esc(clip(result.of, 500))}`" if result.of else ""
    period = plain.period_text(result.since, result.now, where.zone)
    if not page.items:
        return [
            section(f"No comments{' on this page' if page.offset else ''}."),
            context(f"{period}{who}"),
        ]
    total = f"{page.total:,}{'+' if page.total_capped else ''}"
    order = "detractors first" if result.detractors_first else "newest first"
    blocks: list[Block] = [
        header(f"Comments {page.offset + 1}-{page.offset + len(page.items)} of {total}"),
        context(f"{order} · {period}{who}"),
    ]
    for c in page.items:
        mark = ":red_circle:" if c.is_detractor else ":large_green_circle:"
        blocks.append(
            section(
                f"{mark} *{c.kind.upper()} {c.score}* · {esc(clip(c.name, 100))} "
                f"`{esc(clip(c.external_id, 60))}` · {plain.day(c.responded_at, where.zone)} · "
                f"{user(c.owner_slack_id)}\n> _{esc(clip(c.comment, COMMENT_SHOWN))}_"
            )
        )
    if result.more:
        value = json.dumps(result.more, ensure_ascii=False)
        if len(value) <= 2000:
            blocks.append(
                {
                    "type": "actions",
                    "block_id": "more",
                    "elements": [
                        {
                            "type": "button",
                            "action_id": f"{RUN_WORDS}:0",
                            "text": {"type": "plain_text", "text": "Next 10"},
                            "value": value,
                        }
                    ],
                }
            )
    return blocks


VIEWS = {
    ScoreResult: score_blocks,
    ScoreByResult: score_by_blocks,
    ChartResult: chart_blocks,
    FeedbackResult: feedback_blocks,
}
