"""The risk pass's bulk reads (`clmbot.risk.rows`): times worked out by the database as
microseconds are exactly the stored times, on both databases, whatever the year."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, insert

from clmbot.risk import rows
from clmbot.risk.facts import micros
from clmbot.store.models import Customer, Event, StageChange

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _moments() -> list[datetime]:
    rng = random.Random(11)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    found = [epoch + timedelta(microseconds=rng.randrange(-(10**16), 10**17)) for _ in range(300)]
    found += [
        epoch,
        epoch - timedelta(microseconds=1),
        epoch + timedelta(microseconds=1),
        datetime(1600, 5, 5, 12, 0, 0, 1, tzinfo=UTC),  # a typo'd year
        datetime(1969, 12, 31, 23, 59, 59, 500_000, tzinfo=UTC),
        datetime(2026, 3, 1, 23, 59, 59, 999_999, tzinfo=UTC),
        datetime(2026, 3, 2, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
    ]
    return found


def _customers(conn: Connection, n: int) -> None:
    conn.execute(
        insert(Customer),
        [
            {
                "external_id": f"C{i}",
                "name": f"C {i}",
                "stage": "retention",
                "tags": [],
                "attributes": {},
                "locale": "",
                "created_at": T0,
                "updated_at": T0,
            }
            for i in range(n)
        ],
    )


def test_times_read_as_microseconds_are_the_stored_times(engine):
    moments = _moments()
    with engine.begin() as conn:
        _customers(conn, len(moments))
        conn.execute(
            insert(Event),
            [
                {"customer_id": i + 1, "kind": "purchase", "occurred_at": at, "seq": 0}
                for i, at in enumerate(moments)
            ],
        )
        conn.execute(
            insert(StageChange),
            [
                {"customer_id": i + 1, "to_stage": "retention", "at": at, "by": "t"}
                for i, at in enumerate(moments)
            ],
        )
    wanted = {i + 1: micros(at) for i, at in enumerate(moments)}
    with engine.connect() as conn:
        _, customer, at, _, _ = rows.events_after(conn, 0)
        assert dict(zip(customer.tolist(), at.tolist(), strict=True)) == wanted
        cids, codes, names, when, _ = rows.stage_rows(conn, datetime(9999, 12, 31, tzinfo=UTC))
    last = datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)
    del wanted[len(moments)]  # the last moment is after the as-of
    assert micros(last) not in when.tolist()
    assert dict(zip(cids.tolist(), when.tolist(), strict=True)) == wanted
    assert names == ["retention"] and set(codes.tolist()) == {0}


def test_stages_come_back_as_codes_of_their_names_whatever_the_names(engine):
    odd = ["retention", "on'board", "%s", "?", "ünïcode ✓", 'say "hi"', "", "x" * 40]
    rng = random.Random(2)
    with engine.begin() as conn:
        _customers(conn, 40)
        wanted = []
        for n in range(400):
            row = {
                "customer_id": rng.randint(1, 40),
                "to_stage": rng.choice(odd),
                "at": T0 - timedelta(days=rng.randrange(300), seconds=n),
                "by": "t",
                "basis": rng.choice(("exact", "import")),
            }
            wanted.append(row)
        conn.execute(insert(StageChange), wanted)
    with engine.connect() as conn:
        cids, codes, names, when, exact = rows.stage_rows(conn, T0)
    assert names == sorted(odd)
    got = sorted(
        zip(
            cids.tolist(),
            when.tolist(),
            [names[c] for c in codes.tolist()],
            exact.tolist(),
            strict=True,
        )
    )
    assert got == sorted(
        (r["customer_id"], micros(r["at"]), r["to_stage"], r["basis"] == "exact") for r in wanted
    )
    # In the pass's order: by customer, then time.
    pairs = list(zip(cids.tolist(), when.tolist(), strict=True))
    assert pairs == sorted(pairs)


def test_customers_read_joined_or_by_rows_are_the_same_whatever_their_names(engine, monkeypatch):
    # The columns are read joined into one text each: a name holding the separator, a
    # comma or nothing at all must come back as it is, through either way of reading.
    odd = ["Acme, Inc", "", "tab\there", "unit\x1fseparator", "ünïcode ✓", "x" * 300, "a\nb"]
    with engine.begin() as conn:
        _customers(conn, len(odd) + 3)
        for i, name in enumerate(odd):
            conn.execute(Customer.__table__.update().where(Customer.id == i + 1).values(name=name))
        conn.execute(
            Customer.__table__.update().where(Customer.id == len(odd) + 1).values(forgotten_at=T0)
        )
    wanted = [i for i in range(1, len(odd) + 4) if i != len(odd) + 1]
    names = {i + 1: name for i, name in enumerate(odd)}

    def check() -> None:
        with engine.connect() as conn:
            ids, external, found = rows.customers(conn)
        got = sorted(zip(ids.tolist(), external, found, strict=True))
        assert got == [(i, f"C{i - 1}", names.get(i, f"C {i - 1}")) for i in wanted]

    check()  # with the separator in a name: read by rows
    with engine.begin() as conn:
        conn.execute(Customer.__table__.update().where(Customer.id == 4).values(name="plain"))
    names[4] = "plain"
    check()  # joined
    monkeypatch.setattr(rows, "_read_joined", lambda *_: None)
    check()  # by rows


def test_the_stage_history_read_joined_is_the_one_read_by_rows(engine, monkeypatch):
    rng = random.Random(5)
    with engine.begin() as conn:
        _customers(conn, 30)
        conn.execute(
            insert(StageChange),
            [
                {
                    "customer_id": rng.randint(1, 30),
                    "to_stage": rng.choice(("trial", "retention", "churned")),
                    "at": T0 - timedelta(days=rng.randrange(300), microseconds=n),
                    "by": "t",
                    "basis": rng.choice(("exact", "import")),
                }
                for n in range(300)
            ],
        )
    with engine.connect() as conn:
        joined = rows.stage_rows(conn, T0)
        monkeypatch.setattr(rows, "_read_joined", lambda *_: None)
        by_rows = rows.stage_rows(conn, T0)
    assert joined[2] == by_rows[2] and len(joined[0]) == 300
    for a, b in zip(joined[:2] + joined[3:], by_rows[:2] + by_rows[3:], strict=True):
        assert a.tolist() == b.tolist()


def test_a_joined_text_longer_than_the_database_allows_is_read_by_rows(engine):
    with engine.begin() as conn:
        _customers(conn, 50)
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            import sqlite3

            conn.connection.dbapi_connection.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 100)
        else:
            # PostgreSQL's limit is a gigabyte: a text asked longer fails the same way, and
            # the transaction goes on from before the joined read.
            too_long = ["repeat(name, 2147483647)"]
            assert rows._read_joined(conn, ["id"], too_long, rows._CUSTOMERS, ()) is None
        ids, external, names = rows.customers(conn)
    assert ids.tolist() == list(range(1, 51)) and external[-1] == "C49" and names[0] == "C 0"
