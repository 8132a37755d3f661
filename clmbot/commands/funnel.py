"""`funnel [since <when>] [chart]`: customers per stage, conversions, median stays; `chart`
posts them as a picture in the channel."""

from __future__ import annotations

from clmbot.commands.base import Call, Command, take_since
from clmbot.commands.spec import CommandSpec
from clmbot.funnel_chart import funnel_png
from clmbot.lifecycle import DEFAULT_FUNNEL_PERIOD, funnel
from clmbot.results import CHANNEL, FileOut, FunnelChartResult, FunnelResult, Result, UsageResult

SPEC = CommandSpec(
    "funnel",
    "funnel [since <date | 30d | 3mo | this month | …>] [chart]",
    "funnel since 30d",
    "customers per stage, conversion between stages, median days in each stage; `chart` "
    "posts the funnel as a picture",
)
CHART_TITLE = "Customer funnel"


def handle(spec: CommandSpec, args: list[str], call: Call) -> Result:
    words = list(args)
    lowered = [w.lower() for w in words]
    if lowered.count("chart") > 1:
        return UsageResult(spec, "Say `chart` once.")
    # `chart` stands first or last (`funnel chart since 30d`, `funnel since 30d chart`);
    # anywhere else it ends the `since` words and is left over, which says what went wrong.
    chart = bool(words) and "chart" in (lowered[0], lowered[-1])
    if chart:
        words = words[1:] if lowered[0] == "chart" else words[:-1]
    if words and words[0].lower() != "since":
        words.insert(0, "since")  # `funnel 30d` reads as `funnel since 30d`
    period = take_since(spec, words, call, DEFAULT_FUNNEL_PERIOD)
    if isinstance(period, UsageResult):
        return period
    since, rest = period
    if rest:
        return UsageResult(spec, f"I don't know what `{' '.join(rest)}` means here.")
    result = funnel(call.session, since=since, now=call.now, lifecycle=call.settings.lifecycle)
    if not chart:
        return FunnelResult(result)
    # Posted in the channel: counts and rates only, which the chart is made of.
    png = funnel_png(result, title=CHART_TITLE, zone=call.settings.timezone)
    return FunnelChartResult(result, FileOut("funnel.png", png, CHART_TITLE, CHANNEL))


COMMAND = Command(SPEC, handle)
