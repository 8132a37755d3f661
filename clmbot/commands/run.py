"""From what was typed to a result: split the words, pick the command, check who may run it."""

from __future__ import annotations

import difflib
from datetime import datetime

from sqlmodel import Session

from clmbot.commands.base import QUOTES, Call, admins_only, rest_of, split_words
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
        typed = text.replace("\x00", "").translate(QUOTES)
        try:
            words = split_words(typed)
        except ValueError:
            return help_result('A quote is not closed: check your " marks.')
    else:
        words = [w.replace("\x00", "") for w in text]
        typed = " ".join(_quoted(w) for w in words)
    if in_dm and words and words[0].lower() in ("clm", "/clm"):
        words = words[1:]
        typed = rest_of(typed, 1)
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
    call = Call(session, settings, now, actor, rest_of(typed, 1))
    return command.handler(command.spec, args, call)


def _quoted(word: str) -> str:
    """A word from a button, typed back: in quotes when it holds a space (or is empty)."""
    if word and not any(c.isspace() or c == '"' for c in word):
        return word
    return '"' + word.replace('"', "") + '"'


def _is_greeting(words: list[str]) -> bool:
    first = words[0].lower().strip("!.,?:)")
    return first in GREETINGS and len(words) <= 4
