"""The engine's behaviour when the database does not answer: a fast failure that says so,
told apart from a bug."""

from __future__ import annotations

import socket
import time

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from clmbot.store.db import database_down, make_engine


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_postgres_that_refuses_is_down_and_said_fast():
    engine = make_engine(f"postgresql://postgres@127.0.0.1:{closed_port()}/test")
    assert engine.pool._pre_ping  # a connection dead since a restart is replaced, not used
    started = time.monotonic()
    with pytest.raises(OperationalError) as caught, engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    assert time.monotonic() - started < 5
    assert database_down(caught.value)
    engine.dispose()


def test_postgres_that_never_answers_times_out():
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # accepted by the kernel, never answered
    try:
        engine = make_engine(f"postgresql://postgres@127.0.0.1:{silent.getsockname()[1]}/test")
        started = time.monotonic()
        with pytest.raises(OperationalError) as caught, engine.connect():
            pass
        assert 4 < time.monotonic() - started < 9  # connect_timeout, not forever
        assert database_down(caught.value)
        engine.dispose()
    finally:
        silent.close()


def test_a_mistake_in_sql_is_not_the_database_being_down(engine):
    with pytest.raises(Exception) as caught, engine.connect() as conn:
        conn.execute(text("SELECT * FROM no_such_table"))
    assert not database_down(caught.value)


def test_a_cause_further_down_is_found():
    engine = make_engine(f"postgresql://postgres@127.0.0.1:{closed_port()}/test")
    try:
        try:
            with engine.connect():
                pass
        except OperationalError as exc:
            raise RuntimeError("while answering") from exc
    except RuntimeError as wrapped:
        assert database_down(wrapped)
    engine.dispose()


def test_an_advisory_lock_is_the_schemas_own(engine, db_url):
    """Two installations in two schemas of one PostgreSQL database (or tests side by side)
    never wait for each other's imports, nor skip each other's digests."""
    import threading
    import uuid

    from sqlalchemy.engine import make_url

    from clmbot.store.db import hold_write_lock

    if not db_url.startswith("postgresql"):
        pytest.skip("PostgreSQL's advisory locks")
    other_schema = f"t_{uuid.uuid4().hex[:12]}"
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{other_schema}"'))
    url = make_url(db_url).update_query_dict({"options": f"-csearch_path={other_schema}"})
    other = make_engine(url.render_as_string(hide_password=False))
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with engine.begin() as conn:
            hold_write_lock(conn, 7, wait=5, busy=RuntimeError("busy"))
            held.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(10)
        with other.begin() as conn:  # another schema: at once
            hold_write_lock(conn, 7, wait=0.2, busy=RuntimeError("busy"))
        with engine.begin() as conn, pytest.raises(RuntimeError, match="busy"):
            hold_write_lock(conn, 7, wait=0.2, busy=RuntimeError("busy"))  # the same: waits
    finally:
        release.set()
        holder.join()
        other.dispose()
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{other_schema}" CASCADE'))
