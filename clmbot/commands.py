"""What a person types after `/clm` (or in a DM to the bot): parsed into a request, run
against the services, answered with a result that is plain data.

Every front door renders the same results its own way (Block Kit in Slack, text in the
console); none of them parses or decides anything itself.
"""

from __future__ import annotations

import difflib
import shlex
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from clmbot import audit
from clmbot.config import Settings
from clmbot.customers import Lookup, closest_names, find_customers
from clmbot.lifecycle import DEFAULT_FUNNEL_PERIOD, Funnel, StageMove, UnknownStage, move_stage
from clmbot.lifecycle import funnel as compute_funnel
from clmbot.periods import ACCEPTED, PeriodError, parse_since
from clmbot.profile import Profile, customer_profile
from clmbot.store.models import Customer


@dataclass(frozen=True)
class CommandSpec:
    name: str
    usage: str
    example: str
    summary: str
    admin_only: bool = False


COMMANDS: dict[str, CommandSpec] = {
    spec.name: spec
    for spec in (
        CommandSpec("help", "help", "help", "every subcommand, with an example"),
        CommandSpec(
            "customer",
            "customer <external id | e-mail | name>",
            "customer Acme",
            "a customer's card: stage and its history, owner, plan, MRR, last activity, "
            "latest NPS and CSAT",
        ),
        CommandSpec(
            "stage",
            "stage <customer> <stage> [reason…]",
            "stage Acme retention renewed for two years",
            "move a customer to another stage, with the reason (admins only)",
            admin_only=True,
        ),
        CommandSpec(
            "funnel",
            "funnel [since <date | 30d | 3mo | this month | …>]",
            "funnel since 30d",
            "customers per stage, conversion between stages, median days in each stage",
        ),
    )
}
# In PRODUCT.md, not built yet: answered with "not yet", never with "unknown".
PLANNED = ("segment", "segments", "nps", "csat", "feedback", "survey", "at-risk", "forget")
# Said to the bot in a DM, these are a greeting, not a command it does not know.
GREETINGS = frozenset(
    (
        "hi", "hello", "hey", "hiya", "yo", "hai", "halo", "hallo", "thanks", "thank",
        "thx", "ty", "cheers", "morning", "good", "terima", "makasih", "pagi", "selamat",
    )
)  # fmt: skip

# Slack's clients turn typed quotes into curly ones; only double quotes group words, so that
# O'Brien and customer's stay words.
_QUOTES = str.maketrans({"\u201c": '"', "\u201d": '"', "\u2018": "'", "\u2019": "'"})


@dataclass(frozen=True)
class Actor:
    """Who asked, and from where: a Slack user id (or `cli:<login>`), and a channel id."""

    id: str
    is_admin: bool
    channel: str | None = None
    admins: tuple[str, ...] = ()


# --- results ---------------------------------------------------------------------------


@dataclass(frozen=True)
class HelpResult:
    commands: list[CommandSpec]
    note: str | None = None  # e.g. "I don't know `fnnel`. Did you mean `funnel`?"


@dataclass(frozen=True)
class GreetingResult:
    """A "hi" in a DM: a short hello and how to ask."""

    examples: list[CommandSpec]


@dataclass(frozen=True)
class UsageResult:
    spec: CommandSpec
    problem: str


@dataclass(frozen=True)
class NotYetResult:
    command: str


@dataclass(frozen=True)
class RefusedResult:
    message: str


@dataclass(frozen=True)
class MatchesResult:
    """Several customers match: the person has to be more precise."""

    lookup: Lookup
    command: str  # what they typed it for, to show how to be exact
    rest: tuple[str, ...] = ()  # the words after the customer (a stage, a reason)


@dataclass(frozen=True)
class NoMatchResult:
    ref: str
    closest: list[str]


@dataclass(frozen=True)
class ProfileResult:
    profile: Profile


@dataclass(frozen=True)
class StageResult:
    move: StageMove
    customer: Customer


@dataclass(frozen=True)
class FunnelResult:
    funnel: Funnel


Result = (
    HelpResult
    | GreetingResult
    | UsageResult
    | NotYetResult
    | RefusedResult
    | MatchesResult
    | NoMatchResult
    | ProfileResult
    | StageResult
    | FunnelResult
)


# --- parsing -----------------------------------------------------------------------------


def split_words(text: str) -> list[str]:
    """Words, with "quoted phrases" kept whole; Slack's curly quotes count as quotes.
    Raises ValueError when a quote is not closed."""
    lexer = shlex.shlex(text.translate(_QUOTES), posix=True)
    lexer.whitespace_split = True
    lexer.quotes = '"'
    lexer.escape = ""
    lexer.commenters = ""
    return list(lexer)


def run_command(
    text: str | list[str],
    *,
    session: Session,
    settings: Settings,
    now: datetime,
    actor: Actor,
    in_dm: bool = False,
) -> Result:
    """Run what was typed (`text`), or words already split (a button's value, say).

    In a DM (`in_dm`), a leading `clm` or `/clm` is allowed (people type what they know from
    the channel), and a greeting gets a greeting back rather than "I don't know `hi`".
    """
    # A NUL byte means nothing to anyone, and no database stores one.
    if isinstance(text, str):
        try:
            words = split_words(text.replace("\x00", ""))
        except ValueError:
            return HelpResult(list(COMMANDS.values()), 'A quote is not closed: check your " marks.')
    else:
        words = [w.replace("\x00", "") for w in text]
    if in_dm and words and words[0].lower() in ("clm", "/clm"):
        words = words[1:]
    if in_dm and words and _is_greeting(words):
        return GreetingResult([COMMANDS["customer"], COMMANDS["funnel"]])
    if not words or words[0].lower() == "help":
        return HelpResult(list(COMMANDS.values()))
    name, args = words[0].lower(), words[1:]
    if name in PLANNED:
        return NotYetResult(name)
    if name not in COMMANDS:
        close = difflib.get_close_matches(name, [*COMMANDS, *PLANNED], n=1, cutoff=0.6)
        hint = f" Did you mean `{close[0]}`?" if close else ""
        return HelpResult(list(COMMANDS.values()), f"I don't know `{words[0]}`.{hint}")
    spec = COMMANDS[name]
    if spec.admin_only and not actor.is_admin:
        return RefusedResult(_admins_only(spec, actor))
    return _HANDLERS[name](spec, args, _Call(session, settings, now, actor))


def _is_greeting(words: list[str]) -> bool:
    first = words[0].lower().strip("!.,?:)")
    return first in GREETINGS and len(words) <= 4


@dataclass(frozen=True)
class _Call:
    """What every subcommand is run with."""

    session: Session
    settings: Settings
    now: datetime
    actor: Actor


def _admins_only(spec: CommandSpec, actor: Actor) -> str:
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


def _find_one(
    session: Session, ref: str, command: str, rest: tuple[str, ...] = ()
) -> Customer | MatchesResult | NoMatchResult:
    lookup = find_customers(session, ref)
    if lookup.unique is not None:
        return lookup.unique
    if lookup.matches:
        return MatchesResult(lookup, command, rest)
    return NoMatchResult(ref, closest_names(session, ref))


def _customer(spec: CommandSpec, args: list[str], ctx: _Call) -> Result:
    if not args:
        return UsageResult(spec, "Say which customer: an external id, an e-mail or a name.")
    found = _find_one(ctx.session, " ".join(args), spec.name)
    if not isinstance(found, Customer):
        return found
    profile = customer_profile(
        ctx.session, found, now=ctx.now, terminal=ctx.settings.lifecycle.terminal
    )
    return ProfileResult(profile)


def _stage(spec: CommandSpec, args: list[str], ctx: _Call) -> Result:
    stages = ctx.settings.lifecycle.stages
    candidates = [i for i in range(1, len(args)) if args[i].lower() in stages]
    if not candidates:
        if len(args) < 2:
            return UsageResult(spec, "Say which customer, and the stage to move them to.")
        at = 1  # no known stage among the words: the second one is meant as the stage
    elif len(candidates) == 1:
        at = candidates[0]
    else:
        # "Acme Retention Co advocacy": the name itself holds a stage word. Take the split
        # whose name finds one customer; when several do, ask rather than guess.
        unique = [i for i in candidates if find_customers(ctx.session, " ".join(args[:i])).unique]
        if len(unique) > 1:
            name, stage = " ".join(args[: unique[-1]]), args[unique[-1]]
            return UsageResult(
                spec,
                f"“{' '.join(args[: unique[0]])}” and “{name}” are both customers: put the "
                f'name in quotes, e.g. `stage "{name}" {stage}`.',
            )
        at = unique[0] if unique else candidates[0]
    ref, stage, reason = " ".join(args[:at]), args[at], " ".join(args[at + 1 :]) or None
    found = _find_one(ctx.session, ref, spec.name, tuple(args[at:]))
    if not isinstance(found, Customer):
        return found
    try:
        move = move_customer(
            ctx.session,
            found,
            stage,
            actor=ctx.actor,
            ref=ref,
            reason=reason,
            now=ctx.now,
            settings=ctx.settings,
        )
    except UnknownStage as exc:
        return UsageResult(spec, str(exc).replace("'", "`"))
    return StageResult(move, found)


def move_customer(
    session: Session,
    customer: Customer,
    stage: str,
    *,
    actor: Actor,
    ref: str,
    reason: str | None,
    now: datetime,
    settings: Settings,
) -> StageMove:
    """A stage move made by a person, from any front door: the history row and its audit
    entry, in one transaction."""
    move = move_stage(
        session,
        customer,
        stage,
        by=actor.id,
        reason=reason,
        now=now,
        lifecycle=settings.lifecycle,
    )
    if move.changed:
        audit.record(
            session,
            actor=actor.id,
            action="stage",
            at=now,
            customer_id=customer.id,
            channel=actor.channel,
            ref=ref,
            from_stage=move.from_stage,
            to_stage=move.to_stage,
            reason=reason,
        )
    return move


def _funnel(spec: CommandSpec, args: list[str], ctx: _Call) -> Result:
    words = list(args)
    said_since = bool(words) and words[0].lower() == "since"
    if said_since:
        words = words[1:]
    if said_since and not words:
        return UsageResult(spec, f"Say since when: {ACCEPTED}.")
    try:
        since = (
            parse_since(" ".join(words), ctx.now, ctx.settings.timezone)
            if words
            else ctx.now - DEFAULT_FUNNEL_PERIOD
        )
    except PeriodError as exc:
        return UsageResult(spec, str(exc).replace("'", "`"))
    return FunnelResult(
        compute_funnel(ctx.session, since=since, now=ctx.now, lifecycle=ctx.settings.lifecycle)
    )


def _help(spec: CommandSpec, args: list[str], ctx: _Call) -> Result:
    return HelpResult(list(COMMANDS.values()))


_HANDLERS = {"help": _help, "customer": _customer, "stage": _stage, "funnel": _funnel}
