"""Answering through a response URL, with retries, and saying so in the log when Slack
refuses it."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from clmbot.slack.retries import webhook

if TYPE_CHECKING:
    from slack_bolt import Respond

    from clmbot.slack.views.base import Message

log = logging.getLogger("clmbot.slack")


def reply_privately(respond: Respond, message: Message, *, user_id: str, replace: bool) -> None:
    """An ephemeral answer: only the person who asked sees customers' data.

    Sent through our own client on `respond`'s URL: Bolt's retries a lost connection only, so
    a 429 or a 5xx lost the answer. A 5xx retried may show the answer twice, to that one
    person: better than none."""
    if respond.response_url is None:
        raise ValueError("no response URL to answer through")
    sent = webhook(respond.response_url).send(
        **message.as_kwargs(), response_type="ephemeral", replace_original=replace
    )
    if sent.status_code != 200:
        log.warning(
            "the answer to %s was refused by Slack: %s %s",
            user_id,
            sent.status_code,
            (sent.body or "")[:300],
        )
