"""Listeners by Slack surface; each module has a `register(app, bot)`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from clmbot.slack.listeners import actions, commands, errors, events

if TYPE_CHECKING:
    from slack_bolt import App

    from clmbot.slack.bot import Bot


def register(app: App, bot: Bot) -> None:
    commands.register(app, bot)
    actions.register(app, bot)
    events.register(app, bot)
    errors.register(app, bot)
