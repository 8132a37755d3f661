"""Reading an import file a chunk at a time, and writing the rows it could not take.

The file is never read whole: rows come in chunks, so a million-row export costs the memory
of one chunk. Bytes that are not UTF-8 are carried through (`surrogateescape`) so that the
row they sit in can be rejected by line number and written back byte for byte into the
rejected file, rather than stopping the whole import at the first bad byte.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

CHUNK_ROWS = 20_000
# Columns a rejected file adds; ignored on import so a corrected rejected file imports as is.
REASON_COLUMN = "reason"


class FileProblem(ValueError):
    """The file as a whole cannot be imported (empty, no header, missing columns, not CSV)."""


# (line number, cells): a plain tuple, since a million of them are made per import.
Row = tuple[int, list[str]]


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

    def __init__(self, path: Path, known: set[str], required: set[str]) -> None:
        self.path = path
        try:
            self.size = path.stat().st_size
            self._binary: IO[bytes] = path.open("rb")
        except OSError as exc:
            raise FileProblem(f"{path}: cannot be read ({exc.strerror})") from None
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
        bad = not_utf8(names)
        if bad:
            raise FileProblem(f"{self.path}: the header row {bad}; save the file as UTF-8")
        index: dict[str, int] = {}
        extras: list[tuple[str, int]] = []
        seen: set[str] = set()
        for pos, name in enumerate(names):
            key = name.lower()
            if not name:
                raise FileProblem(f"{self.path}: column {pos + 1} of the header has no name")
            if key in seen:
                raise FileProblem(f"{self.path}: the header names column {name!r} twice")
            seen.add(key)
            if key in known:
                index[key] = pos
            elif key != REASON_COLUMN:
                extras.append((name, pos))
        missing = sorted(required - index.keys())
        if missing:
            raise FileProblem(
                f"{self.path}: required column{'s' if len(missing) > 1 else ''} "
                f"{', '.join(missing)} missing from the header; the header has "
                f"{', '.join(names)}"
            )
        return Header(names=names, index=index, extras=extras)

    @property
    def position(self) -> int:
        """Bytes consumed so far (to the read-ahead buffer): good enough for a progress bar."""
        return self._binary.tell()

    def chunks(self, size: int | None = None) -> Iterator[list[Row]]:
        size = size or CHUNK_ROWS
        chunk: list[Row] = []
        reader = self._reader
        try:
            for fields in reader:
                if not fields or (len(fields) == 1 and not fields[0].strip()):
                    continue  # blank line: not data
                chunk.append((reader.line_num, fields))
                if len(chunk) >= size:
                    yield chunk
                    chunk = []
        except csv.Error as exc:
            raise FileProblem(
                f"{self.path}, line {reader.line_num}: not valid CSV ({exc}); nothing was imported"
            ) from None
        if chunk:
            yield chunk

    def close(self) -> None:
        self._binary.close()


class RejectWriter:
    """`FILE.rejected.csv`: the original columns plus `reason`, opened on the first reject."""

    def __init__(self, path: Path, header: list[str]) -> None:
        self.path = path
        self._header = [h for h in header if h.lower() != REASON_COLUMN]
        self._reason_pos = next(
            (i for i, h in enumerate(header) if h.lower() == REASON_COLUMN), None
        )
        self._file: IO[str] | None = None
        self._writer: Callable[[list[str]], object] | None = None
        self.count = 0

    def write(self, row: Row, reason: str) -> None:
        if self._writer is None:
            self._file = self.path.open("w", encoding="utf-8", errors="surrogateescape", newline="")
            writer = csv.writer(self._file)
            writer.writerow([*self._header, REASON_COLUMN])
            self._writer = writer.writerow
        line, fields = row
        if self._reason_pos is not None and len(fields) > self._reason_pos:
            fields = fields[: self._reason_pos] + fields[self._reason_pos + 1 :]
        # The reason always lands in the reason column: a short row is padded, and the cells
        # of a long row beyond the header follow the reason, so none is lost.
        width = len(self._header)
        cells = fields[:width] + [""] * (width - len(fields))
        self._writer([*cells, f"line {line}: {reason}", *fields[width:]])
        self.count += 1

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
