"""Looking up many values at once by a unique key: the imports' existing customers, and the
forgotten among a file's ids.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import ARRAY, Connection, String, any_, bindparam, func, literal_column, select
from sqlalchemy.sql.elements import ColumnElement

# Values in one look-up by `one_of` (one bound value, whatever their number).
LOOKUP_BATCH = 5000


def one_of(column: ColumnElement[str], values: list[str], dialect: str) -> ColumnElement[bool]:
    """`column IN values`, with the whole list as one bound value: a JSON array that SQLite
    takes apart (`json_each`), a PostgreSQL array (`= ANY`).

    `IN (:v1, …, :v500)` has to be rendered again by SQLAlchemy for every batch, which cost
    more than the look-up itself, and binds 500 values. Both forms here search the unique
    index once per value (SQLite: `SEARCH … USING INDEX`, a custom plan on PostgreSQL: see
    `planned_for_values`), and hold any number of values.
    """
    if dialect == "postgresql":
        return column == any_(bindparam("one_of", values, type_=ARRAY(String)))
    listed = select(literal_column("value")).select_from(
        func.json_each(bindparam("one_of", json.dumps(values), type_=String))
    )
    return column.in_(listed.scalar_subquery())


@contextmanager
def planned_for_values(conn: Connection) -> Iterator[None]:
    """On PostgreSQL, the statements run inside are planned for their own values each time,
    never from a plan kept for the statement.

    The driver prepares a statement run five times (psycopg's `prepare_threshold`), and the
    server then keeps a generic plan if it looks no dearer than the custom ones. An import
    runs its look-ups by external id many times in one transaction while the table grows
    from nothing: a generic plan made while the table was small is a sequential scan, kept
    for good, since no ANALYZE can see rows not committed yet (100,000 customers took 119 s,
    nearly all of it in that scan). A custom plan reads the table's current size from its
    pages, so it takes the index as soon as the table is big enough to need it, whether the
    import began with an empty table or a full one; planning one look-up costs well under a
    millisecond. Only around the look-ups: for the whole transaction it made PostgreSQL plan
    the foreign-key check of every inserted row again.

    Nor a sequential scan: the statements inside look values up by a unique key, which an
    index answers in microseconds a value whatever the table's size. A table an import just
    filled has no statistics until it is analyzed (or a table autovacuum never analyzed),
    and planned without them, a look-up of 5,000 ids among a million customers read the
    whole table: 100 ms, against 18 ms by the index, most of a customers import.
    """
    if conn.dialect.name != "postgresql":
        yield
        return
    conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_custom_plan")
    conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
    try:
        yield
    finally:
        conn.exec_driver_sql("SET LOCAL plan_cache_mode = DEFAULT")
        conn.exec_driver_sql("SET LOCAL enable_seqscan = DEFAULT")
