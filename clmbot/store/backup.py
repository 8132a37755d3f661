"""`clmbot db backup FILE`: a consistent copy of a SQLite database, taken while the bot runs.

Copying `clmbot.db` with `cp` while the bot writes can copy half a transaction, and misses
whatever still sits in the `-wal` file. SQLite's online backup copies a snapshot, and writers
go on meanwhile. The copy holds every customer's data, so it is written as
every clmbot file is: private (0600), under a new name beside the destination and renamed over
it, so a link planted at the destination is replaced, never written through, and a reader never
sees half a backup.

PostgreSQL has its own tools for this (`pg_dump`, or the server's base backups), which know
its locks and snapshots; clmbot does not wrap them, it says what to run.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from clmbot.store.migrate import current_revision

# All pages in one step, under one read transaction. Copied in steps, the backup starts over
# whenever another connection writes between two of them, and a busy bot would keep it from
# ever finishing; in one step it is a snapshot, and in WAL mode (clmbot's) writers go on.
_ALL_PAGES = -1


class BackupProblem(RuntimeError):
    """The backup could not be made; the message says why and what to do instead."""


@dataclass(frozen=True)
class Backup:
    path: Path
    bytes: int
    revision: str | None


def backup_sqlite(engine: Engine, destination: Path) -> Backup:
    """A snapshot of the SQLite database behind `engine` at `destination`, checked readable."""
    if engine.dialect.name != "sqlite":
        url = engine.url.set(password=None).render_as_string(hide_password=True)
        raise BackupProblem(
            "clmbot db backup copies SQLite files; for PostgreSQL use its own tools, e.g. "
            f"pg_dump --format=custom --file=clmbot.dump '{url}' (and pg_restore to restore)"
        )
    source_file = Path(engine.url.database or "")
    if destination.resolve() == source_file.resolve():
        raise BackupProblem(f"{destination} is the database itself; choose another file")
    if destination.is_dir():
        raise BackupProblem(f"{destination} is a directory; give a file name")
    try:
        fd, tmp_name = tempfile.mkstemp(
            dir=destination.parent, prefix=f".{destination.name}.", suffix=".part"
        )
    except OSError as exc:
        raise BackupProblem(
            f"cannot write in {destination.parent}: {exc.strerror or exc}; give a file in a "
            "folder that exists and you can write to"
        ) from None
    os.close(fd)  # mkstemp made it 0600; SQLite writes into the empty file it finds
    tmp = Path(tmp_name)
    try:
        raw = engine.raw_connection()
        try:
            target = sqlite3.connect(tmp)
            try:
                raw.driver_connection.backup(target, pages=_ALL_PAGES)  # type: ignore[union-attr]
                problem = target.execute("PRAGMA quick_check").fetchone()
                if problem is None or problem[0] != "ok":
                    raise BackupProblem(f"the copy did not check out ({problem}); nothing written")
            finally:
                target.close()
        finally:
            raw.close()
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, destination)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return Backup(destination, destination.stat().st_size, current_revision(engine))
