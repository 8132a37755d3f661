"""`forget <customer> [confirm]`: erase a customer's personal data (admins).

Asked first without `confirm`: it cannot be undone, and a name may match another customer
than the one meant. The answer names the customer the admin typed; the audit entry holds
who did it and when, never what was erased.
"""

from __future__ import annotations

from clmbot import audit
from clmbot.commands.base import Call, Command, find_one
from clmbot.commands.spec import CommandSpec
from clmbot.customers import customer_ref
from clmbot.forget import forget
from clmbot.results import ForgetConfirmResult, ForgottenResult, Result, UsageResult
from clmbot.store.models import Customer

SPEC = CommandSpec(
    "forget",
    "forget <customer> [confirm]",
    "forget C0042",
    "erase a customer's personal data (name, e-mail, Slack id, comments, attributes) and keep "
    "the anonymous numbers they count in (admins only)",
    admin_only=True,
)


def handle(spec: CommandSpec, args: list[str], call: Call) -> Result:
    words = list(args)
    confirmed = bool(words) and words[-1].lower() == "confirm"
    if confirmed:
        words.pop()
    if not words:
        return UsageResult(spec, "Say which customer to forget.")
    ref = " ".join(words)
    found = find_one(call.session, ref, spec.name)
    if not isinstance(found, Customer):
        return found
    if not confirmed:
        return ForgetConfirmResult(customer_ref(found), f"forget {found.external_id} confirm")
    external_id, customer_id = found.external_id, found.id
    erased = forget(call.session, found, now=call.now)
    audit.record_by(call.session, call.actor, "forget", at=call.now, customer_id=customer_id)
    return ForgottenResult(
        external_id,
        erased.comments,
        erased.survey_replies,
        erased.stage_reasons,
        erased.audit_entries,
    )


COMMAND = Command(SPEC, handle)
