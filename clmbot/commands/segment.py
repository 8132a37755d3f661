"""`segment <expr> [export]`, `segment save <name> <expr>`, `segment delete <name>`.

The expression is read from the text as typed (`Call.text`), so that a parse error points
at the right character and quoted values keep their spaces.
"""

from __future__ import annotations

import io

from clmbot import audit
from clmbot.commands.base import Call, Command, admins_only, rest_of
from clmbot.commands.spec import CommandSpec
from clmbot.results import (
    ASKER,
    FileOut,
    RefusedResult,
    Result,
    SavedSegment,
    SegmentDeletedResult,
    SegmentExportResult,
    SegmentResult,
    SegmentSavedResult,
    UsageResult,
)
from clmbot.segments import (
    SegmentError,
    count,
    delete_segment,
    iter_rows,
    resolve,
    save_segment,
    summarise,
    write_csv,
)

SPEC = CommandSpec(
    "segment",
    "segment <filters | saved name> [export] · segment save <name> <filters> · "
    "segment delete <name>",
    "segment stage:retention,advocacy plan:pro nps<7 inactive>30d",
    "how many customers match, the MRR they hold, by stage, and the first ten; `export` "
    "sends you the CSV of all of them. Filters: stage plan region tag owner(@me) nps csat "
    "mrr inactive in-stage signup attr.NAME, with : > < >= <=, `,` for or, `-` for not",
)
SAMPLE = 10


def handle(spec: CommandSpec, args: list[str], call: Call) -> Result:
    if not args:
        return UsageResult(spec, "Say which customers: filters, or the name of a saved segment.")
    first = args[0].lower()
    if first in ("save", "delete"):
        if not call.actor.is_admin:
            return RefusedResult(
                admins_only(CommandSpec(f"segment {first}", "", "", ""), call.actor)
            )
        return _save(spec, args, call) if first == "save" else _delete(spec, args, call)
    text = call.text
    export = args[-1].lower() == "export"
    if export:
        text = text[: text.lower().rstrip().rfind("export")].rstrip()
        if not text:
            return UsageResult(
                spec, "Say which customers to export, e.g. `segment plan:pro export`."
            )
    try:
        segment, where = resolve(
            call.session, text, settings=call.settings, now=call.now, actor_id=call.actor.id
        )
    except SegmentError as exc:
        return UsageResult(spec, str(exc))
    if export:
        buffer = io.StringIO(newline="")
        written = write_csv(iter_rows(call.session, where), buffer)
        name = (
            "segment.csv"
            if len(segment.filters) != 1
            else f"segment-{segment.filters[0].field}.csv"
        )
        file = FileOut(name, buffer.getvalue().encode("utf-8"), f"customers matching {text}", ASKER)
        # Personal data leaving clmbot: who took which customers, and how many.
        audit.record_by(
            call.session,
            call.actor,
            "segment export",
            at=call.now,
            expression=text,
            rows=written,
        )
        return SegmentExportResult(text, written, file)
    lifecycle = call.settings.lifecycle
    summary = summarise(
        call.session, where, stages=lifecycle.stages, terminal=lifecycle.terminal, sample=SAMPLE
    )
    return SegmentResult(text, segment.canonical, summary)


def _save(spec: CommandSpec, args: list[str], call: Call) -> Result:
    if len(args) < 3:
        return UsageResult(
            spec, "Say the name and the filters, e.g. `segment save vip plan:pro mrr>500`."
        )
    name, expression = args[1], rest_of(call.text, 2)
    try:
        info, replaced = save_segment(
            call.session, name, expression, by=call.actor.id, now=call.now, settings=call.settings
        )
    except SegmentError as exc:
        return UsageResult(spec, str(exc))
    try:  # how many it selects for the person saving it (`owner:@me` needs a Slack user)
        _, where = resolve(
            call.session, info.name, settings=call.settings, now=call.now, actor_id=call.actor.id
        )
        selected: int | None = count(call.session, where)
    except SegmentError:
        selected = None
    audit.record_by(
        call.session,
        call.actor,
        "segment save",
        at=call.now,
        name=info.name,
        expression=info.expression,
        replaced=replaced or None,
    )
    return SegmentSavedResult(SavedSegment(info.name, info.expression, selected), replaced)


def _delete(spec: CommandSpec, args: list[str], call: Call) -> Result:
    if len(args) != 2:
        return UsageResult(spec, "Say the one name to delete, e.g. `segment delete vip`.")
    name = args[1].lower()
    if not delete_segment(call.session, name):
        return UsageResult(spec, f"No segment is saved as `{name}`; `segments` lists them.")
    audit.record_by(call.session, call.actor, "segment delete", at=call.now, name=name)
    return SegmentDeletedResult(name)


COMMAND = Command(SPEC, handle)
