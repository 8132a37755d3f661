"""What a row checker must remember about every row, in bounded memory.

Numbering duplicate events and naming the line of an earlier duplicate takes one entry per
distinct key of the file, for the whole file: a dict of them grew to 1.4 GB at 10,000,000
events. `SpillMap` keeps up to `MEMORY_KEYS` entries in a dict and moves them, when there
are more, to a SQLite database on disk; the file's size then costs disk, not memory.

Each move writes a new table in key order (appending only: merging into one big table
rewrote it on every move, 20 µs a key). Looking every row up on disk would cost more than
checking it, yet nearly every key of a file is new. So a fixed-size filter (two bits a key
in 32 MB) tells the keys that were certainly never moved to disk, and only the few others
(a true duplicate, or about one key in two hundred at 10,000,000 keys, one in twenty-five at
30,000,000) are looked up, a chunk's at once, newest table first. The results are those of
a dict, exactly: the disk only holds what the dict would have held.

The database lives in a directory made for it alone (0700, by `mkdtemp`, which creates it
and fails rather than reuse anything there), and both are unlinked as soon as the database
is open: nothing is left behind, whatever ends the process, and no path is ever opened
again that someone could plant a link at. With no journal (nothing to roll back: the data is
thrown away with the process), SQLite never needs the path again.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
from collections.abc import Iterable
from pathlib import Path

# Entries held in memory before they move to disk: about 50 MB of dict. (At a million, the
# checker's peak was 184 MB for a file of a million keys and 258 MB from three million on,
# when the move's sorted copy and the filter come on top of the dict.)
MEMORY_KEYS = 500_000
_FILTER_BITS = 1 << 28  # 32 MB
_MASK = _FILTER_BITS - 1
_LOOKUP_BATCH = 20_000
_CACHE_KB = 4096  # SQLite's own page cache: look-ups touch few pages, appends none twice


class SpillMap:
    """int key -> int value, as a dict, that moves to disk beyond `limit` keys.

    `load(keys)` must be called before the keys of a chunk are read with `get`: it brings
    back what the disk holds of them. `settle()` after the chunk moves the entries to disk
    if there are too many. `close()` frees the disk.
    """

    def __init__(self, limit: int | None = None) -> None:
        self.limit = MEMORY_KEYS if limit is None else limit
        self.memory: dict[int, int] = {}
        self._db: sqlite3.Connection | None = None
        self._filter: bytearray | None = None
        self._runs = 0  # tables on disk, one per move, each in key order

    @property
    def spilled(self) -> bool:
        return self._db is not None

    def load(self, keys: Iterable[int]) -> None:
        """Bring into memory the entries the disk holds of `keys`."""
        db, bits = self._db, self._filter
        if db is None or bits is None:
            return
        memory = self.memory
        wanted = []
        for key in set(keys):
            if key in memory:
                continue
            a = key & _MASK
            b = (key >> 28) & _MASK
            if bits[a >> 3] & (1 << (a & 7)) and bits[b >> 3] & (1 << (b & 7)):
                wanted.append(key)
        # Newest run first: a key moved to disk twice holds its latest value there.
        for run in range(self._runs - 1, -1, -1):
            if not wanted:
                break
            found: dict[int, int] = {}
            for start in range(0, len(wanted), _LOOKUP_BATCH):
                batch = json.dumps(wanted[start : start + _LOOKUP_BATCH])
                found.update(
                    db.execute(
                        f"SELECT k, v FROM run{run} WHERE k IN (SELECT value FROM json_each(?))",
                        (batch,),
                    )
                )
            if found:
                memory.update(found)
                wanted = [key for key in wanted if key not in found]

    def get(self, key: int) -> int | None:
        return self.memory.get(key)

    def settle(self) -> None:
        """Move every entry to disk if memory holds more than the limit."""
        if len(self.memory) <= self.limit:
            return
        db, bits = self._open()
        memory = self.memory
        keys = sorted(memory)  # in key order: a new table built by appending alone
        for key in keys:
            a = key & _MASK
            b = (key >> 28) & _MASK
            bits[a >> 3] |= 1 << (a & 7)
            bits[b >> 3] |= 1 << (b & 7)
        run = self._runs
        db.execute("BEGIN")
        db.execute(f"CREATE TABLE run{run} (k INTEGER PRIMARY KEY, v INTEGER NOT NULL)")
        # In slices, as JSON that SQLite takes apart: binding row by row took twice as long.
        for start in range(0, len(keys), _LOOKUP_BATCH):
            pairs = json.dumps([(k, memory[k]) for k in keys[start : start + _LOOKUP_BATCH]])
            db.execute(
                f"INSERT INTO run{run} (k, v) SELECT json_extract(value, '$[0]'), "
                "json_extract(value, '$[1]') FROM json_each(?)",
                (pairs,),
            )
        db.execute("COMMIT")
        self._runs += 1
        self.memory = {}

    def _open(self) -> tuple[sqlite3.Connection, bytearray]:
        if self._db is not None and self._filter is not None:
            return self._db, self._filter
        folder = Path(tempfile.mkdtemp(prefix="clmbot-check-"))  # 0700, new
        path = folder / "spill.db"
        try:
            db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            try:
                for pragma in ("journal_mode=OFF", "synchronous=OFF", "temp_store=FILE"):
                    db.execute(f"PRAGMA {pragma}")
                db.execute(f"PRAGMA cache_size=-{_CACHE_KB}")
            except BaseException:
                db.close()
                raise
        finally:
            path.unlink(missing_ok=True)
            os.rmdir(folder)
        self._db, self._filter = db, bytearray(_FILTER_BITS // 8)
        return db, self._filter

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
        self._db = self._filter = None
        self.memory = {}
