"""Answering through a response URL, and saying so in the log when Slack refuses it."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from slack_bolt import Respond

    from clmbot.slack.views.base import Message

log = logging.getLogger("clmbot.slack")


def reply_privately(respond: Respond, message: Message, *, user_id: str, replace: bool) -> None:
    """An ephemeral answer: only the person who asked sees customers' data."""
    sent = respond(**message.as_kwargs(), response_type="ephemeral", replace_original=replace)
    if sent.status_code != 200:
        log.warning(
            "the answer to %s was refused by Slack: %s %s",
            user_id,
            sent.status_code,
            (sent.body or "")[:300],
        )
