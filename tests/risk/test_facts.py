"""What the risk pass reads (`clmbot.risk.facts`): reads that need nothing of each other go
at once on connections of their own when the pass has an engine, and only then."""

from __future__ import annotations

import threading

from sqlalchemy import Engine, event

from clmbot.config import LifecycleConfig
from clmbot.risk import facts
from clmbot.store.db import make_engine
from tests.risk.test_same_as_before import AS_OF, fill

TERMINAL = LifecycleConfig().terminal


def _threads_reading(engine: Engine, beside: Engine | None) -> set[str]:
    """The threads that checked out a connection of `engine` while the pass loaded."""
    names: set[str] = set()

    def checked_out(*_: object) -> None:
        names.add(threading.current_thread().name)

    event.listen(engine, "checkout", checked_out)
    try:
        with engine.connect() as conn:
            loaded = facts.load(conn, AS_OF, terminal=TERMINAL, engine=beside)
    finally:
        event.remove(engine, "checkout", checked_out)
    assert len(loaded.ids) > 0 and loaded.nps
    return names


def test_the_pass_reads_beside_its_connection_only_when_given_the_engine(engine):
    fill(engine, 1)
    alone = _threads_reading(engine, None)
    assert alone == {threading.current_thread().name}
    apart = _threads_reading(engine, engine)
    assert len([n for n in apart if n.startswith("risk-read")]) >= 1
    assert threading.current_thread().name in apart


def test_a_database_each_connection_has_its_own_is_read_on_one():
    assert not facts._shared(make_engine("sqlite://"))
    assert not facts._shared(make_engine("sqlite:///:memory:"))
    assert facts._shared(make_engine("sqlite:////tmp/x.db"))
    assert facts._shared(make_engine("postgresql+psycopg://u@localhost/db"))
