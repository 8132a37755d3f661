"""Buttons. "Open profile" answers with the customer's card, in place of the message that
held the button, for the person who clicked only."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from clmbot.slack.blocks import OPEN_PROFILE
from clmbot.slack.listeners.reply import reply_privately

if TYPE_CHECKING:
    from slack_bolt import Ack, App, Respond

    from clmbot.slack.app import Bot


def register(app: App, bot: Bot) -> None:
    @app.action(re.compile(rf"^{OPEN_PROFILE}(:\d+)?$"))
    def open_profile(
        ack: Ack, body: dict[str, Any], action: dict[str, Any], respond: Respond
    ) -> None:
        ack()
        user_id = body["user"]["id"]

        def answer() -> None:
            message = bot.answer(
                ["customer", action.get("value", "")],
                user_id=user_id,
                channel_id=(body.get("channel") or {}).get("id"),
            )
            reply_privately(respond, message, user_id=user_id, replace=True)

        bot.later(answer, f"opening a card for {user_id}")
