"""A day's risk pass, stored: claimed by its day (whichever copy of the bot inserts the day
first runs it), every customer's score written in bulk; `clmbot.risk.stored` reads it back
for `/clm at-risk` and segments (`risk>70`).

A pass that died (started, never finished, over an hour ago) may be claimed again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import chain, repeat

import numpy as np
from sqlalchemy import Connection, Engine, delete, update
from sqlalchemy.dialects import postgresql, sqlite

from clmbot.config import Settings
from clmbot.risk.score import CustomerRisk, Scores, score
from clmbot.store import versions
from clmbot.store.models import RiskRun, RiskScore

STALE = timedelta(hours=1)
_BLOCK = 50_000  # rows per COPY block
_SQLITE_ROWS = 100  # rows per INSERT on SQLite
_R = RiskRun.__table__
_S = RiskScore.__table__


@dataclass(frozen=True)
class RunOutcome:
    run_id: int
    day: date
    as_of: datetime
    scored: int
    at_risk: int  # at or above the threshold
    top: list[CustomerRisk]  # the highest, for a summary


def claim(engine: Engine, day: date, *, as_of: datetime, now: datetime, by: str) -> int | None:
    """The run's id when this caller may run `day`; None when another has it (or did)."""
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    with engine.begin() as conn:
        inserted = conn.execute(
            dialect.insert(_R)
            .values(day=day, as_of=as_of, by=by, started_at=now, scored=0, at_risk=0)
            .on_conflict_do_nothing(index_elements=["day"])
            .returning(_R.c.id)
        ).scalar()
        if inserted is not None:
            return int(inserted)
        taken = conn.execute(
            update(_R)
            .where(
                _R.c.day == day,
                _R.c.finished_at.is_(None),
                _R.c.started_at < now - STALE,
            )
            .values(as_of=as_of, by=by, started_at=now, error=None)
            .returning(_R.c.id)
        ).scalar()
    return None if taken is None else int(taken)


def run(
    engine: Engine, day: date, *, as_of: datetime, now: datetime, settings: Settings, by: str
) -> RunOutcome | None:
    """Score everyone as of `as_of` and store it as `day`'s run; None when `day` is taken."""
    run_id = claim(engine, day, as_of=as_of, now=now, by=by)
    if run_id is None:
        return None
    try:
        with engine.connect() as conn:
            scored = score(
                conn, as_of, config=settings.risk, lifecycle=settings.lifecycle, engine=engine
            )
        at_risk = scored.at_or_above(settings.risk.threshold)
        with engine.begin() as conn:
            store(conn, run_id, scored)
            conn.execute(
                update(_R)
                .where(_R.c.id == run_id)
                .values(finished_at=now, scored=len(scored), at_risk=at_risk)
            )
    except Exception as exc:
        with engine.begin() as conn:
            conn.execute(update(_R).where(_R.c.id == run_id).values(error=type(exc).__name__[:200]))
        raise
    return RunOutcome(run_id, day, as_of, len(scored), at_risk, scored.rows(0, 10))


def _plain_json(texts: tuple[str, ...]) -> str:
    """`json.dumps(list(texts))`, joined by hand when no text needs escaping (printable
    ASCII without quotes or backslashes: nearly every reason). A million runs of the
    encoder took a quarter of a second more than the rest of writing the rows."""
    if all(t.isascii() and t.isprintable() and '"' not in t and "\\" not in t for t in texts):
        return '["' + '", "'.join(texts) + '"]' if texts else "[]"
    return json.dumps(list(texts))


def store(conn: Connection, run_id: int, scored: Scores) -> None:
    """The run's rows, replacing whatever a stale claim of the same run left. Straight to
    the driver (COPY on PostgreSQL): a million rows through SQLAlchemy's executemany took
    longer than scoring them. The same reasons recur ("no purchase for 90 days, …"), so
    each is made into JSON once."""
    conn.execute(delete(_S).where(_S.c.run_id == run_id))
    pg = conn.dialect.name == "postgresql"
    texts: dict[tuple[str, ...], str] = {}

    def as_json(reasons: tuple[str, ...]) -> str:
        text = _plain_json(reasons)
        # In COPY's text format a backslash is the escape; JSON leaves no tab or newline.
        return text.replace("\\", "\\\\") if pg else text

    # In customer order (as `Scores` holds them), not by risk: each row then lands beside
    # the one before in both of the table's indexes, where in risk order every one is a
    # jump (a million rows took 7.2 s that way on SQLite, 1.8 s this way).
    ids, risks, listed = scored.ids, scored.risk, scored.reasons
    by_id = np.array(ids, dtype=np.int64)
    if len(by_id) > 1 and not (by_id[1:] > by_id[:-1]).all():
        order = np.argsort(by_id, kind="stable").tolist()
        ids, risks, listed = ([c[i] for i in order] for c in (ids, risks, listed))
    if pg:
        versions.touch(conn, "risk_scores")  # COPY goes unseen by SQLAlchemy
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        head = f"{run_id}\t"
        with cursor.copy(
            "COPY risk_scores (run_id, customer_id, risk, reasons) FROM STDIN"
        ) as copy:
            # Block by block, each made while the server takes in the one before: it takes
            # in a million rows in about a second, as long as making them all first took.
            for start in range(0, len(ids), _BLOCK):
                stop = start + _BLOCK
                said = [texts.get(r) or texts.setdefault(r, as_json(r)) for r in listed[start:stop]]
                rows = zip(ids[start:stop], risks[start:stop], said, strict=True)
                copy.write("".join([f"{head}{c}\t{risk}\t{t}\n" for c, risk, t in rows]).encode())
        cursor.close()
        return
    reasons = [texts.get(r) or texts.setdefault(r, as_json(r)) for r in listed]
    # On SQLite a hundred rows a statement: a statement a row spent as long stepping the
    # statement and binding its parameters one row at a time as inserting the rows (a
    # million rows took 1.7 s that way, 0.9 s this way). 400 parameters a statement stay
    # under the 999 older SQLite allows.
    insert = "INSERT INTO risk_scores (run_id, customer_id, risk, reasons) VALUES "
    values = list(chain.from_iterable(zip(repeat(run_id), ids, risks, reasons)))
    whole = len(ids) - len(ids) % _SQLITE_ROWS
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    if whole:
        many = insert + ", ".join(["(?, ?, ?, ?)"] * _SQLITE_ROWS)
        step = 4 * _SQLITE_ROWS
        cursor.executemany(many, (values[i : i + step] for i in range(0, 4 * whole, step)))
    if whole < len(ids):
        rest = len(ids) - whole
        cursor.execute(insert + ", ".join(["(?, ?, ?, ?)"] * rest), values[4 * whole :])
    cursor.close()
