"""What the risk score reads, as of a date, from data up to that date only: each customer's
purchases, activity, latest answers and stage history, loaded in a few bulk queries into
arrays (a million customers and ten million events are read once, never per customer).

Times travel as integer microseconds since the epoch (`clmbot.risk.rows`), never as Python
datetimes: building ten million of those cost more than the query. `to_days` turns them
into the arrays' unit, bit for bit what `days` gives for the same time.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

import numpy as np
from sqlalchemy import Connection, Engine

from clmbot.risk import kept_events
from clmbot.risk import rows as fetch

DAY = 86_400.0
US_PER_DAY = 86_400_000_000
PURCHASE = "purchase"
T = TypeVar("T")


def days(at: datetime) -> float:
    """A time as days since the epoch (the arrays' unit)."""
    return at.timestamp() / DAY


def seconds(micros: np.ndarray) -> np.ndarray:
    """Microseconds as seconds, bit for bit what `timedelta.total_seconds()` gives: it
    divides the exact count by 10**6, and so does this (both round once, to the nearest
    double). A count beyond 2**53 (285 years: a typo'd year) is no exact double, so those
    few are divided as Python does, by integers."""
    out = micros.astype(np.float64)
    out /= 1e6  # in place: ten million events' times are 80 MB a copy
    far = np.flatnonzero((micros >= 2**53) | (micros <= -(2**53)))
    if len(far):
        out[far] = [m / 1_000_000 for m in micros[far].tolist()]
    return out


def to_days(micros: np.ndarray) -> np.ndarray:
    """`days` of times given in microseconds since the epoch (`timestamp()` is the
    `total_seconds()` of the time since the epoch)."""
    out = seconds(micros)
    out /= DAY
    return out


def micros(at: datetime) -> int:
    delta = at - fetch.EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


@dataclass
class Purchases:
    """Per customer (aligned with `ids`), from purchase events up to a date. A day with
    several orders is one purchase day (as the buy-till-you-die models count them)."""

    ids: np.ndarray  # customer ids that bought at least once
    first: np.ndarray  # days
    last: np.ndarray
    days_bought: np.ndarray  # distinct days with a purchase
    orders: np.ndarray  # every purchase event
    spent: np.ndarray  # sum of values (missing values count 0)


@dataclass
class Stages:
    """Per scored customer (aligned with `Facts.ids`): their stage on `as_of` and since when,
    and the stage their last move came from when it went back (None otherwise)."""

    stage: list[str]
    since: np.ndarray  # microseconds; also when the last move happened
    moved_back_from: list[str | None]


@dataclass(frozen=True)
class Events:
    """The events up to `as_of` as the rhythm models read them (`Facts` has them too): read
    beside the customers and the stage history, and the models learned from them while
    those are still being read."""

    as_of: datetime
    # (customer, time as days, value) of every purchase up to `as_of`, sorted by customer.
    purchase_rows: tuple[np.ndarray, np.ndarray, np.ndarray]
    # The same for every event of any kind (activity), sorted by customer.
    event_rows: tuple[np.ndarray, np.ndarray, np.ndarray]


@dataclass
class Facts:
    as_of: datetime
    # The customers scored on `as_of` (not forgotten, not in a terminal stage), by id.
    ids: np.ndarray
    external_ids: list[str]
    names: list[str]
    stages: Stages
    # (customer, time as days, value) of every purchase up to `as_of`, sorted by customer.
    purchase_rows: tuple[np.ndarray, np.ndarray, np.ndarray]
    # The same for every event of any kind (activity), sorted by customer.
    event_rows: tuple[np.ndarray, np.ndarray, np.ndarray]
    recent_events: np.ndarray  # per scored customer: events in the 30 days before `as_of`
    earlier_events: np.ndarray  # in the 180 days before those
    nps: dict[int, list[tuple[datetime, int]]] = field(default_factory=dict)  # latest first
    csat: dict[int, tuple[datetime, int]] = field(default_factory=dict)  # the latest
    # Completed stays per stage, in days (for "most move on within N days").
    stays: dict[str, list[float]] = field(default_factory=dict)
    # Everyone with a stage history (scored or not), and when it begins, in days.
    first_seen_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    first_seen: np.ndarray = field(default_factory=lambda: np.zeros(0))


def load(
    conn: Connection,
    as_of: datetime,
    *,
    terminal: tuple[str, ...],
    engine: Engine | None = None,
    on_events: Callable[[Events], None] | None = None,
) -> Facts:
    """Everything known before `as_of` (a day's end is the next day's midnight: nothing of
    that next day is read). Customers in a terminal stage then are not scored.

    With `engine`, the reads that need nothing of each other (the stage history, the
    customers, the answers, and the count that checks the kept events) run at once on
    connections of their own (four, beside `conn`'s), while the kept events are read on
    `conn`: each mostly waits on the database or parses outside Python's lock, and one
    after another they were a third of the pass. Without it (a caller inside a transaction
    of its own, whose rows another connection would not see), all are read on `conn`, one
    after another.

    Read apart, once the customers and the stage history are in, the events committed since
    the events were read are read too: an import commits a new customer with their events,
    and one added in between was scored as if they had none. That holds when events commit
    in the order of their ids, as clmbot's imports do (one at a time). A writer outside
    clmbot whose transaction commits after a later one was read (PostgreSQL hands out ids
    when rows are written) can still leave a new customer scored without their events for
    one pass: the next pass's count of the kept events finds the gap and reads them all.

    `on_events` is given the events as soon as they are in, before the rest is waited for:
    what it does with them goes on while the other reads do. It is given them again, with
    the later ones, in the rare pass that found some."""
    with fetch.quiet_gc():
        if engine is None or not _shared(engine):
            return _load(conn, as_of, terminal, _Reads(conn), on_events)
        with ThreadPoolExecutor(4, thread_name_prefix="risk-read") as pool:
            return _load(conn, as_of, terminal, _Reads(conn, (engine, pool)), on_events)


def _shared(engine: Engine) -> bool:
    """Whether every connection of `engine` sees one database: a SQLite database in memory
    is one per connection."""
    database = engine.url.database or ""
    return engine.dialect.name != "sqlite" or not (
        database in ("", ":memory:") or database.startswith("file:")
    )


class _Reads:
    """Reads that need nothing of each other: each started at once on a connection of its
    own when there are an engine and threads for them, else run on the pass's connection
    there and then, in the order they are asked. Apart they see the database a moment
    apart, as one after another on one connection already did (no read of the pass holds a
    snapshot): a customer added between them has no stage history yet and is not scored."""

    def __init__(
        self, conn: Connection, beside: tuple[Engine, ThreadPoolExecutor] | None = None
    ) -> None:
        self.conn, self.beside = conn, beside

    @property
    def apart(self) -> bool:
        """Whether reads run at once, each on a connection of its own."""
        return self.beside is not None

    def submit(self, read: Callable[[Connection], T]) -> Callable[[], T]:
        if self.beside is None:
            found = read(self.conn)
            return lambda: found
        engine, pool = self.beside

        def on_own() -> T:
            with engine.connect() as conn:
                return read(conn)

        return pool.submit(on_own).result


def _load(
    conn: Connection,
    as_of: datetime,
    terminal: tuple[str, ...],
    reads: _Reads,
    on_events: Callable[[Events], None] | None,
) -> Facts:
    as_of_us = micros(as_of)
    # What is made of each read alone is made beside too.
    history_read = reads.submit(lambda c: _stages(*fetch.stage_rows(c, as_of)))
    customers_read = reads.submit(fetch.customers)
    answers_read = reads.submit(lambda c: _answers(fetch.answers(c, as_of)))
    # The events while the others are read, and the models learned from them meanwhile.
    kept = kept_events.events(conn, reads.submit)
    ids, when, events = _event_columns(kept, as_of, as_of_us)
    if on_events is not None:
        on_events(events)
    history = history_read()
    cust_ids, external_ids, names = customers_read()
    # Read after the customers, an event committed since the events were (an import's new
    # customer comes with theirs): none unless an import ran during the pass, and then
    # everything made of them anew. One after another, the order already sees to it.
    later = kept_events.added_since(conn, kept) if reads.apart else None
    del kept
    if later is not None:
        ids, when, events = _event_columns(later, as_of, as_of_us)
        del later
        if on_events is not None:
            on_events(events)
    recent_from = as_of_us - 30 * US_PER_DAY
    earlier_from = as_of_us - 210 * US_PER_DAY
    window = when > earlier_from
    recent = window & (when > recent_from)
    earlier = window & ~recent
    order = np.argsort(cust_ids, kind="stable")
    cust_ids = cust_ids[order]
    at = np.searchsorted(history.ids, cust_ids)
    has = at < len(history.ids)
    has[has] = history.ids[at[has]] == cust_ids[has]
    ended = [i for i, name in enumerate(history.names) if name in terminal]
    live = has.copy()
    live[has] = ~np.isin(history.stage[at[has]], ended)
    keep = order[live]
    scored_at = at[live]
    stage_names: list[str | None] = [*history.names, None]  # a code of -1 is None
    stages = Stages(
        [history.names[c] for c in history.stage[scored_at].tolist()],
        history.since[scored_at],
        [stage_names[c] for c in history.came_from[scored_at].tolist()],
    )
    scored = cust_ids[live]
    if len(keep) != len(external_ids) or (keep[1:] < keep[:-1]).any():  # not all, in order
        external_ids = [external_ids[i] for i in keep.tolist()]
        names = [names[i] for i in keep.tolist()]
    nps, csat = answers_read()
    facts = Facts(
        as_of=as_of,
        ids=scored,
        external_ids=external_ids,
        names=names,
        stages=stages,
        purchase_rows=events.purchase_rows,
        event_rows=events.event_rows,
        recent_events=_count(ids[recent], scored),
        earlier_events=_count(ids[earlier], scored),
        nps=nps,
        csat=csat,
        stays=history.stays,
        first_seen_ids=history.first_ids,
        first_seen=to_days(history.first_us),
    )
    return facts


def _event_columns(
    kept: kept_events.Kept, as_of: datetime, as_of_us: int
) -> tuple[np.ndarray, np.ndarray, Events]:
    """The events before `as_of`: each one's customer and time (microseconds), and all of
    them as the rhythm models read them."""
    ids, when, value, bought = kept.before(as_of_us)
    at_days = to_days(when)
    # An absurd amount (1e308 twice makes inf) must not turn every score into NaN.
    value = np.nan_to_num(value, nan=0.0)  # a copy: the kept events stay as read
    np.clip(value, -1e9, 1e9, out=value)
    value += 0.0  # -0.0 becomes 0.0
    events = Events(as_of, (ids[bought], at_days[bought], value[bought]), (ids, at_days, value))
    return ids, when, events


def _answers(
    found: Iterable[Any],
) -> tuple[dict[int, list[tuple[datetime, int]]], dict[int, tuple[datetime, int]]]:
    """Each customer's two latest NPS answers, latest first, and their latest CSAT, from
    answers by customer, latest first."""
    nps: dict[int, list[tuple[datetime, int]]] = {}
    csat: dict[int, tuple[datetime, int]] = {}
    for cid, kind, at, score in found:
        if kind == "nps":
            seen = nps.setdefault(cid, [])
            if len(seen) < 2:
                seen.append((at, score))
        elif kind == "csat" and cid not in csat:
            csat[cid] = (at, score)
    return nps, csat


def _count(ids: np.ndarray, scored: np.ndarray) -> np.ndarray:
    """How many of `ids` are each of `scored` (sorted)."""
    if len(scored) == 0:
        return np.zeros(0, dtype=np.int64)
    at = np.searchsorted(scored, ids)
    inside = at < len(scored)
    at = at[inside]
    at = at[scored[at] == ids[inside]]
    return np.bincount(at, minlength=len(scored))


def purchases(
    facts: Facts | Events,
    until: float | None = None,
    *,
    activity: bool = False,
    only: np.ndarray | None = None,
) -> Purchases:
    """Per-customer purchase summaries from the rows, up to `until` (days; default all);
    with `activity`, the same of every event of any kind; `only`: these customers."""
    ids, at, value = facts.event_rows if activity else facts.purchase_rows
    # The few customers first (those who never bought, of ten million events): the time
    # is then compared on their rows only.
    if only is not None:
        keep = np.isin(ids, only)
        ids, at, value = ids[keep], at[keep], value[keep]
    if until is not None:
        keep = at <= until
        ids, at, value = ids[keep], at[keep], value[keep]
    if len(ids) == 0:
        empty = np.zeros(0)
        return Purchases(np.zeros(0, dtype=np.int64), empty, empty, empty, empty, empty)
    other = ids[1:] != ids[:-1]
    starts = np.flatnonzero(np.r_[True, other])
    ends = np.r_[starts[1:], len(ids)]
    day = np.floor(at)
    other |= day[1:] != day[:-1]  # another customer, or another day
    new_day = np.r_[True, other]
    return Purchases(
        ids=ids[starts],
        first=at[starts],
        last=at[ends - 1],
        days_bought=np.add.reduceat(new_day, starts, dtype=np.float64),
        orders=(ends - starts).astype(np.float64),
        spent=np.add.reduceat(value, starts),
    )


@dataclass(frozen=True)
class _History:
    """Each customer with a stage history before `as_of`, by id: their stage then and since
    when, the stage a move back came from, every completed stay per stage, and when each
    history begins. Stages as codes into `names`: one list of a million names is made at
    the end, for those scored, rather than one for everyone and another for them."""

    ids: np.ndarray
    stage: np.ndarray  # codes
    came_from: np.ndarray  # codes; -1 when the last move was no known move back
    since: np.ndarray  # microseconds
    names: list[str]
    stays: dict[str, list[float]]
    first_ids: np.ndarray
    first_us: np.ndarray


def _stages(
    cids: np.ndarray, code: np.ndarray, names: list[str], at: np.ndarray, exact: np.ndarray
) -> _History:
    """From the history (sorted by customer, time, id): each customer's stage on `as_of`
    and since when, where their last move came from when it was a known move (an import's
    guess is not a move back), every completed stay per stage, and when each history begins.

    A row naming the stage the customer is already in restates it: it is no move, and the
    stay goes on. So the moves are the first row of each run of equal stages."""
    n = len(cids)
    empty = np.zeros(0, dtype=np.int64)
    if n == 0:
        return _History(empty, empty, empty, empty, names, {}, empty, empty)
    new_customer = np.r_[True, cids[1:] != cids[:-1]]
    move = new_customer | np.r_[True, code[1:] != code[:-1]]
    rows = np.flatnonzero(move)
    first_move = new_customer[rows]
    # A completed stay: from one move to the customer's next one.
    ended = np.flatnonzero(~first_move)
    length = seconds(at[rows[ended]] - at[rows[ended - 1]]) / DAY
    stays: dict[str, list[float]] = defaultdict(list)
    for c, d in zip(code[rows[ended - 1]].tolist(), length.tolist(), strict=True):
        stays[names[c]].append(d)
    # Each customer's last move (their current stage) and the one before it.
    starts = np.flatnonzero(first_move)
    last = np.r_[starts[1:], len(rows)] - 1
    current = rows[last]
    came_back = (~first_move[last]) & (exact[current])
    heads = np.flatnonzero(new_customer)
    return _History(
        cids[current],
        code[current],
        np.where(came_back, code[rows[last - 1]], -1),
        at[current],
        names,
        dict(stays),
        cids[heads],
        at[heads],
    )


def horizon_us(span: timedelta) -> int:
    return (span.days * 86_400 + span.seconds) * 1_000_000 + span.microseconds
