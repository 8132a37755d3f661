"""One Slack view per result: Block Kit blocks, with the plain renderer's text as the
fallback. A new result is a new module here, added to `_MODULES`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, tzinfo
from typing import Any

from clmbot import plain
from clmbot.config import DisplayConfig
from clmbot.results import FileOut, Result
from clmbot.slack.views import (
    at_risk,
    customer,
    feedback,
    forget,
    funnel,
    help,
    segment,
    stage,
    survey,
)
from clmbot.slack.views.base import IN_CHANNEL, Block, Message, Where

_MODULES = (help, customer, stage, funnel, segment, feedback, survey, at_risk, forget)
VIEWS: dict[type, Callable[[Any, Where], list[Block]]] = {
    kind: view for module in _MODULES for kind, view in module.VIEWS.items()
}


def render(
    result: Result,
    zone: tzinfo,
    now: datetime,
    *,
    prefix: str = IN_CHANNEL,
    display: DisplayConfig | None = None,
) -> Message:
    """`prefix`: what commands are typed after where the answer goes (`/clm ` in a channel,
    nothing in a DM with the bot)."""
    view = VIEWS.get(type(result))
    if view is None:
        raise TypeError(f"no Slack view for {type(result).__name__}")
    display = display or DisplayConfig()
    where = Where(zone, now, prefix, display)
    text = plain.render(result, zone, prefix=prefix, display=display, brief=True)
    # An export or a chart comes with its file: uploaded before the answer is sent.
    file = getattr(result, "file", None)
    upload = file if isinstance(file, FileOut) else None
    return Message(text, view(result, where), upload=upload, result=result)
