"""A post that must show once: tried without blind retries, and looked for before it is
tried again.

Slack may post a message and still answer 5xx, or lose the connection before its answer
arrives; slack_sdk's retries would then post it a second time. So the post carries
metadata naming it (an event type and a payload no other message has), goes through
`once_client` (which retries only a 429: a 429 posted nothing), and after a 5xx or a lost
connection the channel (or thread) is read for a message with that metadata before the
next try. The digest's messages and the bot's answers in a DM are posted so.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError

from clmbot.slack.retries import SERVER_ERRORS, once_client

log = logging.getLogger(__name__)

TRIES = 3  # posts of one message whose answer was lost, looking before each retry
BACKOFF = (1.0, 2.0)
# Slack's answers to a look-up that mean we cannot look (rather than: try later).
CANNOT_LOOK = frozenset({"missing_scope", "not_in_channel", "channel_not_found"})


def post_once(
    client: WebClient,
    kwargs: dict[str, Any],
    *,
    channel: str,
    event: str,
    payload: dict[str, Any],
    what: str,
    look_first: bool = False,
    thread_ts: str | None = None,
    once: WebClient | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Post `kwargs` to `channel` (in `thread_ts`) once, and return its ts: after a lost
    answer it is looked for (by `event` and `payload` in its metadata) before each retry,
    and before the first post too with `look_first` (a later try of an earlier run). `what`
    names it in the log, never its content. A 4xx, or the last try's failure, is raised."""
    sender = once if once is not None else once_client(client)
    last: Exception | None = None
    for attempt in range(TRIES):
        if look_first or attempt > 0:
            found = find(client, channel, event, payload, what=what, thread_ts=thread_ts)
            if found is not None:
                log.info("%s was posted already", what)
                return found
        try:
            extra = {} if thread_ts is None else {"thread_ts": thread_ts}
            sent = sender.chat_postMessage(
                channel=channel,
                **kwargs,
                **extra,
                metadata={"event_type": event, "event_payload": payload},
                unfurl_links=False,
            )
            return str(sent["ts"])
        except SlackApiError as exc:
            if exc.response.status_code not in SERVER_ERRORS:
                raise
            last = exc
        except (SlackRequestError, OSError) as exc:
            last = exc
        log.warning(
            "%s: Slack's answer to a post was lost (%s); looking before trying again",
            what,
            why(last),
        )
        if attempt + 1 < TRIES:
            sleep(BACKOFF[min(attempt, len(BACKOFF) - 1)])
    assert last is not None
    raise last


def find(
    client: WebClient,
    channel: str,
    event: str,
    payload: dict[str, Any],
    *,
    what: str,
    thread_ts: str | None = None,
) -> str | None:
    """The ts of the message in `channel` (or `thread_ts`'s thread) whose metadata is
    `event` with `payload`; None when there is none, or when Slack does not let us look
    (then the post is made, perhaps twice, and the log says so)."""
    try:
        if thread_ts is None:
            answer = client.conversations_history(
                channel=channel, include_all_metadata=True, limit=100
            )
        else:
            answer = client.conversations_replies(
                channel=channel, ts=thread_ts, include_all_metadata=True, limit=200
            )
    except SlackApiError as exc:
        error = str(exc.response.get("error") or "")
        if error not in CANNOT_LOOK:
            raise
        log.warning(
            "%s: cannot look in %s for an earlier post (%s); posting it, perhaps twice",
            what,
            channel,
            error,
        )
        return None
    return first_posted(answer.get("messages") or [], event, payload)


def first_posted(messages: list[dict[str, Any]], event: str, payload: dict[str, Any]) -> str | None:
    """The ts of the first of `messages` (as conversations.history gives them, with their
    metadata) whose metadata is `event` with `payload`."""
    for msg in messages:
        meta = msg.get("metadata") or {}
        if meta.get("event_type") == event and meta.get("event_payload") == payload:
            return str(msg.get("ts"))
    return None


def why(exc: BaseException | None) -> str:
    """A failure as the log says it: Slack's status and error, or the exception's kind."""
    if isinstance(exc, SlackApiError):
        return f"HTTP {exc.response.status_code} {exc.response.get('error') or ''}".strip()
    return type(exc).__name__
