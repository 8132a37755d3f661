"""What every command module uses: the call it runs with, how it is registered, and the
look-ups and words several commands share (a customer, a period, "admins only")."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement
from sqlmodel import Session

from clmbot.commands.spec import Actor, CommandSpec
from clmbot.config import Settings
from clmbot.customers import closest_names, customer_ref, find_customers
from clmbot.periods import ACCEPTED, PeriodError, parse_since
from clmbot.results import MatchesResult, NoMatchResult, Result, UsageResult
from clmbot.segments import SegmentError, resolve
from clmbot.store.models import Customer

# Slack's clients turn typed quotes into curly ones; only double quotes group words, so that
# O'Brien and customer's stay words.
QUOTES = str.maketrans({"\u201c": '"', "\u201d": '"', "\u2018": "'", "\u2019": "'"})


def split_words(text: str) -> list[str]:
    """Words, with "quoted phrases" kept whole; Slack's curly quotes count as quotes.
    Raises ValueError when a quote is not closed."""
    lexer = shlex.shlex(text.translate(QUOTES), posix=True)
    lexer.whitespace_split = True
    lexer.quotes = '"'
    lexer.escape = ""
    lexer.commenters = ""
    return list(lexer)


@dataclass(frozen=True)
class Call:
    """What every command is run with."""

    session: Session
    settings: Settings
    now: datetime
    actor: Actor
    # What followed the command's name, as typed (quotes kept): for grammars whose errors
    # point at a position in it (segment expressions). Words from a button are re-joined.
    text: str = ""


def rest_of(text: str, words: int) -> str:
    """`text` after its first `words` whitespace-separated words, as typed."""
    parts = text.lstrip().split(None, words)
    return parts[words].strip() if len(parts) > words else ""


Handler = Callable[[CommandSpec, list[str], Call], Result]


@dataclass(frozen=True)
class Command:
    """A command module's one export: what it is, and what runs it."""

    spec: CommandSpec
    handler: Handler


def find_one(
    session: Session, ref: str, command: str, rest: tuple[str, ...] = ()
) -> Customer | MatchesResult | NoMatchResult:
    """The customer `ref` names, or the answer to give when it names several or none."""
    lookup = find_customers(session, ref)
    if lookup.unique is not None:
        return lookup.unique
    if lookup.matches:
        return MatchesResult(
            lookup.ref, [customer_ref(c) for c in lookup.matches], lookup.more, command, rest
        )
    return NoMatchResult(ref, closest_names(session, ref))


# A filter always holds one of these; a customer's name usually holds none.
_FILTER_MARKS = (":", "<", ">")


def customers_named(spec: CommandSpec, head: str, call: Call) -> ColumnElement[bool] | Result:
    """The customers `head` names: a segment or filters, else one customer by reference;
    or the answer to give when it names none (or several)."""
    try:
        _, where = resolve(
            call.session, head, settings=call.settings, now=call.now, actor_id=call.actor.id
        )
        return where
    except SegmentError as exc:
        if any(mark in head for mark in _FILTER_MARKS):
            return UsageResult(spec, str(exc))
    found = find_one(call.session, head.replace('"', ""), spec.name)
    if isinstance(found, Customer):
        return Customer.id == found.id
    return found


def take_since(
    spec: CommandSpec, words: list[str], call: Call, default: timedelta
) -> tuple[datetime, list[str]] | UsageResult:
    """Find `since <when>` among the words: the start of the period, and the other words.

    `<when>` runs to the end or to the next word in `stops` — commands put `since` last or
    before their own keywords (`by plan`, `chart`), so "since last month by plan" reads right.
    """
    lowered = [w.lower() for w in words]
    if "since" not in lowered:
        return call.now - default, words
    at = lowered.index("since")
    end = at + 1
    while end < len(words) and lowered[end] not in SINCE_STOPS:
        end += 1
    said = " ".join(words[at + 1 : end])
    if not said:
        return UsageResult(spec, f"Say since when: {ACCEPTED}.")
    try:
        since = parse_since(said, call.now, call.settings.timezone)
    except PeriodError as exc:
        return UsageResult(spec, str(exc).replace("'", "`"))
    return since, words[:at] + words[end:]


def period_of(
    spec: CommandSpec, words: list[str], call: Call, default: str
) -> datetime | UsageResult:
    """`since <when>` among `words`, else `default` (period words: `12mo`), with nothing else
    left over: the start of the period, or what to type instead."""
    fallback = call.now - parse_since(default, call.now, call.settings.timezone)
    period = take_since(spec, words, call, fallback)
    if isinstance(period, UsageResult):
        return period
    since, rest = period
    if rest:
        return UsageResult(spec, f"I don't know what `{' '.join(rest)}` means here.")
    return since


# Words that end a `since …` phrase: the keywords of commands that take one.
SINCE_STOPS = frozenset(("by", "chart", "detractors", "export"))


def admins_only(spec: CommandSpec, actor: Actor) -> str:
    """The refusal for someone who may not change data: who may, so they know whom to ask."""
    if not actor.admins:
        return (
            f"`{spec.name}` changes data, and no one may change data yet: clmbot has no admins. "
            "Ask the person who set clmbot up to name its admins."
        )
    who = admin_list(actor.admins)
    return f"`{spec.name}` changes data, which only clmbot admins may do. Ask {who}."


def admin_list(admins: tuple[str, ...]) -> str:
    """`<@U1>, <@U2> or <@U3>`: mentions Slack shows as names, for "ask …"."""
    shown = [f"<@{a}>" for a in admins[:5]]
    if len(admins) > 5:
        shown.append(f"{len(admins) - 5} more")
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " or " + shown[-1]
