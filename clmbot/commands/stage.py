"""`stage <ref> <stage> [reason…]`: a person moves a customer (admins)."""

from __future__ import annotations

from clmbot.commands.base import Call, Command, find_one
from clmbot.commands.spec import CommandSpec
from clmbot.customers import customer_ref, find_customers
from clmbot.lifecycle import UnknownStage, move_customer
from clmbot.results import Result, StageResult, UsageResult
from clmbot.store.models import Customer

SPEC = CommandSpec(
    "stage",
    "stage <customer> <stage> [reason…]",
    "stage Acme retention renewed for two years",
    "move a customer to another stage, with the reason (admins only)",
    admin_only=True,
)


def handle(spec: CommandSpec, args: list[str], call: Call) -> Result:
    stages = call.settings.lifecycle.stages
    candidates = [i for i in range(1, len(args)) if args[i].lower() in stages]
    if not candidates:
        if len(args) < 2:
            return UsageResult(spec, "Say which customer, and the stage to move them to.")
        at = 1  # no known stage among the words: the second one is meant as the stage
    elif len(candidates) == 1:
        at = candidates[0]
    else:
        # "Acme Retention Co advocacy": the name itself holds a stage word. Take the split
        # whose name finds one customer; when several do, ask rather than guess.
        unique = [i for i in candidates if find_customers(call.session, " ".join(args[:i])).unique]
        if len(unique) > 1:
            name, stage = " ".join(args[: unique[-1]]), args[unique[-1]]
            return UsageResult(
                spec,
                f"“{' '.join(args[: unique[0]])}” and “{name}” are both customers: put the "
                f'name in quotes, e.g. `stage "{name}" {stage}`.',
            )
        at = unique[0] if unique else candidates[0]
    ref, stage, reason = " ".join(args[:at]), args[at], " ".join(args[at + 1 :]) or None
    found = find_one(call.session, ref, spec.name, tuple(args[at:]))
    if not isinstance(found, Customer):
        return found
    try:
        move = move_customer(
            call.session,
            found,
            stage,
            actor=call.actor,
            ref=ref,
            reason=reason,
            now=call.now,
            lifecycle=call.settings.lifecycle,
        )
    except UnknownStage as exc:
        return UsageResult(spec, str(exc).replace("'", "`"))
    return StageResult(move, customer_ref(found))


COMMAND = Command(SPEC, handle)
