"""What the risk pass reads (`clmbot.risk.facts`): reads that need nothing of each other go
at once on connections of their own when the pass has an engine, and only then."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import Engine, event, insert

from clmbot.config import LifecycleConfig, Settings
from clmbot.risk import facts, kept_events, rows
from clmbot.risk.score import score, score_all
from clmbot.store.db import make_engine
from clmbot.store.models import Customer, Event, StageChange
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


def test_a_database_each_connection_has_its_own_is_read_on_one(tmp_path):
    assert not facts._shared(make_engine("sqlite://"))
    assert not facts._shared(make_engine("sqlite:///:memory:"))
    assert facts._shared(make_engine(f"sqlite:///{tmp_path / 'shop.db'}"))
    assert facts._shared(make_engine("postgresql+psycopg://u@localhost/db"))


def test_a_customer_committed_with_their_events_while_the_pass_reads_is_scored_with_them(
    engine, monkeypatch
):
    """An import commits a new customer, their stage and their events at once. Committed
    after the pass read the events but before it read the customers, they are scored from
    their events, as a pass afterwards scores them, not as a customer with none."""
    fill(engine, 1)
    committed = threading.Event()
    real_events, real_customers, real_stages = kept_events.events, rows.customers, rows.stage_rows

    def events_then_an_import(conn, beside=None):
        got = real_events(conn, beside)
        at = AS_OF - timedelta(days=300)
        with engine.begin() as other:
            cid = other.execute(
                insert(Customer)
                .values(
                    external_id="NEW-1",
                    name="New",
                    stage="retention",
                    tags=[],
                    attributes={},
                    locale="",
                    created_at=at,
                    updated_at=at,
                )
                .returning(Customer.id)
            ).scalar()
            other.execute(
                insert(StageChange).values(
                    customer_id=cid, to_stage="retention", at=at, by="t", basis="exact"
                )
            )
            other.execute(
                insert(Event),
                [
                    {
                        "customer_id": cid,
                        "kind": "purchase",
                        "occurred_at": AS_OF - timedelta(days=days),
                        "value": 10.0,
                        "seq": 0,
                    }
                    for days in range(300, 40, -5)
                ],
            )
        committed.set()
        return got

    def customers_once_committed(conn):
        assert committed.wait(10)
        return real_customers(conn)

    def stages_once_committed(conn, as_of):
        assert committed.wait(10)
        return real_stages(conn, as_of)

    monkeypatch.setattr(kept_events, "events", events_then_an_import)
    monkeypatch.setattr(rows, "customers", customers_once_committed)
    monkeypatch.setattr(rows, "stage_rows", stages_once_committed)
    config, lifecycle = Settings().risk, LifecycleConfig()
    with engine.connect() as conn:
        during = score(conn, AS_OF, config=config, lifecycle=lifecycle, engine=engine).rows()
    monkeypatch.undo()
    with engine.connect() as conn:
        after = score_all(conn, AS_OF, config=config, lifecycle=lifecycle)
    new = [r for r in during if r.external_id == "NEW-1"]
    assert new and new == [r for r in after if r.external_id == "NEW-1"]
    assert "no activity recorded" not in " ".join(new[0].reasons)
    assert during == after
