"""`clmbot demo`'s set-up and tidy-up: a private temporary folder for the database, the
sample's files and the charts, removed at the end whatever happens (an error, Ctrl-C, the
terminal closed), so the demo leaves nothing behind unless asked to keep the database
(`--db`) or the files (`--out`)."""

from __future__ import annotations

import contextlib
import logging
import shlex
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from datetime import date, datetime
from pathlib import Path
from typing import BinaryIO, TextIO

from clmbot.demo.console import start, style_for
from clmbot.demo.session import ZONE, Demo
from clmbot.slack.logs import ScrubbingFormatter

# The sample's dates are counted back 18 months from the day: keep them in a sane range.
EARLIEST, LATEST = date(2000, 1, 1), date(2100, 12, 31)
_URL_SPECIAL = set("?#%")  # a SQLite URL would read these as its own syntax


class DemoRefused(ValueError):
    """The demo cannot start as asked; the message says what to change."""


def demo_today() -> date:
    """Today where the demo's team works (Jakarta), not in UTC."""
    return datetime.now(ZONE).date()


def play(
    *,
    today: date | None = None,
    seed: int = 7,
    script: Path | None = None,
    db: Path | None = None,
    out: Path | None = None,
    stdout: TextIO | None = None,
) -> None:
    """Run the demo to its end. Raises `DemoRefused` before anything starts when an option
    cannot be honoured, `ScriptError` when a script's line cannot be done."""
    stream = stdout or sys.stdout

    def say(line: str) -> None:
        print(line, file=stream, flush=True)

    day = today or demo_today()
    if not EARLIEST <= day <= LATEST:
        raise DemoRefused(f"--today must be between {EARLIEST} and {LATEST}")
    kept = _new_database(db) if db is not None else None
    files = _out_folder(out) if out is not None else None
    with _script(script) as lines:
        folder = Path(tempfile.mkdtemp(prefix="clmbot-demo-"))  # 0700, ours alone
        demo: Demo | None = None

        def tidy() -> None:
            if demo is not None:
                demo.close()
            shutil.rmtree(folder, ignore_errors=True)

        try:
            with _quiet_logs(), _stops_cleanly(tidy):
                demo = Demo(
                    folder,
                    say=say,
                    style=style_for(stream),
                    seed=seed,
                    today=day,
                    db=kept,
                    files=files,
                )
                start(demo, script=lines, source=str(script) if script else "")
        finally:
            if kept is not None and kept.exists():
                url = shlex.quote(f"sqlite:///{kept}")
                say(f"The database is kept: DATABASE_URL={url} clmbot funnel")
            if files is not None:
                say(f"Charts and exports are in {files}.")


@contextlib.contextmanager
def _script(path: Path | None) -> Iterator[BinaryIO | None]:
    """The script's bytes (decoded line by line, to name a line that is not UTF-8); `-`
    reads standard input."""
    if path is None:
        yield None
        return
    if str(path) == "-":
        yield sys.stdin.buffer
        return
    try:
        opened = path.open("rb")
    except OSError as exc:
        raise DemoRefused(f"cannot read the script {path}: {exc.strerror or exc}") from None
    with opened:
        yield opened


def _new_database(path: Path) -> Path:
    path = path.expanduser().absolute()
    if _URL_SPECIAL & set(str(path)):
        raise DemoRefused(f"give --db a file name without ?, # or %: {shlex.quote(str(path))}")
    if path.exists() or path.is_symlink():
        raise DemoRefused(
            f"{path} exists: the demo builds a new database, so give --db a new file name"
        )
    if not path.parent.is_dir():
        raise DemoRefused(f"{path.parent} is not a folder: create it, or give --db another path")
    return path


def _out_folder(path: Path) -> Path:
    path = path.expanduser().absolute()
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        raise DemoRefused(f"{path} is not a folder: give --out a folder for the charts")
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise DemoRefused(f"cannot make {path}: {exc.strerror or exc}") from None
    return path


@contextlib.contextmanager
def _quiet_logs() -> Iterator[None]:
    """The bot's warnings on stderr, scrubbed as the running bot's are, nothing chattier;
    the logging as it was afterwards (the demo may run inside another program)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(ScrubbingFormatter(logging.Formatter("clmbot: %(message)s")))
    root.handlers, root.level = [handler], logging.WARNING
    try:
        yield
    finally:
        root.handlers, root.level = handlers, level


@contextlib.contextmanager
def _stops_cleanly(tidy: Callable[[], None]) -> Iterator[None]:
    """Run the block, then `tidy` whatever happens: an error, Ctrl-C, SIGTERM or SIGHUP (a
    closed terminal), which end the demo as Ctrl-C does. A signal that comes while `tidy`
    runs waits for it to finish; one that comes just as it starts makes it run again. The
    handlers are left as they were afterwards (only the main thread may set them)."""
    signals = (
        () if sys.platform == "win32" or not _main_thread() else (signal.SIGTERM, signal.SIGHUP)
    )
    tidying = False
    pending: list[int] = []

    def stop(signum: int, _frame: object) -> None:
        if tidying:
            pending.append(signum)
            return
        raise SystemExit(128 + signum)

    before = {s: signal.signal(s, stop) for s in signals}
    try:
        try:
            yield
        finally:
            tidying = True
            tidy()
    finally:
        tidying = True
        tidy()  # again, when a signal cut the first short; harmless otherwise
        for sig, handler in before.items():
            signal.signal(sig, handler)
    if pending:
        raise SystemExit(128 + pending[0])


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()
