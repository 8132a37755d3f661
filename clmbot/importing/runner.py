"""One import from start to end: one transaction, so a file is imported whole (minus the rows
it rejects, each written out with its reason) or, with `strict`, not at all; and a crash
half-way leaves nothing half-imported."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine, Table

from clmbot.config import Settings
from clmbot.importing.base import ImportContext, ImportReport
from clmbot.importing.bulk import count_rows
from clmbot.importing.checking import checked_chunks
from clmbot.importing.csvstream import CsvSource, FileProblem, RejectWriter, rejected_path
from clmbot.importing.events import EVENTS
from clmbot.importing.feedback import FEEDBACK
from clmbot.importing.kinds import KINDS

# Kinds whose inserts are counted as the table's growth (their writes are bulk upserts).
_COUNTED: dict[str, Table] = {"events": EVENTS, "feedback": FEEDBACK}

__all__ = ["KINDS", "FileProblem", "ImportReport", "import_file"]


@contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while rows stream through.

    An import allocates millions of short-lived tuples and lists and makes no reference
    cycles, yet each burst of allocations sets off a collection that walks every live
    object: measured, a third of the whole import's time. Reference counting still frees
    every chunk as soon as it is written.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def import_file(
    engine: Engine,
    kind: str,
    path: Path,
    settings: Settings,
    *,
    now: datetime,
    strict: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Import `path` as `kind`. Raises `FileProblem` when the file as a whole is unusable.

    `progress(done, total)` is called in bytes after every chunk.
    """
    started = time.perf_counter()
    importer_cls = KINDS[kind]
    report = ImportReport(kind=kind, path=path)
    out = rejected_path(path)
    source = CsvSource(path, importer_cls.known, importer_cls.required)
    rejects = RejectWriter(out, source.header.names)
    try:
        with _gc_paused(), engine.begin() as conn:
            table = _COUNTED.get(kind)
            # SQLite's driver cannot say inserted from updated; its single writer makes the
            # table's growth exact. PostgreSQL's upserts say it themselves.
            counted = table is not None and conn.dialect.name == "sqlite"
            before = count_rows(conn, table) if counted else 0
            ctx = ImportContext(
                conn=conn,
                now=now,
                zone=settings.timezone,
                lifecycle=settings.lifecycle,
                source_name=path.name,
                rejects=rejects,
                report=report,
                strict=strict,
            )
            importer = importer_cls(ctx, source.header)
            pctx = ctx.parse_context()
            checker = importer_cls.checker(source.header, pctx)
            valid = 0
            for checked in checked_chunks(source, kind, checker, pctx, report.checking):
                parsed = checked.parsed
                for row, reason in parsed.rejects:
                    ctx.reject(row, reason)
                report.rows += checked.rows
                rejected_before = report.rejected
                if parsed.items:
                    importer.write(parsed.items)
                valid += len(parsed.items) - (report.rejected - rejected_before)
                if progress:
                    progress(checked.position, source.size)
            importer.finish()
            if strict and report.rejected:
                conn.rollback()
                report.strict_aborted = True
                report.inserted = report.updated = report.unchanged = 0
                report.customers_created = 0
            elif table is not None:
                grown = count_rows(conn, table) - before if counted else None
                report.inserted = ctx.inserted if ctx.inserted is not None else (grown or 0)
                report.updated = ctx.changed - report.inserted
                report.unchanged = valid - ctx.changed
    except FileProblem:
        rejects.close()
        out.unlink(missing_ok=True)  # rows of a file that was not imported at all
        raise
    finally:
        source.close()
        rejects.close()
    if report.rejected:
        report.rejected_path = out
    elif out.exists():
        out.unlink()
        report.notes.append(f"removed {out.name}, left by an earlier import of this file")
    report.seconds = time.perf_counter() - started
    return report
