"""The events the risk pass reads, kept between passes in a private file, so that a pass
reads from the database only the events added since the one before.

Why: at ten million events, reading them all from the database into arrays took four times
the whole of one SQL aggregate over them (SQLite hands each row to Python as a tuple), and
most of a day's pass; a day adds a small part of them. The file holds the columns the pass
uses (customer, time, value, whether a purchase: 25 bytes an event), in the pass's order
(customer, time, event id); a pass reads the events whose ids are above the last one kept
and merges them in.

Before the file is trusted, every pass checks it against the database:
- the database is the one it was made from (a random mark kept in `data_versions`, so a
  file beside a database made anew is not believed);
- no stored event changed since (`events.rewritten` in `data_versions`, raised by every
  commit that updates or deletes events, such as a re-import correcting amounts);
- as many events up to its last id as it holds (a PostgreSQL transaction that commits after
  a later one was read leaves a gap below the last id, found here on the next pass);
- a few events it noted, read back by id, the same (a backup restored).
Anything else and every event is read again. Deleting the file is always safe: it costs one
slow pass.

Where: beside a SQLite database (`clmbot.db-risk`); for PostgreSQL, in clmbot's state
directory, one file per database URL (each copy of the bot keeps its own). It holds
customer ids, times and amounts: private (0600), written under another name and renamed
over, never through a planted link; one that is not ours, or that others may write, is
not read.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import logging
import os
import re
import secrets
import stat
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import BinaryIO

import numpy as np
from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from clmbot import files
from clmbot.risk import rows as fetch
from clmbot.store import versions
from clmbot.store.models import DataVersion

log = logging.getLogger(__name__)

SUFFIX = "-risk"
_MAGIC = b"CLMBOT-RISK-EVENTS\n"
_FORMAT = 2
_SAMPLES = 8  # events noted to be read back by id: as many of the first read, and the newest
_TOKEN = "risk.kept-events"  # the database's mark, a row of `data_versions`
_VERSIONS = DataVersion.__table__
_KEY = np.dtype([("customer", "<i8"), ("at", "<i8")])
# Starts a read on a connection of its own; its result when called (`facts.load`'s).
Beside = Callable[[Callable[[Connection], int]], Callable[[], int]]


@dataclass(frozen=True)
class Kept:
    """Every event with an id up to `last_id`, as columns in the pass's order."""

    customer: np.ndarray  # int64
    at: np.ndarray  # microseconds since the epoch, int64
    value: np.ndarray  # float64, 0 when missing
    bought: np.ndarray  # bool: a purchase
    last_id: int
    # (event id, customer, time) of a few of them, read back to check the file.
    samples: np.ndarray
    # The database's mark and its count of commits that rewrote events, when it was read.
    marks: tuple[int, int] = (0, 0)

    def __len__(self) -> int:
        return len(self.customer)

    def before(self, as_of_us: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The events before `as_of_us` (microseconds), as the pass reads them."""
        keep = self.at < as_of_us
        if keep.all():
            return self.customer, self.at, self.value, self.bought
        return self.customer[keep], self.at[keep], self.value[keep], self.bought[keep]


def _empty() -> Kept:
    none = np.zeros(0, dtype=np.int64)
    return Kept(none, none, np.zeros(0), np.zeros(0, dtype=bool), 0, np.zeros((0, 3), np.int64))


def events(conn: Connection, beside: Beside | None = None) -> Kept:
    """Every event in the database, from the kept file and what was added since; the file
    is brought up to date when there is one to keep.

    `beside` runs a read on a connection of its own while this goes on (`facts.load`'s):
    the database counts the kept events while the file is read. On PostgreSQL the count
    took as long as reading the file, one after the other on the pass's connection."""
    path = place(conn)
    # Read before the events: a rewrite committed in between is then seen by the next pass.
    marks = _marks(conn) if path is not None else None
    opened = _open(path) if path is not None and marks is not None else None
    counted = None
    kept = None
    if opened is not None:
        try:
            if opened.marks == marks:
                count = partial(_count, last_id=opened.last_id)
                counted = beside(count) if beside is not None else partial(count, conn)
            kept = opened.columns()
        finally:
            opened.file.close()
    if kept is not None and (
        kept.marks != marks
        or counted is None
        or counted() != len(kept)
        or not _samples_hold(conn, kept)
    ):
        log.warning("the risk pass's kept events no longer match the database: reading all")
        kept = None
    base = kept if kept is not None else _empty()
    eid, customer, at, value, bought = fetch.events_after(conn, base.last_id)
    if len(eid) == 0 and kept is not None:
        with contextlib.suppress(OSError):
            os.utime(path, follow_symlinks=False)  # in use, with nothing new: not unused
        return kept
    merged = _merged(base, eid, customer, at, value, bought)
    if path is not None and marks is not None:
        _write(path, replace(merged, marks=marks))
    return merged


def added_since(conn: Connection, kept: Kept) -> Kept | None:
    """`kept` with the events committed since it was read, or None when there are none (as
    nearly always). `facts.load` asks once the customers are read: an import commits a new
    customer with their events, and one committed after the events were read would be
    scored without them."""
    eid, customer, at, value, bought = fetch.events_after(conn, kept.last_id)
    if len(eid) == 0:
        return None
    return _merged(kept, eid, customer, at, value, bought)


def _marks(conn: Connection) -> tuple[int, int] | None:
    """The database's mark (made on first use) and its count of commits that rewrote
    events; None before `data_versions` exists (nothing is kept then)."""
    found = versions.current(conn, (_TOKEN, versions.EVENTS_REWRITTEN))
    if found is None:
        return None
    token, rewritten = found
    if token == 0:
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        try:
            # Its own transaction: the pass's is never committed. A database that cannot
            # be written now (another writer's lock, a read-only role) keeps nothing.
            with conn.engine.begin() as own:
                own.execute(
                    dialect.insert(_VERSIONS)
                    .values(name=_TOKEN, version=secrets.randbelow(2**62) + 1)
                    .on_conflict_do_nothing(index_elements=["name"])
                )
        except SQLAlchemyError as exc:
            log.warning(
                "the risk pass cannot mark the database for its kept events (%s): reading all",
                type(exc).__name__,
            )
            return None
        found = versions.current(conn, (_TOKEN, versions.EVENTS_REWRITTEN))
        if found is None:
            return None
        token, rewritten = found
    return token, rewritten


def place(conn: Connection) -> Path | None:
    """Where this database's events are kept; None where nothing can be (in memory)."""
    url = conn.engine.url
    if conn.dialect.name == "sqlite":
        database = url.database
        if not database or database == ":memory:" or database.startswith("file:"):
            return None
        return Path(f"{database}{SUFFIX}")
    named = url.render_as_string(hide_password=True).encode()
    return files.state_dir() / "risk" / f"events-{hashlib.sha256(named).hexdigest()[:32]}"


def _merged(
    base: Kept,
    eid: np.ndarray,
    customer: np.ndarray,
    at: np.ndarray,
    value: np.ndarray,
    bought: np.ndarray,
) -> Kept:
    """`base` with the new events put in their places. New ids are above every kept one,
    so a new event tied with a kept one (same customer and time) goes after it, as a read
    of the whole table sorted by customer, time and id would put it."""
    last_id = max(base.last_id, int(eid.max())) if len(eid) else base.last_id
    # The first read's few, kept for good, and the newest reads' latest.
    first, later = base.samples[:_SAMPLES], base.samples[_SAMPLES:]
    samples = np.concatenate([first, np.concatenate([later, _pick(eid, customer, at)])[-_SAMPLES:]])
    if len(base) == 0:
        return Kept(customer, at, value, bought, last_id, samples)
    old = np.empty(len(base), dtype=_KEY)
    old["customer"], old["at"] = base.customer, base.at
    new = np.empty(len(eid), dtype=_KEY)
    new["customer"], new["at"] = customer, at
    where = np.searchsorted(old, new, side="right")
    del old, new
    return Kept(
        np.insert(base.customer, where, customer),
        np.insert(base.at, where, at),
        np.insert(base.value, where, value),
        np.insert(base.bought, where, bought),
        last_id,
        samples,
    )


def _pick(eid: np.ndarray, customer: np.ndarray, at: np.ndarray) -> np.ndarray:
    """A few of the events just read to note: the latest id, and some spread over the rest."""
    if len(eid) == 0:
        return np.zeros((0, 3), dtype=np.int64)
    spread = np.unique(np.linspace(0, len(eid) - 1, _SAMPLES).astype(np.int64))
    latest = np.array([int(np.argmax(eid))])
    chosen = np.unique(np.concatenate([spread, latest]))
    chosen = chosen[np.argsort(eid[chosen], kind="stable")]
    return np.column_stack([eid[chosen], customer[chosen], at[chosen]]).astype(np.int64)


def _count(conn: Connection, last_id: int) -> int:
    """How many events the database holds up to `last_id`: as many as the file, or some
    were deleted behind clmbot's back, or a PostgreSQL transaction committed ids below it
    after the file was read."""
    pg = conn.dialect.name == "postgresql"
    # SQLite counts a whole table from its smallest index's pages without reading a row,
    # but counts a range of ids row by row: 0.4 s at ten million events, where everyone
    # less those added since takes 0.17 s. One statement: one snapshot of the table.
    counted = (
        "SELECT count(*) FROM events WHERE id <= %s"
        if pg
        else "SELECT (SELECT count(*) FROM events) - (SELECT count(*) FROM events WHERE id > ?)"
    )
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(counted, (last_id,))
        (count,) = cursor.fetchone()
    finally:
        cursor.close()
    return int(count)


def _samples_hold(conn: Connection, kept: Kept) -> bool:
    """Whether the few events the file noted are still the same (a backup restored, or
    another database at the same place, has others at their ids)."""
    if len(kept.samples) == 0:
        return True
    mark = "%s" if conn.dialect.name == "postgresql" else "?"
    ids = [int(i) for i in kept.samples[:, 0]]
    marks = ", ".join(mark for _ in ids)
    at = fetch.micros_column(conn, "occurred_at")
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(f"SELECT id, customer_id, {at} FROM events WHERE id IN ({marks})", ids)
        found = {row[0]: row[1:] for row in cursor.fetchall()}
    finally:
        cursor.close()
    for event_id, customer, at_us in kept.samples.tolist():
        row = found.get(event_id)
        if row is None or row[0] != customer:
            return False
        if int(fetch.micros_of(conn, [row[1]])[0]) != at_us:
            return False
    return True


@dataclass
class _Opened:
    """A kept file opened and trusted, its header read: what the database is asked to
    count is known before its columns are read."""

    file: BinaryIO
    path: Path
    last_id: int
    length: int
    marks: tuple[int, int]

    def columns(self) -> Kept | None:
        with self.file as fh:
            try:
                columns = [np.load(fh, allow_pickle=False) for _ in range(5)]
            except (ValueError, OSError, EOFError):
                log.warning(
                    "the risk pass's kept events at %s are unreadable: reading all", self.path
                )
                return None
        customer, at, value, bought, samples = columns
        n = self.length
        if not all(len(c) == n for c in (customer, at, value, bought)) or samples.ndim != 2:
            return None
        return Kept(customer, at, value, bought, self.last_id, samples, self.marks)


def _read(path: Path) -> Kept | None:
    """The kept file, or None when there is none we may trust or it cannot be read."""
    opened = _open(path)
    return opened.columns() if opened is not None else None


def _open(path: Path) -> _Opened | None:
    """The kept file opened, checked as ours and its header read; None when there is none we
    may trust or it cannot be read."""
    try:
        # Without waiting: a FIFO planted in the file's place would otherwise hold the pass.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError:
        log.warning("the risk pass's kept events at %s cannot be opened: reading all", path)
        return None
    fh = os.fdopen(fd, "rb")
    opened = None
    try:
        opened = _header(fh, path)
    finally:
        if opened is None:  # not ours, unreadable, or an error: nothing left open
            fh.close()
    return opened


def _header(fh: BinaryIO, path: Path) -> _Opened | None:
    """`fh` as a kept file of ours, its header read; None when it is not one to trust."""
    info = os.fstat(fh.fileno())
    if (
        not stat.S_ISREG(info.st_mode)
        or info.st_uid != os.getuid()
        or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    ):
        log.warning("%s is not a file of clmbot's (kind, owner, mode): not read", path)
        return None
    try:
        if fh.read(len(_MAGIC)) != _MAGIC:
            raise ValueError("not a kept-events file")
        meta = np.load(fh, allow_pickle=False)
        if meta.ndim == 1 and len(meta) and int(meta[0]) != _FORMAT:
            log.info("the risk pass's kept events are of another clmbot: reading all")
            return None
        if meta.shape != (5,):
            raise ValueError("not a kept-events file")
    except (ValueError, OSError, EOFError):
        log.warning("the risk pass's kept events at %s are unreadable: reading all", path)
        return None
    return _Opened(fh, path, int(meta[1]), int(meta[2]), (int(meta[3]), int(meta[4])))


def _write(path: Path, kept: Kept) -> None:
    """The file replaced whole; a failure to write only costs the next pass a full read."""
    _remove_stale(path)
    try:
        if path.parent == files.state_dir() / "risk":  # ours to make private; not a
            files.private_dir(path.parent)  # SQLite database's own folder
            _remove_unused(path)
        out = files.PrivateFile(path, binary=True)
    except OSError as exc:
        log.warning("the risk pass cannot keep its events at %s (%s)", path, exc.strerror)
        return
    try:
        out.file.write(_MAGIC)
        meta = [_FORMAT, kept.last_id, len(kept), *kept.marks]
        np.save(out.file, np.array(meta, dtype=np.int64))
        for column in (kept.customer, kept.at, kept.value, kept.bought, kept.samples):
            np.save(out.file, column)
        out.commit()
    except BaseException as exc:  # never a half-written copy of customers' events left
        out.discard()
        if not isinstance(exc, OSError):
            raise
        log.warning("the risk pass cannot keep its events at %s (%s)", path, exc.strerror)


STALE_SECONDS = 3600  # a half-written copy this old is being written by nobody
UNUSED_DAYS = 30
_OURS = re.compile(r"events-[0-9a-f]{32}")  # as `place` names them


def _remove_stale(path: Path) -> None:
    """Half-written copies of ours that a killed pass left, so that no copy of customers'
    events lingers."""
    _remove_older(path.parent.glob(f".{glob.escape(path.name)}.*.part"), STALE_SECONDS)


def _remove_unused(path: Path) -> None:
    """Other databases' files in the state folder that no pass has used for a month: a URL
    that changed (another host, user or schema) leaves its file behind, up to hundreds of
    megabytes of customers' events."""
    others = (
        other
        for other in path.parent.iterdir()
        if other.name != path.name and _OURS.fullmatch(other.name)
    )
    _remove_older(others, UNUSED_DAYS * 86_400)


def _remove_older(found: Iterable[Path], seconds: float) -> None:
    """Those of `found` that are regular files of ours, untouched for `seconds` (links and
    others' files are left alone)."""
    for path in found:
        try:
            info = path.lstat()
            if (
                stat.S_ISREG(info.st_mode)
                and info.st_uid == os.getuid()
                and time.time() - info.st_mtime > seconds
            ):
                path.unlink()
        except OSError:
            continue
