"""Every command, in the order `help` lists them. A new command is a new module, added to
`_MODULES`; nothing else lists commands."""

from __future__ import annotations

from clmbot.commands import (
    at_risk,
    csat,
    customer,
    feedback,
    forget,
    funnel,
    nps,
    segment,
    segments,
    stage,
    survey,
)
from clmbot.commands.base import Call, Command
from clmbot.commands.spec import CommandSpec
from clmbot.results import HelpResult, Result

HELP = CommandSpec("help", "help", "help", "every subcommand, with an example")
_MODULES = (
    customer,
    stage,
    funnel,
    segment,
    segments,
    nps,
    csat,
    feedback,
    survey,
    at_risk,
    forget,
)

# In PRODUCT.md, not built yet: answered with "not yet", never with "unknown".
PLANNED: tuple[str, ...] = ()


def help_result(note: str | None = None) -> HelpResult:
    return HelpResult(list(COMMANDS.values()), note, PLANNED)


def _help(spec: CommandSpec, args: list[str], call: Call) -> Result:
    return help_result()


REGISTRY: dict[str, Command] = {
    "help": Command(HELP, _help),
    **{m.COMMAND.spec.name: m.COMMAND for m in _MODULES},
}
COMMANDS: dict[str, CommandSpec] = {name: c.spec for name, c in REGISTRY.items()}
