"""The description of a command and of who is asking: plain data every layer may read."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CommandSpec:
    name: str
    usage: str
    example: str
    summary: str
    admin_only: bool = False


@dataclass(frozen=True)
class Actor:
    """Who asked, and from where: a Slack user id (or `cli:<login>`), and a channel id."""

    id: str
    is_admin: bool
    channel: str | None = None
    admins: tuple[str, ...] = ()
