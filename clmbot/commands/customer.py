"""`customer <ref>`: a customer's card."""

from __future__ import annotations

from clmbot.commands.base import Call, Command, find_one
from clmbot.commands.spec import CommandSpec
from clmbot.profile import customer_profile
from clmbot.results import ProfileResult, Result, UsageResult
from clmbot.store.models import Customer

SPEC = CommandSpec(
    "customer",
    "customer <external id | e-mail | name>",
    "customer Acme",
    "a customer's card: stage and its history, owner, plan, MRR, last activity, "
    "latest NPS and CSAT",
)


def handle(spec: CommandSpec, args: list[str], call: Call) -> Result:
    if not args:
        return UsageResult(spec, "Say which customer: an external id, an e-mail or a name.")
    found = find_one(call.session, " ".join(args), spec.name)
    if not isinstance(found, Customer):
        return found
    profile = customer_profile(
        call.session, found, now=call.now, terminal=call.settings.lifecycle.terminal
    )
    return ProfileResult(profile)


COMMAND = Command(SPEC, handle)
