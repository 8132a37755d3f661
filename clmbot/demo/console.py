"""The demo's prompt: lines typed (or read from a script) become a `Demo`'s verbs.

`/clm …` (or the same words without it) is a command typed in #retention; a line starting
with `:` is the console's own (`:as`, `:dm`, `:click`, `:advance`, `:home`, `:help`). On a
terminal the prompt has line editing and history (readline); from a script or a pipe each
line is echoed before its answer, so the output reads as a transcript.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import BinaryIO, TextIO

from clmbot.demo.session import Demo, DemoError
from clmbot.demo.terminal import Style, printable

log = logging.getLogger("clmbot.demo")

HELP = """\
/clm WORDS          a command, typed in #retention (or just WORDS): /clm help lists them
:as NAME            who is typing: sari (admin), budi, maya, tom (team), rudi (not on the
                    team), gina (a guest)
:dm CUSTOMER TEXT   a customer writes to the bot in their DM (answers a survey: 9 great)
:click N            press button N of the last message you see with buttons (an answer
                    of yours, the digest); :click C0001 N presses one in C0001's DM
:advance SPAN       move the clock (30m, 12h, 1d, 1w) and run what the scheduler runs on
                    the way: the survey sender, reminders, the 09:00 risk pass and digest
:home               the Home tab of clmbot, as the one typing sees it
:help               this; :quit (or Ctrl-D) leaves"""


class ScriptError(RuntimeError):
    """A line of a script could not be done: the demo stops there (exit status 2)."""


def style_for(stream: TextIO) -> Style:
    """Colour on a terminal; none when piped, when NO_COLOR is set, or on a dumb terminal."""
    tty = stream.isatty()
    return Style(tty and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb")


def run(demo: Demo, lines: Iterable[str], *, echo: bool, source: str = "") -> None:
    """Every line in turn. `echo`: print each line after a prompt (a script's transcript).
    In a script (`source` names it) a line that cannot be done stops the run; at the
    prompt, it is explained and the next line is read, and Ctrl-C stops only the line."""
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if echo:
            demo.say(f"\n{prompt(demo)}{clipped(line)}")
        try:
            if not do(demo, line):
                return
        except DemoError as exc:
            if source:
                raise ScriptError(f"{source} line {number}: {clipped(str(exc))}") from None
            demo.say(demo.style.warn(f"! {clipped(str(exc))}"))
        except KeyboardInterrupt:
            if source:
                raise
            demo.say(demo.style.warn(f"! stopped; it is {demo.when()} in the demo now"))
        except BrokenPipeError:
            raise  # the reader went away (`| head`): the command line ends quietly
        except Exception:  # a bug of ours: said in one line, the details in the log
            log.exception("the demo failed on a line")
            problem = "that went wrong inside clmbot (the details are above)"
            if source:
                raise ScriptError(f"{source} line {number}: {problem}") from None
            demo.say(demo.style.warn(f"! {problem}; the demo carries on"))


def clipped(text: str, limit: int = 300) -> str:
    """What was typed, shown back: without control characters, and not a page long."""
    text = printable(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def decoded(stream: BinaryIO, source: str) -> Iterator[str]:
    """A script's lines as text; a line that is not UTF-8 stops it, naming the line."""
    for number, raw in enumerate(stream, 1):
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ScriptError(
                f"{source} line {number} is not UTF-8 text: save the script as UTF-8"
            ) from None


def do(demo: Demo, line: str) -> bool:
    """One line; False when it asks to leave."""
    if not line.startswith(":"):
        demo.command(line)
        return True
    verb, _, rest = line[1:].partition(" ")
    verb, rest = verb.lower(), rest.strip()
    if verb in ("quit", "q", "exit"):
        return False
    if verb == "help":
        for help_line in HELP.splitlines():
            demo.say(help_line)
        return True
    if verb == "home":
        demo.home()
        return True
    verbs: dict[str, tuple[str, Callable[[str], None]]] = {
        "as": (":as budi", demo.become),
        "click": (":click 1", demo.click),
        "advance": (":advance 1d", demo.advance),
    }
    if verb == "dm":
        who, _, text = rest.partition(" ")
        if not who:
            raise DemoError("say who writes and what: :dm C0012 9 great support")
        demo.dm(who, text.strip())
        return True
    if verb not in verbs:
        raise DemoError(f"no verb `:{verb}`; :help lists them")
    example, action = verbs[verb]
    if not rest:
        raise DemoError(f"`:{verb}` needs more, e.g. {example}")
    action(rest)
    return True


def prompt(demo: Demo) -> str:
    """Who is typing, as the line a transcript shows them typing after."""
    return demo.style.bold(f"{demo.me.name} > ")


def for_readline(text: str) -> str:
    """A prompt's colour codes marked as taking no room (\\001…\\002), or readline would
    count them and put the cursor in the wrong place on a long line."""
    return re.sub(r"(\x1b\[[0-9;]*m)", "\x01\\1\x02", text)


def typed(demo: Demo) -> Iterator[str]:
    """Lines from the terminal, with readline's editing and an in-memory history (nothing
    is written to disk)."""
    with contextlib.suppress(ImportError):  # Windows without it: plain input still works
        import readline  # noqa: F401 (input() edits lines once it is loaded)
    while True:
        try:
            yield input(for_readline(prompt(demo)))
        except EOFError:
            print()
            return
        except KeyboardInterrupt:  # Ctrl-C drops the line being typed, as a shell does
            print()
            continue


def start(demo: Demo, *, script: BinaryIO | None, source: str) -> None:
    """The banner, then the script's lines, stdin's (piped), or the terminal's."""
    for line in demo.banner():
        demo.say(line)
    if script is not None:
        run(demo, decoded(script, source), echo=True, source=source)
    elif not sys.stdin.isatty():
        run(demo, decoded(sys.stdin.buffer, "stdin"), echo=True, source="stdin")
    else:
        demo.say("Type :help for the console's verbs, /clm help for the bot's commands.")
        run(demo, typed(demo), echo=False)
