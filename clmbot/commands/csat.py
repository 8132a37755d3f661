"""`csat [<segment | filters>] [since <when>] [by stage|plan|region|owner] [chart]`."""

from __future__ import annotations

from clmbot.commands.scores import score_command
from clmbot.commands.spec import CommandSpec

SPEC = CommandSpec(
    "csat",
    "csat [<segment | filters>] [since <when>] [by stage | plan | region | owner] [chart]",
    "csat since this quarter by owner",
    "customer satisfaction: the share of 4s and 5s with its 95% interval, and the trend by "
    "month (default: the last 12 months)",
)
COMMAND = score_command("csat", SPEC)
