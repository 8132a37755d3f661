"""Who may use clmbot: full members of this workspace, on the team if one is set; who may
change data: the admins.

Slack user look-ups (`users.info`, `usergroups.users.list`) are cached for a while: a
command must be answered in under a second, and a team member's status rarely changes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from clmbot.commands.base import admin_list
from clmbot.config import Settings

CACHE_FOR = timedelta(minutes=10)
_PRUNE_AT = 5000  # cached people before expired entries are dropped
# What the access check reads of a user; nothing else (no e-mail, no name) is kept.
_KEPT = ("team_id", "is_stranger", "deleted", "is_bot", "is_restricted", "is_ultra_restricted")
log = logging.getLogger("clmbot.slack")
V = TypeVar("V")


def _essentials(person: dict[str, Any]) -> dict[str, Any]:
    kept = {k: person[k] for k in _KEPT if k in person}
    enterprise = (person.get("enterprise_user") or {}).get("enterprise_id")
    if enterprise:
        kept["enterprise_user"] = {"enterprise_id": enterprise}
    return kept


@dataclass(frozen=True)
class Decision:
    allowed: bool
    is_admin: bool = False
    message: str | None = None  # why not, for the person refused
    member: bool = False  # a full member of this workspace (refused only for CLMBOT_TEAM)
    # Named by CLMBOT_TEAM or CLMBOT_ADMINS, not only a member of the workspace: such a person
    # is answered as the team even when they are also a customer.
    named: bool = False


class Gatekeeper:
    def __init__(
        self,
        client: WebClient,
        settings: Settings,
        clock: Callable[[], datetime],
        ttl: timedelta = CACHE_FOR,
    ) -> None:
        self._client = client
        self._settings = settings
        self._clock = clock
        self._lock = threading.Lock()
        self._users: Expiring[dict[str, Any] | None] = Expiring(ttl)
        self._groups: Expiring[frozenset[str]] = Expiring(ttl)
        self._home_ids: tuple[str | None, str | None] | None = None

    def check(self, user_id: str) -> Decision:
        """May `user_id` use clmbot?

        "Our workspace" is the one the bot is installed in (auth.test), never what the
        request says: in a shared channel, the request may come from the other side.
        """
        person = self.user(user_id)
        if person is None or person.get("is_stranger") or not self._ours(person):
            return Decision(
                False,
                message=(
                    "clmbot answers members of its own workspace only, and you are signed in "
                    "from another one (Slack Connect)."
                ),
            )
        if person.get("deleted") or person.get("is_bot"):
            return Decision(False, message="clmbot answers people only.")
        if person.get("is_restricted") or person.get("is_ultra_restricted"):
            return Decision(
                False,
                message=(
                    "Guest accounts cannot use clmbot: it shows customer data to full members of "
                    "the workspace only."
                ),
            )
        team = self._settings.team
        if team and not self._on_team(user_id, team):
            admins = self._settings.admins
            ask = (
                f"Ask {admin_list(admins)} to add you."
                if admins
                else "Ask the person who set clmbot up to add you."
            )
            return Decision(
                False,
                member=True,
                message=f"You are not on the clmbot team, which can see customer data. {ask}",
            )
        is_admin = user_id in self._settings.admins
        return Decision(True, is_admin=is_admin, named=bool(team) or is_admin)

    def _ours(self, person: dict[str, Any]) -> bool:
        team, enterprise = self._home()
        if person.get("team_id") == team:
            return True
        # On Enterprise Grid, a member of another workspace of the same organisation.
        their_enterprise = (person.get("enterprise_user") or {}).get("enterprise_id")
        return bool(enterprise) and their_enterprise == enterprise

    def _home(self) -> tuple[str | None, str | None]:
        """The bot's own workspace and organisation, asked of Slack once."""
        with self._lock:
            home = self._home_ids
        if home is None:
            answer = self._client.auth_test()
            home = (answer.get("team_id"), answer.get("enterprise_id"))
            with self._lock:
                self._home_ids = home
        return home

    def user(self, user_id: str) -> dict[str, Any] | None:
        """users.info, cached; None when Slack does not know the user here."""
        return self._users.get(user_id, self._clock(), lambda: self._fetch_user(user_id))

    def _fetch_user(self, user_id: str) -> dict[str, Any] | None:
        try:
            return _essentials(self._client.users_info(user=user_id)["user"])
        except SlackApiError as exc:
            if exc.response.get("error") not in ("user_not_found", "user_not_visible"):
                raise
            return None

    def _on_team(self, user_id: str, team: tuple[str, ...]) -> bool:
        if user_id in team:
            return True
        return any(user_id in self._members(group) for group in team if group.startswith("S"))

    def _members(self, group_id: str) -> frozenset[str]:
        return self._groups.get(group_id, self._clock(), lambda: self._fetch_members(group_id))

    def _fetch_members(self, group_id: str) -> frozenset[str]:
        try:
            return frozenset(self._client.usergroups_users_list(usergroup=group_id)["users"])
        except SlackApiError as exc:
            # A wrong id in CLMBOT_TEAM must not lock out the people listed by name.
            log.error(
                "CLMBOT_TEAM names the user group %s, which Slack does not give (%s): check "
                "the ID, and that the app has the usergroups:read scope",
                group_id,
                exc.response.get("error"),
            )
            return frozenset()


class Expiring(Generic[V]):
    """Values fetched on demand and kept for `ttl`; expired ones are dropped once the cache
    grows past `prune_at`, so a long-running bot does not keep everyone it ever saw."""

    def __init__(self, ttl: timedelta, prune_at: int = _PRUNE_AT) -> None:
        self._ttl = ttl
        self._prune_at = prune_at
        self._lock = threading.Lock()
        self._items: dict[str, tuple[datetime, V]] = {}

    def get(self, key: str, now: datetime, fetch: Callable[[], V]) -> V:
        with self._lock:
            cached = self._items.get(key)
        if cached and now - cached[0] < self._ttl:
            return cached[1]
        value = fetch()  # outside the lock: a slow Slack call must not hold up the others
        with self._lock:
            if len(self._items) >= self._prune_at:
                self._items = {k: v for k, v in self._items.items() if now - v[0] < self._ttl}
            self._items[key] = (now, value)
        return value
