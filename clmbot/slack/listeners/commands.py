"""`/clm`: acknowledged at once, answered through the response URL, always ephemeral (the
answers show customers' data, which is not for the whole channel)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from clmbot.slack.listeners.reply import reply_privately
from clmbot.slack.views.base import too_busy

if TYPE_CHECKING:
    from slack_bolt import Ack, App, Respond
    from slack_sdk import WebClient

    from clmbot.slack.bot import Bot


def register(app: App, bot: Bot) -> None:
    @app.command("/clm")
    def clm(ack: Ack, command: dict[str, Any], respond: Respond, client: WebClient) -> None:
        ack()  # within 3 seconds, before any look-up or query
        user_id = command["user_id"]
        channel_id = command.get("channel_id")

        def answer() -> None:
            message = bot.answer(command.get("text", ""), user_id=user_id, channel_id=channel_id)
            message = bot.with_files(client, message, user_id=user_id, channel_id=channel_id)
            reply_privately(respond, message, user_id=user_id, replace=False)
            message.sent()

        def busy() -> None:
            reply_privately(respond, too_busy(), user_id=user_id, replace=False)

        bot.later(answer, f"answering /clm for {user_id}", busy=busy)
