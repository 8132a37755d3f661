"""Buttons. "Open profile" answers with the customer's card, in place of the message that
held the button, for the person who clicked only."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from clmbot.commands import split_words
from clmbot.slack.blocks import OPEN_PROFILE

if TYPE_CHECKING:
    from slack_bolt import Ack, App, Respond

    from clmbot.slack.app import Bot


def register(app: App, bot: Bot) -> None:
    @app.action(re.compile(rf"^{OPEN_PROFILE}(:\d+)?$"))
    def open_profile(
        ack: Ack, body: dict[str, Any], action: dict[str, Any], respond: Respond
    ) -> None:
        ack()
        external_id = action.get("value", "")
        quoted = external_id if split_words(external_id) == [external_id] else f'"{external_id}"'
        message = bot.answer(
            f"customer {quoted}",
            user_id=body["user"]["id"],
            team_id=(body.get("team") or {}).get("id"),
            channel_id=(body.get("channel") or {}).get("id"),
        )
        respond(**message.as_kwargs(), response_type="ephemeral", replace_original=True)
