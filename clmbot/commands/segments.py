"""`segments`: every saved segment, with how many customers it selects now."""

from __future__ import annotations

from clmbot.commands.base import Call, Command
from clmbot.commands.spec import CommandSpec
from clmbot.results import Result, SavedSegment, SegmentListResult, UsageResult
from clmbot.segments import SegmentError, count, list_segments, resolve

SPEC = CommandSpec(
    "segments",
    "segments",
    "segments",
    "the saved segments, each with how many customers it selects now",
)


def handle(spec: CommandSpec, args: list[str], call: Call) -> Result:
    if args:
        return UsageResult(spec, "`segments` takes no words; `segment <name>` shows one.")
    listed = []
    infos = list_segments(call.session)
    saved = {info.name: info.expression for info in infos}  # read once, not once per segment
    for info in infos:
        try:
            _, where = resolve(
                call.session,
                info.name,
                saved=saved,
                settings=call.settings,
                now=call.now,
                actor_id=call.actor.id,
            )
        except SegmentError as exc:  # a stage renamed since it was saved, say
            listed.append(SavedSegment(info.name, info.expression, None, str(exc)))
            continue
        listed.append(SavedSegment(info.name, info.expression, count(call.session, where)))
    return SegmentListResult(listed)


COMMAND = Command(SPEC, handle)
