"""What `nps` and `csat` share: `[<segment | filters>] [since <when>] [by <group>] [chart]`.

The two commands differ only in the scale they read; each has its own module (its spec)
built by `score_command` here.
"""

from __future__ import annotations

import re

from clmbot.commands.base import Call, Command, period_of, split_words
from clmbot.commands.spec import CommandSpec
from clmbot.feedback.chart import trend_png
from clmbot.feedback.reports import GROUP_COLUMNS, report, report_by
from clmbot.results import (
    CHANNEL,
    ChartResult,
    FileOut,
    Result,
    ScoreByResult,
    ScoreResult,
    UsageResult,
)
from clmbot.segments import SegmentError, resolve

DEFAULT_PERIOD = "12mo"
KEYWORDS = ("since", "by", "chart")


def split_at_keyword(text: str, keywords: tuple[str, ...]) -> tuple[str, str]:
    """`text` cut before the first of `keywords` that stands as a word outside quotes: the
    filters, then the command's own words (`since 30d by plan`)."""
    quoted = False
    for match in re.finditer(r'"|(?<!\S)(\w+)(?!\S)', text):
        if match.group(0) == '"':
            quoted = not quoted
        elif not quoted and match.group(1).lower() in keywords:
            return text[: match.start()].strip(), text[match.start() :].strip()
    return text.strip(), ""


def score_command(kind: str, spec: CommandSpec) -> Command:
    def handle(spec: CommandSpec, args: list[str], call: Call) -> Result:
        head, tail = split_at_keyword(call.text, KEYWORDS)
        try:
            words = split_words(tail)
        except ValueError:
            return UsageResult(spec, 'A quote is not closed: check your " marks.')
        lowered = [w.lower() for w in words]
        chart = "chart" in lowered
        if chart:
            words = [w for w in words if w.lower() != "chart"]
            lowered = [w.lower() for w in words]
        group = None
        if "by" in lowered:
            at = lowered.index("by")
            if at + 1 >= len(words) or lowered[at + 1] not in GROUP_COLUMNS:
                return UsageResult(spec, f"Group by one of: {', '.join(GROUP_COLUMNS)}.")
            group = lowered[at + 1]
            words = words[:at] + words[at + 2 :]
        if chart and group:
            return UsageResult(
                spec, "A chart shows the trend of one score: drop `by …`, or `chart`."
            )
        since = period_of(spec, words, call, DEFAULT_PERIOD)
        if isinstance(since, UsageResult):
            return since
        where = None
        named: str | None = None
        if head:
            try:
                segment, where = resolve(
                    call.session, head, settings=call.settings, now=call.now, actor_id=call.actor.id
                )
            except SegmentError as exc:
                return UsageResult(spec, str(exc))
            names = {f.saved for f in segment.filters}
            named = names.pop() if len(names) == 1 else None  # one saved segment, alone
        of = head or None
        if group:
            grouped = report_by(
                call.session,
                kind,
                group,
                since=since,
                now=call.now,
                where=where,  # type: ignore[arg-type]
            )
            return ScoreByResult(grouped, of)
        result = report(
            call.session,
            kind,
            since=since,
            now=call.now,
            zone=call.settings.timezone,
            where=where,  # type: ignore[arg-type]
        )
        if chart:
            # Posted where everyone in the channel sees it: a saved segment's name, never the
            # filters typed (they may name a customer).
            title = f"{kind.upper()} by month" + (
                f", segment {named}" if named else ", a segment" if head else ""
            )
            png = trend_png(result, title=title)
            file = FileOut(f"{kind}-trend.png", png, title, CHANNEL)
            return ChartResult(result, file, of)
        return ScoreResult(result, of)

    return Command(spec, handle)
