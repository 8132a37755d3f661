"""Events: the App Home tab (a dashboard, see `clmbot.dashboard`), and direct messages to
the bot.

A team member can DM the bot the same words as after `/clm`; the answer stays in that
one-to-one conversation. Anyone else (a customer, a guest) gets a polite answer, and nothing
about them is stored.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from slack_sdk.errors import SlackApiError

from clmbot.slack.bot import new_error_id
from clmbot.slack.views.home import apology_blocks

if TYPE_CHECKING:
    from collections.abc import Callable

    from slack_bolt import App, BoltContext
    from slack_sdk import WebClient

    from clmbot.slack.bot import Bot

log = logging.getLogger("clmbot.slack")


def register(app: App, bot: Bot) -> None:
    @app.event("app_home_opened")
    def home(event: dict[str, Any], client: WebClient) -> None:
        """The Home tab, rebuilt for whoever opened it (the Messages tab needs nothing)."""
        if event.get("tab") not in (None, "home"):
            return
        user_id = event["user"]

        def publish() -> None:
            view = {"type": "home", "blocks": bot.home(user_id)}
            try:
                client.views_publish(user_id=user_id, view=view)
            except SlackApiError as exc:
                # Refused (a view Slack will not take): the viewer gets an apology with an
                # id to quote, not an old or empty tab; the log says why, under that id.
                error_id = new_error_id()
                log.error(
                    "error %s: Slack refused the Home tab of %s (%s)",
                    error_id,
                    user_id,
                    exc.response.get("error"),
                )
                apology = {"type": "home", "blocks": apology_blocks(error_id)}
                client.views_publish(user_id=user_id, view=apology)

        bot.later(publish, f"publishing the Home tab of {user_id}")

    def take_dm(context: BoltContext, body: dict[str, Any], next: Callable[[], None]) -> None:
        """Before the acknowledgement: take the event and work out the answer. A failure
        here (the database is down) is not acknowledged, so Slack delivers it again."""
        event = body.get("event") or {}
        if (
            event.get("channel_type") == "im"
            and not event.get("bot_id")
            and event.get("user")
            and event.get("subtype") in (None, "file_share")  # not edits, deletions, joins
        ):
            context["dm_reply"] = bot.dm_reply(event, body.get("event_id"))
            context["dm_event_id"] = body.get("event_id")
        next()

    @app.event("message", middleware=[take_dm])
    def direct_message(event: dict[str, Any], context: BoltContext, client: WebClient) -> None:
        message = context.get("dm_reply")
        if message is None:
            return  # not a DM to answer, or one answered already
        event_id = context.get("dm_event_id")

        def send() -> None:
            bot.send_dm_reply(
                client,
                message,
                user_id=event["user"],
                channel_id=event["channel"],
                event_id=event_id,
            )

        bot.later(send, f"answering a DM from {event.get('user')}")
