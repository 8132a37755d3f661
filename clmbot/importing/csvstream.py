"""Reading an import file a chunk at a time, and writing the rows it could not take.

The file is never read whole: rows come in chunks, so a million-row export costs the memory
of one chunk. Bytes that are not UTF-8 are carried through (`surrogateescape`) so that the
row they sit in can be rejected by line number and written back byte for byte into the
rejected file, rather than stopping the whole import at the first bad byte.
"""

from __future__ import annotations

import csv
import io
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from clmbot.files import PrivateFile, neutralise, restore

CHUNK_ROWS = 20_000
# The column a rejected file adds; ignored on import so a corrected rejected file imports as
# it is. A kind of file with a `reason` of its own (stages.csv) uses `rejected_reason`.
REASON_COLUMN = "reason"
HEADER_NAMES_SHOWN = 12
# A cell longer than this is a rejected row (no column holds that much); the reader itself
# takes up to READ_LIMIT, beyond which a cell is taken for a quote never closed, and the file
# is refused: carrying on after it would read the rest of the file from the middle of a row.
MAX_CELL = 131_072
READ_LIMIT = 16 * 1024 * 1024
csv.field_size_limit(READ_LIMIT)


class FileProblem(ValueError):
    """The file as a whole cannot be imported (empty, no header, missing columns, not CSV)."""


class OutputProblem(OSError):
    """What the import writes (the rejected rows) cannot be written where it goes."""


# (line number, cells): a plain tuple, since a million of them are made per import.
Row = tuple[int, list[str]]


@dataclass(frozen=True)
class FileState:
    """What a file looked like when it was opened; a different look at the end means it was
    changed while it was read, and the import must not stand."""

    size: int
    mtime_ns: int
    inode: int
    device: int

    @classmethod
    def of(cls, info: os.stat_result) -> FileState:
        return cls(info.st_size, info.st_mtime_ns, info.st_ino, info.st_dev)


def changed_while_read(path: Path, opened: FileState, bytes_read: int) -> str | None:
    """Why `path` is not the file that was read, or None when it is."""
    try:
        now = FileState.of(path.stat())
    except OSError:
        return f"{path} was removed while it was read"
    if (now.inode, now.device) != (opened.inode, opened.device):
        return f"{path} was replaced by another file while it was read"
    if now.size > opened.size or bytes_read > opened.size:
        return f"{path} grew while it was read (something is still writing it)"
    if now.size < opened.size or bytes_read < opened.size:
        return f"{path} was cut short while it was read"
    if now.mtime_ns != opened.mtime_ns:
        return f"{path} was changed while it was read"
    return None


def list_names(names: list[str]) -> str:
    """A header's names for a message, however many there are."""
    shown = ", ".join(n[:40] for n in names[:HEADER_NAMES_SHOWN])
    more = len(names) - HEADER_NAMES_SHOWN
    return shown + (f" and {more:,} more" if more > 0 else "")


@dataclass(frozen=True)
class Header:
    names: list[str]
    index: dict[str, int]  # lower-cased known name -> position
    extras: list[tuple[str, int]]  # extra columns, as named in the file

    def get(self, fields: list[str], name: str) -> str:
        """The trimmed cell of `name`, or "" when the column is absent."""
        pos = self.index.get(name)
        return fields[pos].strip() if pos is not None else ""

    def has(self, name: str) -> bool:
        return name in self.index


def rejected_path(path: Path) -> Path:
    """customers.csv -> customers.rejected.csv, next to the original."""
    stem = path.name[: -len(".csv")] if path.name.lower().endswith(".csv") else path.name
    return path.with_name(stem + ".rejected.csv")


def has_nul(fields: list[str]) -> str | None:
    """The column of the first cell holding a NUL byte, described: no database stores one."""
    for pos, cell in enumerate(fields):
        if "\x00" in cell:
            return f"column {pos + 1} holds a NUL byte (\\0); remove it and import the row again"
    return None


def not_utf8(fields: list[str]) -> str | None:
    """The column index and bytes of the first cell that was not valid UTF-8, described."""
    if "".join(fields).isascii():
        return None
    for pos, cell in enumerate(fields):
        if not cell.isascii():
            try:
                cell.encode("utf-8")
            except UnicodeEncodeError as exc:
                raw = cell[exc.start : exc.end].encode("utf-8", "surrogateescape")
                return f"column {pos + 1} has bytes that are not UTF-8 ({raw.hex(' ')})"
    return None


class CsvSource:
    """An open import file: its header, then its data rows in chunks."""

    def __init__(
        self, path: Path, known: set[str], required: set[str], reject_column: str = REASON_COLUMN
    ) -> None:
        self.path = path
        self.reject_column = reject_column
        self._binary: IO[bytes] = _open_regular(path)
        self.opened = FileState.of(os.fstat(self._binary.fileno()))
        self.size = self.opened.size
        if self.size == 0:
            self.close()
            raise FileProblem(
                f"{path} is empty; it needs a header row: {', '.join(sorted(required))}, ..."
            )
        self._text = io.TextIOWrapper(
            self._binary, encoding="utf-8-sig", errors="surrogateescape", newline=""
        )
        self._reader = csv.reader(self._text, strict=True)
        self.header = self._read_header(known, required)

    def _read_header(self, known: set[str], required: set[str]) -> Header:
        try:
            names = next(self._reader, None)
        except csv.Error as exc:
            raise FileProblem(f"{self.path}: the header row is not valid CSV ({exc})") from None
        if not names or not any(n.strip() for n in names):
            raise FileProblem(
                f"{self.path} has no header row; the first line must name the columns, "
                f"starting with {', '.join(sorted(required))}"
            )
        names = [n.strip() for n in names]
        bad = not_utf8(names) or has_nul(names)
        if bad:
            raise FileProblem(f"{self.path}: the header row {bad}; save the file as UTF-8")
        names = [restore(n) for n in names]
        index: dict[str, int] = {}
        extras: list[tuple[str, int]] = []
        seen: set[str] = set()
        for pos, name in enumerate(names):
            key = name.lower()
            if not name:
                raise FileProblem(f"{self.path}: column {pos + 1} of the header has no name")
            if key in seen:
                raise FileProblem(f"{self.path}: the header names column {name[:40]!r} twice")
            seen.add(key)
            if key in known:
                index[key] = pos
            elif key != self.reject_column:
                extras.append((name, pos))
        missing = sorted(required - index.keys())
        if missing:
            raise FileProblem(
                f"{self.path}: required column{'s' if len(missing) > 1 else ''} "
                f"{', '.join(missing)} missing from the header; the header has "
                f"{list_names(names)}"
            )
        return Header(names=names, index=index, extras=extras)

    @property
    def position(self) -> int:
        """Bytes consumed so far (to the read-ahead buffer): good enough for a progress bar."""
        return self._binary.tell()

    def chunks(self, size: int | None = None) -> Iterator[list[Row]]:
        """Data rows, a chunk at a time, each with the line it starts on."""
        size = size or CHUNK_ROWS
        chunk: list[Row] = []
        reader = self._reader
        ended = reader.line_num  # the line the previous record ended on
        try:
            for fields in reader:
                start, ended = ended + 1, reader.line_num
                if not fields or (len(fields) == 1 and not fields[0].strip()):
                    continue  # blank line: not data
                chunk.append((start, fields))
                if len(chunk) >= size:
                    yield chunk
                    chunk = []
        except csv.Error as exc:
            if "field larger than field limit" in str(exc):
                raise FileProblem(
                    f"{self.path}, line {ended + 1}: a cell runs on for more than "
                    f"{READ_LIMIT:,} characters: a quote that is never closed? nothing was "
                    "imported"
                ) from None
            if "unexpected end of data" in str(exc):
                raise FileProblem(
                    f"{self.path}, line {ended + 1}: a quoted cell that starts in this row is "
                    "never closed (the file ends inside it); nothing was imported"
                ) from None
            raise FileProblem(
                f"{self.path}, line {reader.line_num}: not valid CSV ({exc}); nothing was imported"
            ) from None
        if chunk:
            yield chunk

    def changed(self) -> str | None:
        """Why the file is not the one opened, once it has been read to its end."""
        return changed_while_read(self.path, self.opened, self.position)

    def close(self) -> None:
        self._binary.close()


class RejectWriter:
    """`FILE.rejected.csv`: the original columns plus the reason, opened on the first reject.

    Private, and written under another name until `close(keep=True)` puts it in place, so it
    never follows a link planted at its path. Cells a spreadsheet would run as a formula are
    neutralised (and restored when the file is imported again).
    """

    def __init__(self, path: Path, header: list[str], reason_column: str = REASON_COLUMN) -> None:
        self.path = path
        self.reason_column = reason_column
        self._header = [h for h in header if h.lower() != reason_column]
        self._reason_pos = next(
            (i for i, h in enumerate(header) if h.lower() == reason_column), None
        )
        self._out: PrivateFile | None = None
        self._writer: Callable[[list[str]], object] | None = None
        self.count = 0

    def write(self, row: Row, reason: str) -> None:
        if self._writer is None:
            try:
                self._out = PrivateFile(self.path)
            except OSError as exc:
                raise OutputProblem(
                    f"cannot write the rejected rows to {self.path} ({exc.strerror}); copy the "
                    "file to a folder you may write to, and import it from there"
                ) from None
            writer = csv.writer(self._out.file)
            writer.writerow([neutralise(h) for h in [*self._header, self.reason_column]])
            self._writer = writer.writerow
        line, fields = row
        if self._reason_pos is not None and len(fields) > self._reason_pos:
            fields = fields[: self._reason_pos] + fields[self._reason_pos + 1 :]
        # The reason always lands in the reason column: a short row is padded, and the cells
        # of a long row beyond the header follow the reason, so none is lost.
        width = len(self._header)
        cells = [neutralise(c) for c in fields[:width]] + [""] * (width - len(fields))
        extra = [neutralise(c) for c in fields[width:]]
        self._writer([*cells, f"line {line}: {reason}", *extra])
        self.count += 1

    def close(self, *, keep: bool = True) -> None:
        """Put the file in place (`keep`), or throw it away."""
        if self._out is not None:
            out, self._out = self._out, None
            if not keep:
                out.discard()
                return
            try:
                out.commit()
            except OSError as exc:
                out.discard()
                raise OutputProblem(
                    f"cannot put the rejected rows at {self.path} ({exc.strerror}); nothing "
                    "was imported"
                ) from None


def _open_regular(path: Path) -> IO[bytes]:
    """Open `path` for reading if it is a regular file. A FIFO or a device would block or
    never end; opening without blocking and checking what was opened refuses them at once."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise FileProblem(f"{path}: cannot be read ({exc.strerror})") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        what = "a directory" if stat.S_ISDIR(mode) else "not a regular file (a pipe or a device?)"
        raise FileProblem(f"{path} is {what}; save the data to a file and import that")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")
