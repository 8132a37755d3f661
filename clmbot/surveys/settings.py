"""`[surveys]` in clmbot.toml: how customers are asked, and how often at most."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import time, timedelta
from typing import Any

from clmbot.surveys.texts import Texts, check_overrides
from clmbot.surveys.window import DAY_NAMES, Window

_FULL_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY_WORDS = {**{d: i for i, d in enumerate(DAY_NAMES)}, **{d: i for i, d in enumerate(_FULL_DAYS)}}
KNOWN = {
    "product",
    "window",
    "days",
    "cooldown_days",
    "reminder_after_days",
    "expire_after_days",
    "comment_hours",
    "change_minutes",
    "confirm_over",
    "sends_per_second",
    "texts",
}


@dataclass(frozen=True)
class SurveyConfig:
    # The name in the question ("How likely are you to recommend Acme…"); empty: "us".
    product: str = ""
    window: Window = field(default_factory=Window)
    cooldown: timedelta = timedelta(days=90)
    reminder_after: timedelta = timedelta(days=3)
    expire_after: timedelta = timedelta(days=7)
    # The customer's next DM within this time after their score is their comment.
    comment_for: timedelta = timedelta(hours=24)
    # A new score within this time after the first replaces it.
    change_for: timedelta = timedelta(hours=1)
    # More customers than this are queued only after a confirmation.
    confirm_over: int = 50
    # Slack allows about one message per second per DM and several hundred a minute per
    # workspace; the sender stays under this many a second.
    sends_per_second: float = 5.0
    texts: Texts = field(default_factory=Texts)


def parse_surveys(body: dict[str, Any]) -> tuple[SurveyConfig, str | None]:
    """The `[surveys]` table, or the one-line problem with it (the caller adds the path)."""
    unknown = set(body) - KNOWN
    if unknown:
        return SurveyConfig(), (
            f"unknown setting surveys.{sorted(unknown)[0]}; known in [surveys]: "
            + ", ".join(sorted(KNOWN))
        )
    product = body.get("product", "")
    if not isinstance(product, str) or len(product) > 80:
        return (
            SurveyConfig(),
            'surveys.product must be a name of at most 80 characters, e.g. "Acme"',
        )
    window_text = body.get("window", "09:00-18:00")
    match = re.fullmatch(
        r"\s*(\d{1,2}):(\d{2})\s*[-\u2013]\s*(\d{1,2}):(\d{2})\s*", str(window_text)
    )
    bad = not match or int(match[1]) > 23 or int(match[2]) > 59 or int(match[4]) > 59
    if match and (int(match[3]) > 24 or (int(match[3]) == 24 and int(match[4]))):
        bad = True
    if bad or match is None:
        return SurveyConfig(), 'surveys.window must be "HH:MM-HH:MM", e.g. "09:00-18:00"'
    start = time(int(match[1]), int(match[2]))
    # 24:00 is the end of the day: the window is open until midnight.
    end = time.max if int(match[3]) == 24 else time(int(match[3]), int(match[4]))
    if end <= start:
        return SurveyConfig(), "surveys.window must end after it starts, e.g. 09:00-18:00"
    days = body.get("days", list(DAY_NAMES[:5]))
    if (
        not isinstance(days, list)
        or not days
        or not all(isinstance(d, str) and d.lower() in _DAY_WORDS for d in days)
    ):
        return SurveyConfig(), 'surveys.days must be a list of days, e.g. ["mon", "tue", "wed"]'
    numbers: dict[str, float] = {}
    limits = {
        "cooldown_days": (0, 3650, 90),
        "reminder_after_days": (0, 60, 3),
        "expire_after_days": (1, 90, 7),
        "comment_hours": (0, 720, 24),
        "change_minutes": (0, 1440, 60),
        "confirm_over": (0, 10_000_000, 50),
        "sends_per_second": (0.01, 1000, 5),
    }
    for key, (low, high, default) in limits.items():
        value = body.get(key, default)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not low <= value <= high
        ):
            return SurveyConfig(), f"surveys.{key} must be a number from {low} to {high}"
        numbers[key] = value
    if numbers["reminder_after_days"] >= numbers["expire_after_days"]:
        return SurveyConfig(), "surveys.reminder_after_days must be less than expire_after_days"
    overrides, problem = check_overrides(body.get("texts", {}))
    if problem:
        return SurveyConfig(), problem
    return SurveyConfig(
        product=product.strip(),
        window=Window(start, end, frozenset(_DAY_WORDS[d.lower()] for d in days)),
        cooldown=timedelta(days=numbers["cooldown_days"]),
        reminder_after=timedelta(days=numbers["reminder_after_days"]),
        expire_after=timedelta(days=numbers["expire_after_days"]),
        comment_for=timedelta(hours=numbers["comment_hours"]),
        change_for=timedelta(minutes=numbers["change_minutes"]),
        confirm_over=int(numbers["confirm_over"]),
        sends_per_second=float(numbers["sends_per_second"]),
        texts=Texts(overrides),
    ), None
