"""Where the rows of a file are checked: here, or, for a large file, in a second process.

Reading CSV and checking every cell is pure Python and costs about as much as the database's
own work on the rows. A second process does it while this one writes the previous chunk,
which nearly halves a large import on a machine with two cores. (A thread would not: the
drivers hand the GIL back on every row they write, and a busy reader thread then holds it for
a whole switch interval each time.) Small files are checked in-process, where starting a
process would cost more than it saves.
"""

from __future__ import annotations

import multiprocessing
import resource
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from queue import Empty
from typing import Any

from clmbot.importing import csvstream
from clmbot.importing.base import CheckingStats, ParseContext, Parsed, RowChecker
from clmbot.importing.csvstream import CsvSource, FileProblem
from clmbot.importing.kinds import KINDS

# From this size on, rows are checked in a second process (about 200,000 event rows).
PARALLEL_MIN_BYTES = 8_000_000
_QUEUE_CHUNKS = 3  # chunks waiting between the processes: bounds the memory


@dataclass
class CheckedChunk:
    rows: int  # data rows in the chunk
    position: int  # bytes of the file read so far, for the progress bar
    parsed: Parsed[Any]


@dataclass
class _ChildDone:
    peak_rss_mb: float


@dataclass
class _ChildFailed:
    kind: str  # "file" for a FileProblem, else the exception's type name
    message: str
    details: str


def checked_chunks(
    source: CsvSource, kind: str, checker: RowChecker, pctx: ParseContext, stats: CheckingStats
) -> Iterator[CheckedChunk]:
    if source.size < PARALLEL_MIN_BYTES or multiprocessing.cpu_count() < 2:
        for chunk in source.chunks():
            yield CheckedChunk(len(chunk), source.position, checker.parse(chunk))
        return
    stats.second_process = True
    yield from _checked_elsewhere(source.path, kind, pctx, stats)


def _checked_elsewhere(
    path: Path, kind: str, pctx: ParseContext, stats: CheckingStats
) -> Iterator[CheckedChunk]:
    # forkserver: children fork from a clean single-threaded server, never from this process
    # (which may hold threads), and start in milliseconds once the server is up.
    mp = multiprocessing.get_context("forkserver")
    mp.set_forkserver_preload([__name__])
    queue = mp.Queue(maxsize=_QUEUE_CHUNKS)
    child = mp.Process(
        target=_check_file,
        args=(str(path), kind, pctx, csvstream.CHUNK_ROWS, queue),  # read now: tests change it
        name="clmbot-import-checker",
        daemon=True,
    )
    child.start()
    try:
        while True:
            try:
                item = queue.get(timeout=1)
            except Empty:
                if not child.is_alive():
                    raise RuntimeError(
                        f"the process checking {path.name} stopped (exit code {child.exitcode})"
                    ) from None
                continue
            if isinstance(item, _ChildDone):
                stats.checker_peak_rss_mb = item.peak_rss_mb
                return
            if isinstance(item, _ChildFailed):
                if item.kind == "file":
                    raise FileProblem(item.message)
                raise RuntimeError(f"checking {path.name} failed: {item.message}\n{item.details}")
            yield item
    finally:
        if child.is_alive():
            child.terminate()
        child.join()
        queue.close()
        queue.join_thread()


def _check_file(path: str, kind: str, pctx: ParseContext, chunk_rows: int, queue: Any) -> None:
    """The second process: read and check the file, hand over the chunks, then None."""
    try:
        importer = KINDS[kind]
        source = CsvSource(Path(path), importer.known, importer.required)
        checker = importer.checker(source.header, pctx)
        for chunk in source.chunks(chunk_rows):
            queue.put(CheckedChunk(len(chunk), source.position, checker.parse(chunk)))
        source.close()
        queue.put(_ChildDone(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))
    except FileProblem as exc:
        queue.put(_ChildFailed("file", str(exc), ""))
    except BaseException as exc:  # reported to the importing process, raised there
        queue.put(_ChildFailed(type(exc).__name__, str(exc), traceback.format_exc()))
