"""`[alerts]` in clmbot.toml: when a customer is raised again, how long a snooze lasts, and
the routes (a segment and a channel each; the default route is CLMBOT_ALERT_CHANNEL)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

_CHANNEL = re.compile(r"^[CG][A-Z0-9]{2,}$")
KNOWN = {"rise", "snooze_days", "all_quiet", "routes"}


@dataclass(frozen=True)
class Route:
    name: str
    channel: str
    segment: str = ""  # empty: every customer


@dataclass(frozen=True)
class AlertConfig:
    # A snoozed or handled customer is raised again only when their risk rose this much.
    rise: int = 15
    snooze: timedelta = timedelta(days=14)
    # Post "all quiet" when nobody drifted (default: post nothing).
    all_quiet: bool = False
    routes: tuple[Route, ...] = field(default_factory=tuple)


def parse_alerts(body: dict[str, Any]) -> tuple[AlertConfig, str | None]:
    unknown = set(body) - KNOWN
    if unknown:
        return AlertConfig(), (
            f"unknown setting alerts.{sorted(unknown)[0]}; known in [alerts]: "
            + ", ".join(sorted(KNOWN))
        )
    rise = body.get("rise", 15)
    if isinstance(rise, bool) or not isinstance(rise, int) or not 1 <= rise <= 100:
        return AlertConfig(), "alerts.rise must be a whole number of risk points from 1 to 100"
    snooze = body.get("snooze_days", 14)
    if isinstance(snooze, bool) or not isinstance(snooze, int) or not 1 <= snooze <= 365:
        return AlertConfig(), "alerts.snooze_days must be a whole number of days from 1 to 365"
    quiet = body.get("all_quiet", False)
    if not isinstance(quiet, bool):
        return AlertConfig(), "alerts.all_quiet must be true or false"
    routes = []
    for i, route in enumerate(body.get("routes", [])):
        if not isinstance(route, dict) or set(route) - {"name", "segment", "channel"}:
            return AlertConfig(), (
                f"alerts.routes[{i}] must be a table with name, segment and channel, e.g. "
                '[[alerts.routes]] name = "pro" segment = "plan:pro" channel = "C0123ABCD"'
            )
        channel, name = route.get("channel", ""), route.get("name", f"route{i + 1}")
        if not isinstance(channel, str) or not _CHANNEL.match(channel):
            return AlertConfig(), (
                f"alerts.routes[{i}].channel must be a channel ID such as C0123ABCD, not a #name"
            )
        segment = route.get("segment", "")
        if not isinstance(segment, str) or not isinstance(name, str) or not name:
            return AlertConfig(), f"alerts.routes[{i}]: name and segment must be text"
        routes.append(Route(name[:60], channel, segment))
    if len({r.name for r in routes}) != len(routes):
        return AlertConfig(), "alerts.routes: give each route its own name"
    return AlertConfig(rise, timedelta(days=snooze), quiet, tuple(routes)), None
