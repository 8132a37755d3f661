"""What escapes a listener: logged once, with an error id, never shown as a traceback."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from clmbot.slack.bot import new_error_id

if TYPE_CHECKING:
    from slack_bolt import App

    from clmbot.slack.bot import Bot

log = logging.getLogger("clmbot.slack")


def register(app: App, bot: Bot) -> None:
    @app.error
    def on_error(error: Exception, body: dict[str, Any]) -> None:
        kind = body.get("type") or body.get("command") or "request"
        log.error("error %s in a %s listener", new_error_id(), kind, exc_info=error)
