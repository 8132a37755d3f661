"""The demo's Slack: the Web API methods the bot calls, answered in-process.

It is no mock of Slack's behaviour in general: it keeps the conversations the bot writes to
(a channel's messages, a DM's), answers the look-ups the bot makes (who is this person, which
workspace am I in) from the demo's people and the sample's customers, and queues everything
the bot posted, edited, published or uploaded for the console to show, in order.

It is duck-typed rather than a `WebClient`: the survey sender makes a second client for
posting from any real `WebClient`, with Slack's address; this one must stay itself.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web import SlackResponse

from clmbot.demo.people import BOT_USER, BY_ID, CHANNEL_NAMES, TEAM_ID
from clmbot.files import write_private_bytes


@dataclass(frozen=True)
class Contact:
    """A sample customer's Slack account: what users.info tells the bot about them."""

    external_id: str
    name: str
    timezone: str
    locale: str


@dataclass
class Posted:
    channel: str
    ts: str
    blocks: list[dict[str, Any]]
    text: str
    thread_ts: str | None = None
    metadata: dict[str, Any] | None = None


@dataclass(frozen=True)
class Edited:
    channel: str
    ts: str
    before: list[dict[str, Any]]
    after: list[dict[str, Any]]


@dataclass(frozen=True)
class Published:
    user: str
    blocks: list[dict[str, Any]]


@dataclass(frozen=True)
class Uploaded:
    channel: str
    path: Path
    title: str


Shown = Posted | Edited | Published | Uploaded


@dataclass
class Workspace:
    files_dir: Path
    contacts: dict[str, Contact] = field(default_factory=dict)  # by Slack user id
    messages: dict[tuple[str, str], Posted] = field(default_factory=dict)  # (channel, ts)
    unseen: list[Shown] = field(default_factory=list)
    _ts: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    # --- what the console reads -------------------------------------------------------------

    def take_unseen(self) -> list[Shown]:
        shown, self.unseen = self.unseen, []
        return shown

    def channel_name(self, channel: str) -> str:
        """#customer-alerts, or "DM with Acme Corp (C0012)" for a customer's DM."""
        if channel in CHANNEL_NAMES:
            return f"#{CHANNEL_NAMES[channel]}"
        user = channel.removeprefix("D")
        if user in self.contacts:
            c = self.contacts[user]
            return f"DM with {c.name} ({c.external_id})"
        if user in BY_ID:
            return f"DM with {BY_ID[user].name}"
        return channel

    def person_name(self, user_id: str) -> str:
        if user_id in BY_ID:
            return BY_ID[user_id].name
        if user_id in self.contacts:
            return self.contacts[user_id].name
        return "clmbot" if user_id == BOT_USER else user_id

    @staticmethod
    def dm_channel(user_id: str) -> str:
        return f"D{user_id}"

    # --- the Web API the bot calls -----------------------------------------------------------

    def auth_test(self, **_: Any) -> dict[str, Any]:
        return {"ok": True, "team_id": TEAM_ID, "team": "Demo Shop", "user_id": BOT_USER}

    def users_info(self, *, user: str, **_: Any) -> dict[str, Any]:
        if user in BY_ID:
            p = BY_ID[user]
            about = {"is_restricted": p.guest, "tz": "Asia/Jakarta", "locale": "en-US"}
            return {"ok": True, "user": {"id": user, "team_id": TEAM_ID, **about}}
        if user in self.contacts:
            c = self.contacts[user]
            about = {"tz": c.timezone, "locale": c.locale or "en-US"}
            return {"ok": True, "user": {"id": user, "team_id": TEAM_ID, **about}}
        raise _error("users.info", "user_not_found")

    def usergroups_users_list(self, **_: Any) -> dict[str, Any]:
        return {"ok": True, "users": []}

    def conversations_open(self, *, users: str, **_: Any) -> dict[str, Any]:
        return {"ok": True, "channel": {"id": self.dm_channel(users.split(",")[0])}}

    def conversations_history(self, *, channel: str, limit: int = 100, **_: Any) -> dict[str, Any]:
        found = [m for (c, _), m in self.messages.items() if c == channel and not m.thread_ts]
        found.sort(key=lambda m: float(m.ts), reverse=True)
        return {
            "ok": True,
            "messages": [
                {"ts": m.ts, "text": m.text, "blocks": m.blocks, "metadata": m.metadata}
                for m in found[:limit]
            ],
        }

    def chat_postMessage(  # slack_sdk's name
        self,
        *,
        channel: str,
        text: str = "",
        blocks: list[dict[str, Any]] | None = None,
        thread_ts: str | None = None,
        metadata: dict[str, Any] | None = None,
        **_: Any,
    ) -> dict[str, Any]:
        if channel.startswith(("U", "W")):  # posted to a user: their DM with the bot
            channel = self.dm_channel(channel)
        ts = f"{1_700_000_000 + next(self._ts)}.000100"
        message = Posted(channel, ts, list(blocks or []), text, thread_ts, metadata)
        self.messages[(channel, ts)] = message
        self.unseen.append(message)
        return {"ok": True, "channel": channel, "ts": ts}

    def chat_update(
        self,
        *,
        channel: str,
        ts: str,
        text: str = "",
        blocks: list[dict[str, Any]] | None = None,
        **_: Any,
    ) -> dict[str, Any]:
        message = self.messages.get((channel, ts))
        if message is None:
            raise _error("chat.update", "message_not_found")
        before = message.blocks
        message.blocks, message.text = list(blocks or []), text
        self.unseen.append(Edited(channel, ts, before, message.blocks))
        return {"ok": True, "channel": channel, "ts": ts}

    def views_publish(self, *, user_id: str, view: dict[str, Any], **_: Any) -> dict[str, Any]:
        self.unseen.append(Published(user_id, list(view.get("blocks") or [])))
        return {"ok": True}

    def files_upload_v2(
        self, *, channel: str, file: bytes, filename: str, title: str, **_: Any
    ) -> dict[str, Any]:
        """A file the bot would upload is written to the demo's folder instead (the same
        name again replaces it, as the answer that names it says). A folder that cannot be
        written is Slack refusing the upload: the bot says so to the person who asked."""
        try:
            written = write_private_bytes(self.files_dir / Path(filename).name, file)
        except OSError:
            raise _error("files.upload", "not_writable") from None
        self.unseen.append(Uploaded(channel, written, title))
        return {"ok": True}


def _error(method: str, error: str) -> SlackApiError:
    response = SlackResponse(
        client=None,
        http_verb="POST",
        api_url=f"https://slack.com/api/{method}",
        req_args={},
        data={"ok": False, "error": error},
        headers={},
        status_code=200,
    )
    return SlackApiError(f"{method}: {error}", response)
