"""Files that go with an answer (a segment's CSV, a chart), uploaded with `files_upload_v2`.

An export holds customers' personal data: it goes to a DM between the bot and the person who
asked, never to the channel the command was typed in. A chart holds aggregates only and goes
to the channel where it was asked, where the bot must be a member.

The client retries each Web API call (429, 5xx, a lost connection); the file's bytes go to
an upload URL that slack_sdk posts without retries, so a failure there starts the upload
again, with a new URL (a file never completed is shared nowhere). A completion that Slack
did but answered 5xx could share the file twice, in the asker's DM or their channel: harmless
next to an answer that says its file is missing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError

from clmbot.results import ASKER, FileOut

log = logging.getLogger("clmbot.slack")

# Slack's errors that the person can do something about, and what.
_FIXES = {
    "not_in_channel": "I am not in this channel: invite me with `/invite @clmbot`, or ask me in "
    "a DM",
    "channel_not_found": "I cannot post in this conversation: ask me in a DM instead",
    "is_archived": "this channel is archived: ask me in another channel or in a DM",
    "missing_scope": "clmbot's Slack app lacks the `files:write` scope: an admin must "
    "reinstall it from manifest.yml",
}
UPLOAD_TRIES = 3
# Seconds between whole tries of an upload whose bytes did not get through.
UPLOAD_BACKOFF = (1.0, 2.0)


def deliver(
    client: WebClient,
    file: FileOut,
    *,
    user_id: str,
    channel_id: str | None,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Upload `file`; returns where it went (a channel id), or raises `UploadFailed` with a
    sentence for the person who asked."""
    try:
        if file.to == ASKER or not channel_id:
            opened = client.conversations_open(users=user_id)
            channel = opened["channel"]["id"]
        else:
            channel = channel_id
        for attempt in range(UPLOAD_TRIES):
            try:
                client.files_upload_v2(
                    channel=channel, file=file.content, filename=file.filename, title=file.title
                )
                break
            except (SlackRequestError, OSError) as exc:  # the bytes' own upload, or the line
                if attempt + 1 >= UPLOAD_TRIES:
                    raise
                log.info("uploading %s: %s; trying again", file.filename, type(exc).__name__)
                sleep(UPLOAD_BACKOFF[min(attempt, len(UPLOAD_BACKOFF) - 1)])
    except SlackApiError as exc:
        error = str(exc.response.get("error") or "")
        log.warning("uploading %s for %s failed: %s", file.filename, user_id, error or exc)
        fix = _FIXES.get(error, f"Slack said `{error or 'no'}`; try again in a minute")
        raise UploadFailed(f"I could not upload {file.title}: {fix}.") from None
    except (SlackRequestError, OSError) as exc:
        log.warning("uploading %s for %s failed: %s", file.filename, user_id, type(exc).__name__)
        raise UploadFailed(
            f"I could not upload {file.title}: Slack is not answering; try again in a minute."
        ) from None
    return channel


class UploadFailed(RuntimeError):
    """The upload did not happen; the message says why and what to do."""
