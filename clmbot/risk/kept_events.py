"""The events the risk pass reads, kept between passes in a private file, so that a pass
reads from the database only the events added since the one before.

Why: at ten million events, reading them all from the database into arrays took four times
the whole of one SQL aggregate over them (SQLite hands each row to Python as a tuple), and
most of a day's pass; a day adds a small part of them. The file holds the columns the pass
uses (customer, time, value, whether a purchase: 25 bytes an event), in the pass's order
(customer, time, event id); a pass reads the events whose ids are above the last one kept
and merges them in.

Before the file is trusted, every pass checks it against the database: as many events up
to its last id as it holds, and a few events it noted read back by id, the same. Anything
else (events deleted, a backup restored, a file of another database) and it is read again
whole from the table. A PostgreSQL transaction that commits after a later one was read
leaves a gap below the last id; the count finds it on the next pass, which reads it all
again. Deleting the file is always safe: it costs one slow pass.

Where: beside a SQLite database (`clmbot.db-risk`); for PostgreSQL, in clmbot's state
directory, one file per database URL (each copy of the bot keeps its own). It holds
customer ids, times and amounts: private (0600), written under another name and renamed
over, never through a planted link; one that is not ours, or that others may write, is
not read.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import Connection

from clmbot import files
from clmbot.risk import rows as fetch

log = logging.getLogger(__name__)

SUFFIX = "-risk"
_MAGIC = b"CLMBOT-RISK-EVENTS\n"
_FORMAT = 1
_SAMPLES = 8  # events noted to be read back by id
_KEY = np.dtype([("customer", "<i8"), ("at", "<i8")])


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


def events(conn: Connection) -> Kept:
    """Every event in the database, from the kept file and what was added since; the file
    is brought up to date when there is one to keep."""
    path = place(conn)
    kept = _read(path) if path is not None else None
    if kept is not None and not _still_holds(conn, kept):
        log.warning("the risk pass's kept events no longer match the database: reading all")
        kept = None
    base = kept if kept is not None else _empty()
    eid, customer, at, value, bought = fetch.events_after(conn, base.last_id)
    if len(eid) == 0 and kept is not None:
        return kept
    merged = _merged(base, eid, customer, at, value, bought)
    if path is not None:
        _write(path, merged)
    return merged


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
    picked = _pick(eid, customer, at)
    samples = np.concatenate([base.samples, picked])[-_SAMPLES:]
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
    """A few of the events just read to note: the latest id, and some spread over the rest
    when they are the first read."""
    if len(eid) == 0:
        return np.zeros((0, 3), dtype=np.int64)
    spread = np.unique(np.linspace(0, len(eid) - 1, _SAMPLES).astype(np.int64))
    latest = np.array([int(np.argmax(eid))])
    chosen = np.unique(np.concatenate([spread, latest]))
    chosen = chosen[np.argsort(eid[chosen], kind="stable")]
    return np.column_stack([eid[chosen], customer[chosen], at[chosen]]).astype(np.int64)


def _still_holds(conn: Connection, kept: Kept) -> bool:
    """Whether the database still has exactly the events the file holds up to its id."""
    mark = "%s" if conn.dialect.name == "postgresql" else "?"
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(f"SELECT count(*) FROM events WHERE id <= {mark}", (kept.last_id,))
        (count,) = cursor.fetchone()
        if count != len(kept):
            return False
        if len(kept.samples) == 0:
            return True
        ids = [int(i) for i in kept.samples[:, 0]]
        marks = ", ".join(mark for _ in ids)
        at = fetch._micros_column(conn, "occurred_at")
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


def _read(path: Path) -> Kept | None:
    """The kept file, or None when there is none we may trust or it cannot be read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError:
        log.warning("the risk pass's kept events at %s cannot be opened: reading all", path)
        return None
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if info.st_uid != os.getuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            log.warning("%s is not a file of clmbot's (owner, mode): not read", path)
            return None
        try:
            if fh.read(len(_MAGIC)) != _MAGIC:
                raise ValueError("not a kept-events file")
            meta = np.load(fh, allow_pickle=False)
            if meta.shape != (3,) or int(meta[0]) != _FORMAT:
                raise ValueError("another format")
            columns = [np.load(fh, allow_pickle=False) for _ in range(5)]
        except (ValueError, OSError, EOFError):
            log.warning("the risk pass's kept events at %s are unreadable: reading all", path)
            return None
    customer, at, value, bought, samples = columns
    n = int(meta[2])
    if not all(len(c) == n for c in (customer, at, value, bought)) or samples.ndim != 2:
        return None
    return Kept(customer, at, value, bought, int(meta[1]), samples)


def _write(path: Path, kept: Kept) -> None:
    """The file replaced whole; a failure to write only costs the next pass a full read."""
    try:
        if path.parent == files.state_dir() / "risk":  # ours to make private; not a
            files.private_dir(path.parent)  # SQLite database's own folder
        out = files.PrivateFile(path, binary=True)
    except OSError as exc:
        log.warning("the risk pass cannot keep its events at %s (%s)", path, exc.strerror)
        return
    try:
        out.file.write(_MAGIC)
        np.save(out.file, np.array([_FORMAT, kept.last_id, len(kept)], dtype=np.int64))
        for column in (kept.customer, kept.at, kept.value, kept.bought, kept.samples):
            np.save(out.file, column)
        out.commit()
    except OSError as exc:
        out.discard()
        log.warning("the risk pass cannot keep its events at %s (%s)", path, exc.strerror)
