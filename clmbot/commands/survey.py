"""`survey nps|csat <customer | segment | filters>` queues DM surveys (admins); `survey
status` shows each run's progress (anyone on the team).

More than `surveys.confirm_over` customers are queued only after a confirmation: the answer
says how many would be asked and carries the command that does it (`… confirm`).
"""

from __future__ import annotations

from sqlalchemy import ColumnElement

from clmbot import audit
from clmbot.commands.base import Call, Command, admins_only, customers_named, rest_of
from clmbot.commands.spec import CommandSpec
from clmbot.results import (
    RefusedResult,
    Result,
    SurveyConfirmResult,
    SurveyQueuedResult,
    SurveyStatusResult,
    UsageResult,
)
from clmbot.surveys import queue
from clmbot.surveys.status import run_statuses

SPEC = CommandSpec(
    "survey",
    "survey nps|csat <customer | segment | filters> · survey status",
    "survey nps stage:retention plan:pro",
    "asks customers for their NPS or CSAT by DM, in their hours and language, skipping anyone "
    "asked or answering within the cooldown (admins only); `survey status` shows the replies",
)
CONFIRM = "confirm"


def handle(spec: CommandSpec, args: list[str], call: Call) -> Result:
    if not args:
        return UsageResult(spec, "Say `nps` or `csat` and whom to ask, or `status`.")
    first = args[0].lower()
    if first == "status":
        if len(args) > 1:
            return UsageResult(
                spec, "`survey status` shows every recent run; it takes no more words."
            )
        runs, total = run_statuses(call.session)
        return SurveyStatusResult(runs, total)
    if first not in ("nps", "csat"):
        return UsageResult(spec, f"`{args[0]}` is not a survey: say `nps` or `csat`, or `status`.")
    if not call.actor.is_admin:
        return RefusedResult(admins_only(spec, call.actor))
    target = rest_of(call.text, 1)
    confirmed = len(args) > 2 and args[-1].lower() == CONFIRM
    if confirmed:
        target = target[: target.lower().rstrip().rfind(CONFIRM)].rstrip()
    if not target:
        return UsageResult(spec, f"Say whom to ask, e.g. `survey {first} plan:pro`.")
    where = customers_named(spec, target, call)
    if not isinstance(where, ColumnElement):
        return where
    settings = call.settings
    config, terminal = settings.surveys, settings.lifecycle.terminal
    plan = queue.plan(call.session, where, now=call.now, config=config, terminal=terminal)
    window = config.window.describe()
    if plan.eligible == 0:
        return SurveyQueuedResult(first, target, 0, plan.skipped, None, None, 0, window)
    if plan.eligible > config.confirm_over and not confirmed:
        return SurveyConfirmResult(
            first, target, plan.eligible, plan.skipped, f"survey {first} {target} {CONFIRM}"
        )
    done = queue.queue(
        call.session,
        where,
        kind=first,
        target=target,
        by=call.actor.id,
        now=call.now,
        config=config,
        terminal=terminal,
        skipped=plan.skipped,
    )
    audit.record_by(
        call.session,
        call.actor,
        "survey queue",
        at=call.now,
        kind=first,
        target=target,
        run=done.run_id,
        queued=done.queued,
    )
    return SurveyQueuedResult(
        first, target, done.queued, done.skipped, done.run_id, done.first_send, done.later, window
    )


COMMAND = Command(SPEC, handle)
