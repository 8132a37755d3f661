"""From what was typed to a result: split the words, pick the command, check who may run it."""

from __future__ import annotations

import difflib
import shlex
from datetime import datetime

from sqlmodel import Session

from clmbot.commands.base import Call, admins_only
from clmbot.commands.registry import COMMANDS, PLANNED, REGISTRY, help_result
from clmbot.commands.spec import Actor
from clmbot.config import Settings
from clmbot.results import GreetingResult, NotYetResult, RefusedResult, Result

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
            return help_result('A quote is not closed: check your " marks.')
    else:
        words = [w.replace("\x00", "") for w in text]
    if in_dm and words and words[0].lower() in ("clm", "/clm"):
        words = words[1:]
    if in_dm and words and _is_greeting(words):
        return GreetingResult([COMMANDS["customer"], COMMANDS["funnel"]])
    if not words or words[0].lower() == "help":
        return help_result()
    name, args = words[0].lower(), words[1:]
    if name in PLANNED:
        return NotYetResult(name)
    if name not in REGISTRY:
        close = difflib.get_close_matches(name, [*REGISTRY, *PLANNED], n=1, cutoff=0.6)
        hint = f" Did you mean `{close[0]}`?" if close else ""
        return help_result(f"I don't know `{words[0]}`.{hint}")
    command = REGISTRY[name]
    if command.spec.admin_only and not actor.is_admin:
        return RefusedResult(admins_only(command.spec, actor))
    return command.handler(command.spec, args, Call(session, settings, now, actor))


def _is_greeting(words: list[str]) -> bool:
    first = words[0].lower().strip("!.,?:)")
    return first in GREETINGS and len(words) <= 4
