"""PostgreSQL's planner statistics, brought up to date after a bulk change.

The planner picks an index or a scan from each table's statistics, which only ANALYZE
writes: autovacuum runs it some time after a large change, or never where it is switched
off. Until then, a table filled by an import plans as if it were empty, or as it was
before. Measured: after a million customers were imported, the next events import looked
its customers up by a sequential scan (100 ms per 5,000 ids, 14.6 s of a 31 s import)
instead of the unique index (18 ms once analyzed). PostgreSQL's own advice for bulk loads
is to ANALYZE afterwards, and so the imports do, as autovacuum would, when a table changed
by more than a tenth.
"""

from __future__ import annotations

import logging

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

log = logging.getLogger(__name__)

# autovacuum's defaults: ANALYZE once 50 rows plus a tenth of the table have changed.
BASE_THRESHOLD = 50
SCALE_FACTOR = 0.1

_ESTIMATES = text(
    "SELECT relname, reltuples FROM pg_class WHERE oid = ANY(CAST(:tables AS regclass[]))"
)


def refresh(engine: Engine, changed: dict[str, int]) -> list[str]:
    """ANALYZE each table that `changed` (table -> rows inserted, updated or deleted) changed
    by more than autovacuum's threshold of what the planner believes it holds; returns them.
    PostgreSQL only: SQLite's planner reads no statistics of ours.

    By the caller's own counts, not the server's: a transaction's counters
    (`pg_stat_get_xact_*`) also hold earlier transactions' changes not yet reported, and
    `n_mod_since_analyze` arrives some time after the commit."""
    wanted = [name for name, rows in changed.items() if rows > BASE_THRESHOLD]
    if engine.dialect.name != "postgresql" or not wanted:
        return []
    with engine.connect() as conn:
        estimated = dict(conn.execute(_ESTIMATES, {"tables": wanted}).all())
    stale = sorted(
        name
        for name in wanted
        if changed[name] > BASE_THRESHOLD + SCALE_FACTOR * max(estimated.get(name, 0), 0)
    )
    analyze(engine, stale)
    return stale


def analyze(engine: Engine, tables: list[str]) -> None:
    """ANALYZE `tables`, one transaction each. It only reads, and locks out neither reads nor
    writes; when it fails, the data is committed all the same, and autovacuum (where it runs)
    catches up later, so the failure is logged, not raised."""
    for name in tables:
        try:
            with engine.begin() as conn:
                table = conn.dialect.identifier_preparer.quote(name)
                conn.exec_driver_sql(f"ANALYZE {table}")  # one of our own tables' names
        except SQLAlchemyError as exc:  # the import itself has succeeded
            log.warning("could not ANALYZE %s after the import: %s", name, type(exc).__name__)
