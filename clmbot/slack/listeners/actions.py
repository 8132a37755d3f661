"""Buttons. "Open profile" answers with the customer's card; a "run" button (a customer
picked from several matches, say) runs the words it carries as if the person who clicked had
typed them, with the same checks. Either answer replaces the message that held the button,
for the person who clicked only."""

from __future__ import annotations

import json
import logging
import re
from typing import TYPE_CHECKING, Any

from clmbot.slack.listeners.reply import reply_privately
from clmbot.slack.views.base import OPEN_PROFILE, RUN_WORDS
from clmbot.slack.views.digest import ALERT_ACTION
from clmbot.slack.views.survey_dm import SURVEY_SCORE

if TYPE_CHECKING:
    from slack_bolt import Ack, App, Respond
    from slack_sdk import WebClient

    from clmbot.slack.bot import Bot

log = logging.getLogger("clmbot.slack")


def register(app: App, bot: Bot) -> None:
    @app.action(re.compile(rf"^{OPEN_PROFILE}(:\d+)?$"))
    def open_profile(
        ack: Ack, body: dict[str, Any], action: dict[str, Any], respond: Respond
    ) -> None:
        ack()
        user_id = body["user"]["id"]

        # A private answer replaces the private message it came from; a button on a message
        # the whole channel sees (the digest) must leave that message alone.
        replace = bool((body.get("container") or {}).get("is_ephemeral", True))

        def answer() -> None:
            message = bot.answer(
                ["customer", action.get("value", "")],
                user_id=user_id,
                channel_id=(body.get("channel") or {}).get("id"),
            )
            reply_privately(respond, message, user_id=user_id, replace=replace)

        bot.later(answer, f"opening a card for {user_id}")

    @app.action(re.compile(rf"^{RUN_WORDS}(:\d+)?$"))
    def run_words(
        ack: Ack, body: dict[str, Any], action: dict[str, Any], respond: Respond, client: WebClient
    ) -> None:
        ack()
        user_id = body["user"]["id"]
        words = button_words(action.get("value", ""))
        channel_id = (body.get("channel") or {}).get("id")

        def answer() -> None:
            message = bot.answer(words, user_id=user_id, channel_id=channel_id)
            message = bot.with_files(client, message, user_id=user_id, channel_id=channel_id)
            reply_privately(respond, message, user_id=user_id, replace=True)
            message.sent()

        bot.later(answer, f"running a button for {user_id}")

    @app.action(re.compile(rf"^{ALERT_ACTION}:(assign|snooze|contacted)$"))
    def alert_button(
        ack: Ack, body: dict[str, Any], action: dict[str, Any], respond: Respond, client: WebClient
    ) -> None:
        """Assign to me, Snooze, Contacted: stored, and the digest's message redrawn in place
        so the channel sees who did what. Only the team may act."""
        ack()
        user_id = body["user"]["id"]
        verb = str(action.get("action_id", "")).split(":", 1)[1]
        value = str(action.get("value", ""))

        def answer() -> None:
            refusal = bot.alert_click(client, user_id, verb, value)
            if refusal is not None:
                reply_privately(respond, refusal, user_id=user_id, replace=False)

        bot.later(answer, f"taking an alert button from {user_id}")

    @app.action(re.compile(rf"^{SURVEY_SCORE}:\d+$"))
    def survey_score(
        ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient
    ) -> None:
        """A customer's score. The question they clicked is redrawn in place with their
        choice; a click that is not theirs to make changes nothing and says nothing."""
        ack()
        user_id = body["user"]["id"]
        channel_id = (body.get("channel") or {}).get("id")
        message_ts = (body.get("container") or {}).get("message_ts")

        def answer() -> None:
            outcome = bot.survey_click(user_id, str(action.get("value", "")))
            if outcome is None:
                log.info("a survey button pressed by %s who may not answer it", user_id)
                return
            question, answered = outcome
            if channel_id and message_ts:
                client.chat_update(channel=channel_id, ts=message_ts, **question.as_kwargs())
            if answered:
                bot.wake_sender()

        bot.later(answer, f"taking a survey answer from {user_id}")


def button_words(value: str) -> str | list[str]:
    """A button's words (or text, as typed: filters whose positions matter); anything else
    (which Slack would not send) runs as `help`."""
    try:
        words = json.loads(value)
    except ValueError:
        return ["help"]
    if isinstance(words, str):
        return words[:4000]
    if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
        return ["help"]
    return words[:50]
