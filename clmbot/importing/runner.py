"""One import from start to end: one transaction, so a file is imported whole (minus the rows
it rejects, each written out with its reason) or, with `strict`, not at all; and a crash
half-way leaves nothing half-imported.

Imports into one database take turns: each holds the database's import lock for its whole
transaction (SQLite's write lock, a PostgreSQL advisory lock), so a second import waits for
the first and then sees what it wrote, instead of colliding with it half-way.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from sqlalchemy import Connection, Engine, Table, insert

from clmbot.config import Settings
from clmbot.importing.base import ImportContext, ImportReport
from clmbot.importing.checking import checked_chunks
from clmbot.importing.csvstream import (
    CsvSource,
    FileProblem,
    OutputProblem,
    RejectWriter,
    changed_while_read,
    rejected_path,
)
from clmbot.importing.events import EVENTS
from clmbot.importing.feedback import FEEDBACK
from clmbot.importing.kinds import KINDS
from clmbot.store import planner_stats
from clmbot.store.db import hold_write_lock
from clmbot.store.models import AuditEntry

# Kinds whose inserts are counted as the table's growth (their writes are bulk upserts).
_COUNTED: dict[str, Table] = {"events": EVENTS, "feedback": FEEDBACK}

__all__ = ["KINDS", "FileProblem", "ImportBusy", "ImportReport", "OutputProblem", "import_file"]
AUDIT = AuditEntry.__table__

# Any constant will do: it names "clmbot's imports" among PostgreSQL's advisory locks.
_IMPORT_LOCK = 0x636C6D62  # "clmb"
DEFAULT_WAIT_SECONDS = 600.0


class ImportBusy(RuntimeError):
    """Another import held the database for longer than this one would wait."""


def _audit_row(report: ImportReport, actor: str, now: datetime) -> dict[str, object]:
    """An import in the audit log: what file, and what it did (no customer values)."""
    return {
        "at": now,
        "actor": actor,
        "action": "import",
        "customer_id": None,
        "channel": "cli",
        "detail": {
            "kind": report.kind,
            "file": report.path.name,
            "rows": report.rows,
            "inserted": report.inserted,
            "updated": report.updated,
            "unchanged": report.unchanged,
            "rejected": report.rejected,
        },
    }


def _changed_tables(report: ImportReport) -> dict[str, int]:
    """At most how many rows of each table the import changed (its first stage-history rows,
    a stage move's), for `planner_stats.refresh`."""
    changed = report.inserted + report.updated
    created = report.customers_created
    if report.kind == "customers":
        return {"customers": changed, "stage_history": changed}
    if report.kind == "stages":
        return {"stage_history": changed + created, "customers": changed + created}
    return {report.kind: changed, "customers": created, "stage_history": created}


def _take_import_lock(conn: Connection, wait: float, waiting: Callable[[str], None] | None) -> None:
    """Wait (at most `wait` seconds) for other imports into this database to finish."""
    busy = ImportBusy(
        f"another import into this database is still running after {wait:.0f} s; import "
        "this file again when it has finished"
    )
    said = "another import into this database is running; waiting for it to finish"

    def say() -> None:
        if waiting:
            waiting(said)

    hold_write_lock(conn, _IMPORT_LOCK, wait=wait, busy=busy, waiting=say)


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
    waiting: Callable[[str], None] | None = None,
    wait: float = DEFAULT_WAIT_SECONDS,
    actor: str | None = None,
) -> ImportReport:
    """Import `path` as `kind`. Raises `FileProblem` when the file as a whole is unusable,
    `OutputProblem` when its rejected rows cannot be written, `ImportBusy` when another import
    held the database longer than `wait` seconds: nothing is imported then.

    `progress(done, total)` is called in bytes after every chunk; `waiting(message)` once,
    when the import has to wait for another. With an `actor` (`cli:<login>`), the import is
    written to the audit log.
    """
    started = time.perf_counter()
    importer_cls = KINDS[kind]
    report = ImportReport(kind=kind, path=path)
    out = rejected_path(path)
    if out.is_dir() and not out.is_symlink():
        raise OutputProblem(
            f"{out} is a folder, where this import would write its rejected rows; move it away"
        )
    source = CsvSource(path, importer_cls.known, importer_cls.required, importer_cls.reject_column)
    rejects = RejectWriter(out, source.header.names, importer_cls.reject_column)
    kept = False
    try:
        with _gc_paused(), engine.begin() as conn:
            _take_import_lock(conn, wait, waiting)
            # The upserts say how many rows they inserted (see `Upsert.run`): the table is
            # never counted, so a small file into a large table costs what the file costs.
            table = _COUNTED.get(kind)
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
            try:
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
            finally:
                checker.close()
            importer.finish()
            changed = changed_while_read(path, source.opened, report.checking.bytes_read)
            if changed:
                raise FileProblem(
                    f"{changed}; nothing was imported: import it again once it is complete"
                )
            if strict and report.rejected:
                conn.rollback()
                report.strict_aborted = True
                report.inserted = report.updated = report.unchanged = 0
                report.customers_created = 0
            elif table is not None:
                report.inserted = ctx.inserted or 0
                report.updated = ctx.changed - report.inserted
                report.unchanged = valid - ctx.changed
            if actor and not report.strict_aborted:
                conn.execute(insert(AUDIT), [_audit_row(report, actor, now)])
            # In place before the data is committed: rows that cannot be written back would
            # otherwise be lost from both.
            rejects.close(keep=True)
        kept = True
        if not report.strict_aborted:
            planner_stats.refresh(engine, _changed_tables(report))
    finally:
        source.close()
        # A file refused as a whole, or an import that failed, leaves no rejected rows behind.
        rejects.close(keep=kept)
    if report.rejected:
        report.rejected_path = out
    elif out.is_symlink() or out.is_file():
        try:
            out.unlink()
            report.notes.append(f"removed {out.name}, left by an earlier import of this file")
        except OSError as exc:
            report.notes.append(f"could not remove {out.name}, left by an earlier import ({exc})")
    report.seconds = time.perf_counter() - started
    return report
