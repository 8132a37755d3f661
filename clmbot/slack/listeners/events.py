"""Events: the App Home tab, and direct messages to the bot.

A team member can DM the bot the same words as after `/clm`; the answer stays in that
one-to-one conversation. Anyone else (a customer, a guest) gets a polite answer, and nothing
about them is stored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from clmbot.commands import COMMANDS
from clmbot.slack.blocks import Message, context, header, help_message, section

if TYPE_CHECKING:
    from slack_bolt import App
    from slack_sdk import WebClient

    from clmbot.slack.app import Bot

NOT_FOR_YOU = Message(
    "Thanks for your message! I'm the customer team's assistant and cannot answer here; "
    "your contact at the company will be glad to help.",
)


def register(app: App, bot: Bot) -> None:
    @app.event("app_home_opened")
    def home(event: dict[str, Any], client: WebClient) -> None:
        if event.get("tab") not in (None, "home"):
            return
        user_id = event["user"]

        def publish() -> None:
            decision = bot.gate.check(user_id)
            if decision.allowed:
                blocks = [
                    *help_message(list(COMMANDS.values())).blocks,
                    context(
                        "You can also write these words to me here, in Messages: "
                        "`customer Acme`, `funnel since 30d`."
                    ),
                ]
            else:
                blocks = [header("clmbot"), section(decision.message or "")]
            client.views_publish(user_id=user_id, view={"type": "home", "blocks": blocks[:100]})

        bot.later(publish, f"publishing the Home tab of {user_id}")

    @app.event("message")
    def direct_message(event: dict[str, Any], body: dict[str, Any], client: WebClient) -> None:
        if event.get("channel_type") != "im" or event.get("bot_id"):
            return
        if event.get("subtype") not in (None, "file_share"):
            return  # edits, deletions, joins: nothing was asked
        event_id = body.get("event_id")
        if not bot.first_delivery(event_id):
            return  # a retry of an event already answered
        user_id = event["user"]

        def reply() -> None:
            try:
                decision = bot.gate.check(user_id)
                if decision.allowed:
                    message = bot.answer(
                        event.get("text", ""), user_id=user_id, channel_id=event.get("channel")
                    )
                elif decision.member:
                    message = Message(decision.message or "", [section(decision.message or "")])
                else:
                    message = NOT_FOR_YOU
                client.chat_postMessage(channel=event["channel"], **message.as_kwargs())
            except Exception:
                bot.not_delivered(event_id)  # let Slack's retry try again
                raise

        bot.later(reply, f"answering a DM from {user_id}")
