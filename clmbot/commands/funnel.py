"""`funnel [since <when>]`: customers per stage, conversions, median stays."""

from __future__ import annotations

from clmbot.commands.base import Call, Command, take_since
from clmbot.commands.spec import CommandSpec
from clmbot.lifecycle import DEFAULT_FUNNEL_PERIOD, funnel
from clmbot.results import FunnelResult, Result, UsageResult

SPEC = CommandSpec(
    "funnel",
    "funnel [since <date | 30d | 3mo | this month | …>]",
    "funnel since 30d",
    "customers per stage, conversion between stages, median days in each stage",
)


def handle(spec: CommandSpec, args: list[str], call: Call) -> Result:
    words = list(args)
    if words and words[0].lower() != "since":
        words.insert(0, "since")  # `funnel 30d` reads as `funnel since 30d`
    period = take_since(spec, words, call, DEFAULT_FUNNEL_PERIOD)
    if isinstance(period, UsageResult):
        return period
    since, rest = period
    if rest:
        return UsageResult(spec, f"I don't know what `{' '.join(rest)}` means here.")
    return FunnelResult(
        funnel(call.session, since=since, now=call.now, lifecycle=call.settings.lifecycle)
    )


COMMAND = Command(SPEC, handle)
