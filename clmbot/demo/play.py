"""`clmbot demo`'s set-up and tidy-up: a private temporary folder for the database, the
sample's files and the charts, removed at the end whatever happens, so the demo leaves
nothing behind (unless asked to keep the database, `--db`, or the charts, `--out`)."""

from __future__ import annotations

import logging
import shutil
import sys
import tempfile
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import TextIO

from clmbot.demo.console import start, style_for
from clmbot.demo.session import Demo
from clmbot.slack.logs import ScrubbingFormatter


class DemoRefused(ValueError):
    """The demo cannot start as asked; the message says what to change."""


def play(
    *,
    today: date,
    seed: int = 7,
    script: Path | None = None,
    db: Path | None = None,
    out: Path | None = None,
    say: Callable[[str], None] | None = None,
    stdout: TextIO | None = None,
) -> None:
    """Run the demo to its end. Raises `DemoRefused` before anything starts when an option
    cannot be honoured, `ScriptError` when a script's line cannot be done."""
    stream = stdout or sys.stdout
    if say is None:

        def say(line: str) -> None:
            print(line, file=stream, flush=True)

    lines = _script(script)
    kept = _new_database(db) if db is not None else None
    files = _out_folder(out) if out is not None else None
    _quiet_logs()
    folder = Path(tempfile.mkdtemp(prefix="clmbot-demo-"))  # 0700, ours alone
    demo: Demo | None = None
    try:
        demo = Demo(
            folder, say=say, style=style_for(stream), seed=seed, today=today, db=kept, files=files
        )
        start(demo, script=lines, source=str(script) if script else "")
    finally:
        if demo is not None:
            demo.close()
        shutil.rmtree(folder, ignore_errors=True)
    if kept is not None:
        say(f"The database is kept: DATABASE_URL=sqlite:///{kept} clmbot funnel")
    if files is not None:
        say(f"Charts are in {files}.")


def _script(path: Path | None) -> TextIO | None:
    if path is None:
        return None
    try:
        return path.open(encoding="utf-8")
    except OSError as exc:
        raise DemoRefused(f"cannot read the script {path}: {exc.strerror or exc}") from None


def _new_database(path: Path) -> Path:
    path = path.expanduser().absolute()
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


def _quiet_logs() -> None:
    """The bot's warnings on stderr, scrubbed as the running bot's are; nothing chattier."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(ScrubbingFormatter(logging.Formatter("clmbot: %(message)s")))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(logging.WARNING)
