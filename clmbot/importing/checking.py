"""Where the rows of a file are checked: here, or, for a large file, in a second process.

Reading CSV and checking every cell is pure Python and costs about as much as the database's
own work on the rows. A second process does it while this one writes the previous chunk,
which nearly halves a large import on a machine with two cores. (A thread would not: the
drivers hand the GIL back on every row they write, and a busy reader thread then holds it for
a whole switch interval each time.) Small files are checked in-process, where starting a
process would cost more than it saves.

The second process is a fresh, isolated Python (`python -I`: no working directory, no
PYTHONPATH or user site on its path, so a `pickle.py` lying where the import was started is
never run) talking over a pipe: not `multiprocessing`, whose spawned children re-import the
caller's main script (and run it again, if it has no `if __name__ == "__main__"` guard), and
whose forked children inherit whatever locks the caller's other threads hold. A few checked
chunks wait in the checker for the importer to take them, which bounds the memory on both
sides.
"""

from __future__ import annotations

import os
import pickle
import resource
import subprocess
import sys
import tempfile
import threading
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from queue import Queue
from typing import IO, Any

from clmbot.importing import csvstream
from clmbot.importing.base import CheckingStats, ParseContext, Parsed, RowChecker
from clmbot.importing.csvstream import CsvSource, FileProblem

# From this size on, rows are checked in a second process (about 200,000 event rows).
PARALLEL_MIN_BYTES = 8_000_000
# The second process finds clmbot where site-packages has it (an install, or an editable one);
# failing that, in the folder this clmbot came from, searched after the standard library.
_PACKAGE_PARENT = str(Path(__file__).resolve().parents[2])
_BOOT = (
    "import sys\nsys.path.append(sys.argv[1])\nfrom clmbot.importing.checker import main\nmain()\n"
)
_AHEAD = 3  # checked chunks waiting for the importer: bounds the checker's memory


@dataclass
class CheckedChunk:
    rows: int  # data rows in the chunk
    position: int  # bytes of the file read so far, for the progress bar
    parsed: Parsed[Any]


@dataclass
class _Job:
    path: str
    kind: str
    pctx: ParseContext
    chunk_rows: int


@dataclass
class _Done:
    peak_rss_mb: float
    bytes_read: int


@dataclass
class _Failed:
    kind: str  # "file" for a FileProblem, else the exception's type name
    message: str
    details: str


def peak_rss_mb() -> float:
    """This process's own peak resident memory, in MB.

    Not `ru_maxrss` where Linux says better: it survives `exec`, so a process started by a
    large one reports the large one's size (the checker its importer's, an import run from
    a benchmark the benchmark's). `VmHWM` belongs to the program now running.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def checked_chunks(
    source: CsvSource, kind: str, checker: RowChecker, pctx: ParseContext, stats: CheckingStats
) -> Iterator[CheckedChunk]:
    if source.size < PARALLEL_MIN_BYTES or (os.cpu_count() or 1) < 2:
        for chunk in source.chunks():
            yield CheckedChunk(len(chunk), source.position, checker.parse(chunk))
        stats.bytes_read = source.position
        return
    stats.second_process = True
    yield from _checked_elsewhere(source.path, kind, pctx, stats)


def _checked_elsewhere(
    path: Path, kind: str, pctx: ParseContext, stats: CheckingStats
) -> Iterator[CheckedChunk]:
    with tempfile.TemporaryFile() as errors:
        child = subprocess.Popen(
            [sys.executable, "-I", "-c", _BOOT, _PACKAGE_PARENT],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errors,
        )
        assert child.stdin is not None and child.stdout is not None
        try:
            job = _Job(str(path), kind, pctx, csvstream.CHUNK_ROWS)  # read now: tests change it
            pickle.dump(job, child.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            child.stdin.close()
            while True:
                try:
                    item = pickle.load(child.stdout)
                except EOFError:
                    child.wait()
                    errors.seek(0)
                    said = errors.read().decode(errors="replace").strip()
                    raise RuntimeError(
                        f"the process checking {path.name} stopped (exit code "
                        f"{child.returncode}): {said[-2000:]}"
                    ) from None
                if isinstance(item, _Done):
                    stats.checker_peak_rss_mb = item.peak_rss_mb
                    stats.bytes_read = item.bytes_read
                    return
                if isinstance(item, _Failed):
                    if item.kind == "file":
                        raise FileProblem(item.message)
                    raise RuntimeError(
                        f"checking {path.name} failed: {item.message}\n{item.details}"
                    )
                yield item
        finally:
            if child.poll() is None:
                child.kill()
            child.wait()
            child.stdout.close()


def serve(stdin: IO[bytes], stdout: IO[bytes]) -> None:
    """The second process: read the job, check the file, send the chunks, then `_Done`.

    A writer thread feeds the pipe, so checking runs ahead of the importer by a few chunks
    (a pipe buffers only 64 KB: writing directly, checking would wait on every chunk).
    """
    from clmbot.importing.kinds import KINDS  # the importers, only where they are needed

    frames: Queue[bytes | None] = Queue(maxsize=_AHEAD)

    def write() -> None:
        try:
            while (frame := frames.get()) is not None:
                stdout.write(frame)
            stdout.flush()
        except OSError:
            # The importer is gone (killed, or it stopped on an error): so is our reason to
            # run. Exit at once, rather than wait forever for a reader that will not come.
            os._exit(1)

    writer = threading.Thread(target=write, name="clmbot-checker-pipe")
    writer.start()

    def send(item: object) -> None:
        frames.put(pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL))

    job: _Job = pickle.load(stdin)
    try:
        importer = KINDS[job.kind]
        source = CsvSource(
            Path(job.path), importer.known, importer.required, importer.reject_column
        )
        checker = importer.checker(source.header, job.pctx)
        try:
            for chunk in source.chunks(job.chunk_rows):
                send(CheckedChunk(len(chunk), source.position, checker.parse(chunk)))
        finally:
            checker.close()
        read = source.position
        source.close()
        send(_Done(peak_rss_mb(), read))
    except FileProblem as exc:
        send(_Failed("file", str(exc), ""))
    except Exception as exc:  # reported to the importing process, raised there
        send(_Failed(type(exc).__name__, str(exc), traceback.format_exc()))
    finally:
        frames.put(None)
        writer.join()
