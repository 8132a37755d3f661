"""Team-wide reports kept in memory while the tables they read are unchanged.

The funnel, NPS and CSAT, a segment's count and the at-risk list read whole tables: at a
million customers the funnel takes seconds, and a team asks the same question many times
a day (the Home tab asks it on every opening). Each report is kept under its arguments and
the versions of the tables it reads (`clmbot.store.versions`, counted in the database, so a
change made through another copy of the bot is seen too), and given again while

- every table it reads has the same version: nothing that could change it was committed;
- its period is the same to the minute (`REUSE`): a period that ends "now" moves on, and
  a report worked out a minute ago for the last 90 days is the same report, shown by day.
  A call for an earlier `now` (a backtest) is never given a later report. A report that
  can tell cheaply that nothing happened between two periods (`carry`: the funnel, when no
  stage move lies between their edges) is carried over to the new one instead, exactly;
- it was worked out less than `KEEP_FOR` ago, by the clock: a copy of the bot still on a
  release before the counts, writing uncounted, can hide a change that long at most.

A report that took long (`SLOW` or more) and says when it was counted (a `counted_at`
field: the funnel) is also given after a change, marked with that time, until
`REFRESH_FACTOR` times as long as it took has passed: at a million customers the funnel
takes seconds, and a team moving customers every few seconds would otherwise have it
worked out without end, starving every other command of the process. Once that is past,
whoever asks first still gets the marked one at once, while a thread of its own (at the
lowest CPU priority) works the report out afresh for the asks after it: nobody waits
seconds for a funnel because someone moved a customer.

Only one thread works a report out at a time: others asking for it meanwhile wait for that
answer rather than each reading the whole table again, which under a burst of commands
would take every connection and every core. When the report had been kept before a change
(same period, any versions, within `KEEP_FOR`), they are given that one at once instead: a
burst that also writes (stage moves) would otherwise keep every worker thread waiting for
a report that is out of date again by the time it is done. And while a report is asked
often (`BUSY_ASKS` within `BUSY_WINDOW`: five times in 3 s) and what it reads keeps changing,
the last one worked out is given until `BUSY_FACTOR` times as long as it took has passed,
`BUSY_STALE` at most: worked out after every change instead, each such report took a core
(bench_load: a stage move every 125 ms, a segment asked every 150 ms). The factor bounds
what each such report costs to a thirtieth of a thread, in each copy of the bot; a tenth was
too much on PostgreSQL, where every copy works out the same reports: at 200 commands a
second, ten reports under a burst in each of two copies kept the database busy 57 s of 60
(segments 40 s of it), and answers waited seconds. The window is 3 s rather than 1: asked
three times a second in all, by two copies, each copy saw a segment about every 300 ms and
took half of those asks for no burst (three in 1 s), working the segment out afresh. Five
asks rather than three: a person alone who moves a customer and asks again each second
asks three times in 3 s, and must see their own change. A person who changes
something and then asks, with nobody else asking, gets the report worked out afresh, unless
it is a slow one (above), and then the answer says when it was counted.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import threading
import time
import weakref
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Column, ColumnElement, Connection, Engine, Table, TextClause
from sqlalchemy.sql import visitors
from sqlmodel import Session

from clmbot import turns
from clmbot.store import versions

T = TypeVar("T")

REUSE = timedelta(minutes=1)
REUSE_SECONDS = REUSE.total_seconds()
KEEP_FOR = 600.0  # seconds
SLOW = 1.0  # seconds: a report that took this long may be given marked after a change
REFRESH_FACTOR = 10  # ... until ten times as long as it took has passed
KEPT = 256  # reports per database; the one used longest ago goes first
WAIT_SECONDS = 60.0  # for another thread's answer, before working it out anyway
BUSY_ASKS = 5  # asks of one report ...
BUSY_WINDOW = 3.0  # ... within this many seconds, each finding it out of date: a burst
BUSY_FACTOR = 30  # under a burst, a changed report is given until 30 times its time passed
BUSY_STALE = 5.0  # seconds: ... and for this long at most

ALL_TABLES: tuple[str, ...] = versions.TRACKED

log = logging.getLogger(__name__)

# `carry(value, since, now)`: a value kept for [since, now] as it stands for the period now
# asked (which `carry` closes over), or None when something happened between the two.
Carry = Callable[[Any, datetime | None, datetime], Any]


@dataclass(frozen=True)
class _Entry:
    versions: tuple[int, ...]
    since: datetime | None
    now: datetime | None
    value: Any
    made: float  # time.monotonic()
    took: float = 0.0  # seconds to work it out

    def dated(self) -> bool:
        """Whether this can say when it was counted (a `counted_at` field: the funnel)."""
        return self.now is not None and hasattr(self.value, "counted_at")

    def slow_and_dated(self) -> bool:
        """Whether this took long to work out and can say when it was counted: one such may
        be given after a change, marked (see the module's docstring)."""
        return self.took >= SLOW and self.dated()

    def marked(self) -> Any:
        """The value, saying when it was counted if it can (a `counted_at` field): given
        after a change, it is not the count as of the asked `now`."""
        if dataclasses.is_dataclass(self.value) and hasattr(self.value, "counted_at"):
            return dataclasses.replace(self.value, counted_at=self.now)  # type: ignore[type-var]
        return self.value

    def fresh(self, found: tuple[int, ...]) -> bool:
        return found == self.versions and time.monotonic() - self.made <= KEEP_FOR

    def serves(self, found: tuple[int, ...], since: datetime | None, now: datetime | None) -> bool:
        return self.fresh(found) and self.same_period(since, now)

    def same_period(self, since: datetime | None, now: datetime | None) -> bool:
        return _close(self.since, since, later=False) and _close(self.now, now, later=True)


def _close(kept: datetime | None, asked: datetime | None, *, later: bool) -> bool:
    """Whether a report kept for `kept` serves one asked for `asked`: within `REUSE`, and
    for the end of a period never earlier (`later`)."""
    if kept is None or asked is None:
        return kept is None and asked is None
    if later:
        return kept <= asked <= kept + REUSE
    return abs(asked - kept) <= REUSE


class _Kept:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.entries: OrderedDict[Hashable, list[_Entry]] = OrderedDict()
        self.working: dict[Hashable, threading.Event] = {}
        self.asked: dict[Hashable, deque[float]] = {}  # the last `BUSY_ASKS` asks' times

    def busy(self, key: Hashable) -> bool:
        """Whether `key` is asked in a burst while what it reads keeps changing: this ask
        is the `BUSY_ASKS`th within `BUSY_WINDOW` to find the kept one out of date (called
        on those only). Only then is a report from before a change given unmarked."""
        at = time.monotonic()
        asks = self.asked.setdefault(key, deque(maxlen=BUSY_ASKS))
        asks.append(at)
        if len(self.asked) > 4 * KEPT:
            self.asked = {key: asks}
        return len(asks) == BUSY_ASKS and at - asks[0] <= BUSY_WINDOW

    def recent_enough(self, key: Hashable, since: datetime | None, now: datetime | None) -> Any:
        """Under a burst, the report kept before a change, while it is fresh enough: until
        `BUSY_FACTOR` times as long as it took has passed, `BUSY_STALE` at most."""
        entry = self.stale(key, since, now)
        if entry is None:
            return None
        if time.monotonic() - entry.made >= min(BUSY_FACTOR * entry.took, BUSY_STALE):
            return None
        return entry

    def find(
        self,
        key: Hashable,
        found: tuple[int, ...],
        since: datetime | None,
        now: datetime | None,
    ) -> _Entry | None:
        for entry in self.entries.get(key, ()):
            if entry.serves(found, since, now):
                self.entries.move_to_end(key)
                return entry
        return None

    def _last(self, key: Hashable, usable: Callable[[_Entry], bool]) -> _Entry | None:
        """The last kept for `key` (entries are in the order they were made) that is
        `usable`."""
        return next((e for e in reversed(self.entries.get(key, ())) if usable(e)), None)

    def before_the_change(
        self, key: Hashable, since: datetime | None, now: datetime | None
    ) -> _Entry | None:
        """The last kept for `key` and this period at any versions, if recent: what to give
        while another thread works out the changed one."""
        return self._last(
            key, lambda e: e.same_period(since, now) and time.monotonic() - e.made <= KEEP_FOR
        )

    def stale(self, key: Hashable, since: datetime | None, now: datetime | None) -> _Entry | None:
        """`before_the_change`, or else one that says when it was counted for a period the
        clock has moved on from (`last_dated`): what to give, marked, instead of waiting."""
        return self.before_the_change(key, since, now) or self.last_dated(
            key, since, now, slow=False
        )

    def last_dated(
        self, key: Hashable, since: datetime | None, now: datetime | None, *, slow: bool = True
    ) -> _Entry | None:
        """The last slow report (any, with `slow=False`) kept for `key` that can say when it
        was counted, over a period as long as the one asked and ending no later, if recent:
        given marked after a change (see the module's docstring), even a few minutes on,
        when the period asked has moved with the clock, and no further: a backtest asking
        one period after another is never given the one before."""
        if now is None:
            return None

        def as_long(e: _Entry) -> bool:
            if e.since is None or since is None or e.now is None:
                return e.since is None and since is None
            return abs((e.now - e.since) - (now - since)) <= REUSE

        def usable(e: _Entry) -> bool:
            age = time.monotonic() - e.made
            return (
                (e.slow_and_dated() if slow else e.dated())
                and e.now is not None
                and e.now <= now
                and (now - e.now).total_seconds() <= age + REUSE_SECONDS
                and as_long(e)
                and age <= KEEP_FOR
            )

        return self._last(key, usable)

    def settled(self, key: Hashable, since: datetime | None, now: datetime | None) -> Any:
        """A slow report kept before a change, marked with when it was counted, while it
        is too soon to work it out again (see the module's docstring); else None."""
        entry = self.last_dated(key, since, now)
        if entry is None or time.monotonic() - entry.made >= REFRESH_FACTOR * entry.took:
            return None
        return entry.marked()

    def latest(self, key: Hashable, found: tuple[int, ...]) -> _Entry | None:
        """The last kept for `key` at these versions, whatever its period: one to carry."""
        return self._last(key, lambda e: e.fresh(found) and e.now is not None)

    def put(self, key: Hashable, entry: _Entry) -> None:
        # A few per key: one report asked for periods more than a minute apart.
        kept = [e for e in self.entries.get(key, ()) if e.versions == entry.versions][-3:]
        self.entries[key] = [*kept, entry]
        self.entries.move_to_end(key)
        while len(self.entries) > KEPT:
            self.entries.popitem(last=False)


_BY_ENGINE: weakref.WeakKeyDictionary[Engine, _Kept] = weakref.WeakKeyDictionary()
_BY_ENGINE_LOCK = threading.Lock()


def kept(
    session: Session,
    key: Hashable,
    *,
    tables: Sequence[str],
    compute: Callable[[], T],
    now: datetime | None = None,
    since: datetime | None = None,
    carry: Carry | None = None,
    refresh: Callable[[Session], T] | None = None,
) -> T:
    """The report `compute()` gives, kept under `key` (everything it depends on besides the
    tables, the period and the database) for the next calls while it holds (see the module's
    docstring). `tables`: what it reads, among `versions.TRACKED`. Without `now`, the key
    fixes the time itself (a segment's condition holds its cutoffs). `carry` may read the
    database; it is called outside any lock. `refresh(session)`: `compute` in a session of
    its own, to work a slow report out in the background while the last one is given."""
    conn = session.connection()
    if versions.pending(conn, tables):
        return compute()  # this transaction's own changes are not in any kept report
    found = versions.current(conn, tables)
    if found is None:
        return compute()
    with _BY_ENGINE_LOCK:
        store = _BY_ENGINE.setdefault(conn.engine, _Kept())
    full_key = (key, tuple(tables))
    while True:
        with store.lock:
            entry = store.find(full_key, found, since, now)
            if entry is not None:
                return entry.value  # type: ignore[no-any-return]
            settled = store.settled(full_key, since, now)
            if settled is not None:
                return settled  # type: ignore[no-any-return]
            if store.busy(full_key):
                recent = store.recent_enough(full_key, since, now)
                if recent is not None:
                    return recent.marked()  # type: ignore[no-any-return]
            before = store.latest(full_key, found) if carry is not None else None
            working = store.working.get(full_key)
            if working is None:
                working = store.working[full_key] = threading.Event()
                break
            # Another thread is working this report out. Under a burst, when the tables
            # changed since it was last kept, the last one is given meanwhile: older by the
            # time one takes at most, rather than every worker thread waiting for it. One
            # that says when it was counted is given so for a period the clock moved on too.
            stale = store.stale(full_key, since, now)
            if stale is not None:
                return stale.marked()  # type: ignore[no-any-return]
        with _turn_given_back(conn):  # only waiting: another answer may have the turn
            done = working.wait(WAIT_SECONDS)
        if not done:
            return compute()
        # Its answer is ours if it serves; if not (a change was committed while it worked),
        # it is now the last kept before the change, given as such unless nobody is working
        # the change out yet. Working it out here instead would have every waiter of a
        # burst that also writes read the whole table at once.
        found = versions.current(conn, tables) or found
    handed_over = False
    try:
        started = time.monotonic()
        value: Any = None
        took = 0.0
        if before is not None and carry is not None and before.now is not None:
            value = carry(before.value, before.since, before.now)
            took = before.took  # what working it out costs, for `settled`
        if value is None and refresh is not None:
            with store.lock:
                stale = store.last_dated(full_key, since, now)
            if stale is not None:
                _refresh_in_background(
                    store, full_key, working, conn.engine, (found, since, now), refresh
                )
                handed_over = True
                return stale.marked()  # type: ignore[no-any-return]
        if value is None:
            # A report reads whole tables: mostly a wait for the database, during which the
            # process's other answers may have the turn (four reports being worked out at
            # once held every turn for their seconds on PostgreSQL). What it took is timed
            # inside: waiting for the turn again is not the report's cost.
            with _turn_given_back(conn):
                began = time.monotonic()
                value = compute()
                took = max(took, time.monotonic() - began)
        else:
            took = max(took, time.monotonic() - started)
        with store.lock:
            store.put(full_key, _Entry(found, since, now, value, time.monotonic(), took))
        return value  # type: ignore[no-any-return]
    finally:
        if not handed_over:
            _done(store, full_key, working)


def _turn_given_back(conn: Connection) -> contextlib.AbstractContextManager[None]:
    """The thread's turn given back for a wait, unless its transaction holds locks that
    writers wait for (`versions.holds_writes`): `/clm segment save` counts the segment it
    just wrote, and writers given its turn would wait for its lock holding every turn."""
    if versions.holds_writes(conn):
        return contextlib.nullcontext()
    return turns.given_back()


def lowest_priority() -> None:
    """Lower the calling thread's CPU priority, where the system can (Linux nices a thread
    by its id): for reports worked out ahead, which nobody waits for."""
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)


def _done(store: _Kept, key: Hashable, working: threading.Event) -> None:
    with store.lock:
        store.working.pop(key, None)
    working.set()


def _refresh_in_background(
    store: _Kept,
    key: Hashable,
    working: threading.Event,
    engine: Engine,
    asked: tuple[tuple[int, ...], datetime | None, datetime | None],
    refresh: Callable[[Session], Any],
) -> None:
    """Work a slow report out in a thread of its own, at the lowest CPU priority, while
    the asker is given the last one, marked: a funnel of seconds would otherwise hold up
    whoever asked first after each change, and slow every other command of the process."""
    found, since, now = asked

    def work() -> None:
        try:
            lowest_priority()
            started = time.monotonic()
            with Session(engine) as session:
                value = refresh(session)
            took = time.monotonic() - started
            with store.lock:
                store.put(key, _Entry(found, since, now, value, time.monotonic(), took))
        except Exception as error:  # the next ask after it works it out in its own request
            log.warning("a kept report could not be worked out (%s)", type(error).__name__)
        finally:
            _done(store, key, working)

    threading.Thread(target=work, name="clmbot-kept-report", daemon=True).start()


def forget_all() -> None:
    """Drop every kept report, in every database: for a benchmark's "first ask after a
    change", which must work each report out."""
    with _BY_ENGINE_LOCK:
        _BY_ENGINE.clear()


def where_key(session: Session, where: ColumnElement[bool] | None) -> Hashable:
    """A segment's compiled condition as part of a key: its SQL and its values. Times among
    them (`now` for `nps<7`, `now - 30d` for `inactive>30d`) count to the minute, as a
    period's do (`REUSE`): a segment asked twice within a minute is one question."""
    if where is None:
        return None
    # The key SQLAlchemy's own statement cache uses: the condition's shape, and its bound
    # values in order, without rendering SQL. Compiling the string took a millisecond per
    # segment (an eighth of a command's interpreter time under bench_load), and running the
    # statement makes the same key anyway (it is kept on the condition).
    found = where._generate_cache_key()
    if found is not None:
        values = tuple(repr(_to_the_minute(p.effective_value)) for p in found.bindparams)
        return (found.key, values)
    compiled = where.compile(dialect=session.get_bind().dialect)  # not keyable: its SQL
    return (
        compiled.string,
        tuple(sorted((k, repr(_to_the_minute(v))) for k, v in compiled.params.items())),
    )


def tables_read(where: ColumnElement[bool] | None, *also: str) -> tuple[str, ...]:
    """The counted tables a report reads: `also` (what it reads itself) and whatever a
    segment's condition reads, found in the condition, subqueries included. A segment on the
    plan is then kept through a stage move, and one on NPS through new events: with every
    table counted instead, each move threw away every report with a segment (bench_load: the
    at-risk list by plan, worked out again several times a second, a seventh of the bot's
    time). A condition holding SQL this cannot read through (text) reads everything."""
    names = set(also)
    for element in visitors.iterate(where) if where is not None else ():
        if isinstance(element, TextClause):
            return ALL_TABLES
        if isinstance(element, Table):
            names.add(element.name)
        elif isinstance(element, Column) and isinstance(element.table, Table):
            names.add(element.table.name)
            if element.table.name == "customers" and element.name in versions.STAGE_COLUMNS:
                names.add(versions.STAGES)
    return tuple(t for t in ALL_TABLES if t in names)


def _to_the_minute(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.replace(second=0, microsecond=0)
    return value
