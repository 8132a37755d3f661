"""`nps [<segment | filters>] [since <when>] [by stage|plan|region|owner] [chart]`."""

from __future__ import annotations

from clmbot.commands.scores import score_command
from clmbot.commands.spec import CommandSpec

SPEC = CommandSpec(
    "nps",
    "nps [<segment | filters>] [since <when>] [by stage | plan | region | owner] [chart]",
    "nps plan:pro since 6mo by region",
    "Net Promoter Score with its 95% interval, promoters, passives and detractors, and the "
    "trend by month (default: the last 12 months); `chart` posts the trend as a picture",
)
COMMAND = score_command("nps", SPEC)
