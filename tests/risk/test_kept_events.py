"""The risk pass's kept events (`clmbot.risk.kept_events`): a pass from the file and what
was added since scores exactly as a pass that reads every event, and a file that no longer
matches its database, or that someone else planted, is never believed."""

from __future__ import annotations

import contextlib
import logging
import os
import random
import threading
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine, delete, insert, select, text, update
from sqlmodel import SQLModel

from clmbot.config import LifecycleConfig, Settings
from clmbot.risk import kept_events
from clmbot.risk import rows as fetch
from clmbot.risk.score import score, score_all
from clmbot.store.models import Event
from tests.risk.test_same_as_before import AS_OF, fill

LIFECYCLE = LifecycleConfig()


def _scores(engine: Engine) -> list:
    with engine.connect() as conn:
        return score_all(conn, AS_OF, config=Settings().risk, lifecycle=LIFECYCLE)


def _place(engine: Engine) -> Path:
    with engine.connect() as conn:
        path = kept_events.place(conn)
    assert path is not None
    return path


def _fresh(engine: Engine) -> list:
    """The scores from every event read again, the kept file put aside and back."""
    path = _place(engine)
    aside = path.with_name(path.name + ".aside")
    path.rename(aside)
    try:
        return _scores(engine)
    finally:
        path.unlink(missing_ok=True)
        aside.rename(path)


def _more_events(engine: Engine, seed: int) -> None:
    """A day's events, and the awkward ones: late ones dated long before, ones tied in time
    with a kept event of the same customer (and another amount), a new buyer."""
    rng = random.Random(seed)
    with engine.begin() as conn:
        kept = conn.execute(
            select(Event.customer_id, Event.occurred_at).order_by(Event.id).limit(50)
        ).all()
        rows = [
            {
                "customer_id": cid,
                "kind": "purchase",
                "occurred_at": at,
                "value": 7.5,
                "seq": 1000 * seed + i,
            }
            for i, (cid, at) in enumerate(kept)
        ]
        rows += [
            {
                "customer_id": rng.randint(1, 700),
                "kind": rng.choice(("purchase", "login")),
                "occurred_at": AS_OF - timedelta(days=rng.uniform(0, 600)),
                "value": round(rng.uniform(1, 90), 2),
                "seq": 1000 * seed + 500 + i,
            }
            for i in range(400)
        ]
        conn.execute(insert(Event), rows)


def test_a_pass_from_the_kept_events_scores_as_one_that_reads_them_all(engine, monkeypatch):
    fill(engine, 1)
    first = _scores(engine)
    path = _place(engine)
    assert path.is_file()
    assert first == _fresh(engine)
    _more_events(engine, 2)
    read_after: list[int] = []
    real = fetch.events_after

    def spy(conn, after_id):
        read_after.append(after_id)
        return real(conn, after_id)

    monkeypatch.setattr(fetch, "events_after", spy)
    later = _scores(engine)
    assert read_after and read_after[0] > 0  # only what was added since
    monkeypatch.setattr(fetch, "events_after", real)
    assert later != first
    assert later == _fresh(engine)
    # Nothing added: the file as it is, and the same scores.
    assert _scores(engine) == later


@pytest.mark.parametrize("change", ["deleted", "moved", "another database", "made anew"])
def test_a_kept_file_that_no_longer_matches_the_database_is_read_again_whole(
    engine, change, caplog, tmp_path
):
    fill(engine, 1)
    _scores(engine)
    path = _place(engine)
    if change == "deleted":
        with engine.begin() as conn:
            conn.execute(delete(Event).where(Event.id == 3))
    elif change == "moved":
        # An event in the middle, none of those the file noted, moved to another day: same
        # count, same ids (counted as an event rewritten).
        with engine.begin() as conn:
            count = conn.execute(text("SELECT count(*) FROM events")).scalar()
            middle = conn.execute(
                select(Event.id).order_by(Event.id).offset(count // 2 + 1).limit(1)
            ).scalar()
            assert middle not in kept_events._read(path).samples[:, 0].tolist()
            conn.execute(
                update(Event)
                .where(Event.id == middle)
                .values(occurred_at=AS_OF - timedelta(days=400), value=999.0)
            )
    elif change == "made anew":
        # The database made again from nothing beside the file (its mark is new), with
        # the same customers and as many other events at the same ids.
        with engine.begin() as conn:
            count = conn.execute(text("SELECT count(*) FROM events")).scalar()
            conn.execute(delete(Event))
            conn.execute(text("DELETE FROM data_versions"))
        fill_other(engine, count)
    else:
        # Another shop's events, as many of them, and the first one's file in its place.
        with engine.begin() as conn:
            count = conn.execute(text("SELECT count(*) FROM events")).scalar()
            conn.execute(delete(Event))
        saved = tmp_path / "kept"
        saved.write_bytes(path.read_bytes())
        fill_other(engine, count)
        path.unlink()
        saved.rename(path)
        path.chmod(0o600)
    with caplog.at_level(logging.WARNING, logger="clmbot.risk.kept_events"):
        got = _scores(engine)
    assert "no longer match" in caplog.text
    assert got == _fresh(engine)


def fill_other(engine: Engine, count: int) -> None:
    """`count` events of other times (on SQLite at the same ids as those deleted)."""
    rng = random.Random(9)
    rows = [
        {
            "customer_id": rng.randint(1, 600),
            "kind": "purchase",
            "occurred_at": AS_OF - timedelta(days=rng.uniform(1, 300)),
            "value": 3.0,
            "seq": i,
        }
        for i in range(count)
    ]
    with engine.begin() as conn:
        conn.execute(insert(Event), rows)


def test_a_link_planted_in_the_files_place_is_replaced_not_followed(engine, tmp_path):
    fill(engine, 1)
    path = _place(engine)
    path.parent.mkdir(parents=True, exist_ok=True)
    target = tmp_path / "victim"
    target.write_bytes(b"someone else's file")
    path.symlink_to(target)
    scores = _scores(engine)
    assert target.read_bytes() == b"someone else's file"
    assert not path.is_symlink() and path.is_file()
    assert (path.stat().st_mode & 0o777) == 0o600
    assert scores == _fresh(engine)


def test_a_file_others_may_write_is_not_believed(engine, caplog):
    fill(engine, 1)
    truth = _scores(engine)
    path = _place(engine)
    # A file that says there are no events at all, writable by anyone.
    empty = kept_events.Kept(
        np.zeros(0, np.int64),
        np.zeros(0, np.int64),
        np.zeros(0),
        np.zeros(0, bool),
        10**9,
        np.zeros((0, 3), np.int64),
    )
    kept_events._write(path, empty)
    path.chmod(0o666)
    with caplog.at_level(logging.WARNING, logger="clmbot.risk.kept_events"):
        assert _scores(engine) == truth
    assert "not a file of clmbot's" in caplog.text
    assert (path.stat().st_mode & 0o777) == 0o600


def test_where_nothing_can_be_kept_the_pass_still_reads_everything(engine, caplog, monkeypatch):
    fill(engine, 1)
    truth = _scores(engine)
    path = _place(engine)
    path.unlink()
    blocked = path.parent / "blocked"
    blocked.write_text("a file where a folder should be")
    monkeypatch.setattr(kept_events, "place", lambda conn: blocked / "events")
    with caplog.at_level(logging.WARNING, logger="clmbot.risk.kept_events"):
        assert _scores(engine) == truth
    assert "cannot keep its events" in caplog.text


def test_an_unreadable_file_is_read_again_whole(engine, caplog):
    fill(engine, 1)
    truth = _scores(engine)
    path = _place(engine)
    path.write_bytes(path.read_bytes()[:5000])  # cut short, as by a full disk
    with caplog.at_level(logging.WARNING, logger="clmbot.risk.kept_events"):
        assert _scores(engine) == truth
    assert "unreadable" in caplog.text


def test_a_new_event_tied_with_a_kept_one_goes_after_it():
    """As a read sorted by customer, time and id puts it: the later id second."""
    base = kept_events._merged(
        kept_events._empty(),
        np.array([1, 2, 3]),
        np.array([5, 5, 6]),
        np.array([10, 20, 10]),
        np.array([1.0, 2.0, 3.0]),
        np.array([True, True, False]),
    )
    merged = kept_events._merged(
        base,
        np.array([4, 5]),
        np.array([5, 4]),
        np.array([20, 99]),
        np.array([4.0, 5.0]),
        np.array([False, True]),
    )
    assert merged.customer.tolist() == [4, 5, 5, 5, 6]
    assert merged.at.tolist() == [99, 10, 20, 20, 10]
    assert merged.value.tolist() == [5.0, 1.0, 2.0, 4.0, 3.0]
    assert merged.last_id == 5
    assert merged.samples[-1].tolist() == [5, 4, 99]


def test_the_file_is_private(engine):
    fill(engine, 1)
    _scores(engine)
    path = _place(engine)
    assert (path.stat().st_mode & 0o777) == 0o600
    if engine.dialect.name == "postgresql":
        assert (path.parent.stat().st_mode & 0o777) == 0o700
        assert path.parent == Path(os.environ["XDG_STATE_HOME"]) / "clmbot" / "risk"


def _arrays_match(engine: Engine) -> None:
    """The kept columns are exactly a read of every event (NaN amounts included)."""
    with engine.connect() as conn:
        kept = kept_events.events(conn)
        _, customer, at, value, bought = fetch.events_after(conn, 0)
    assert np.array_equal(kept.customer, customer)
    assert np.array_equal(kept.at, at)
    assert np.array_equal(kept.value, value, equal_nan=True)
    assert np.array_equal(kept.bought, bought)


def test_a_corrected_file_imported_again_is_seen(engine, tmp_path, caplog):
    """A re-import changes stored events in place (amounts; by event id, customer and
    time): the ids and the count stay, and the next pass reads everything again."""
    from clmbot.importing.runner import import_file

    def imported(kind: str, text_: str) -> None:
        path = tmp_path / f"{kind}-{len(list(tmp_path.iterdir()))}.csv"
        path.write_text(text_)
        # (customers well before, so that their stage is known on the day scored)
        now = AS_OF - timedelta(days=600) if kind == "customers" else AS_OF
        report = import_file(engine, kind, path, Settings(), now=now)
        assert report.ok, report.summary()

    rng = random.Random(4)
    imported(
        "customers",
        "external_id,name,stage\n" + "".join(f"C{i},Customer {i},retention\n" for i in range(300)),
    )
    lines = [
        f"C{rng.randrange(300)},purchase,"
        f"{(AS_OF - timedelta(days=rng.uniform(1, 500))).strftime('%Y-%m-%dT%H:%M:%SZ')},"
        f"{rng.uniform(1, 90):.2f},E{n}"
        for n in range(3000)
    ]
    header = "customer_external_id,kind,occurred_at,value,event_id\n"
    imported("events", header + "\n".join(lines) + "\n")
    first = _scores(engine)
    _arrays_match(engine)
    # The same file with its amounts corrected, and one event moved to another customer.
    corrected = [line.rsplit(",", 2)[0] + ",1.00," + line.rsplit(",", 1)[1] for line in lines]
    moved = corrected[1500].split(",")
    moved[0] = "C7" if moved[0] != "C7" else "C8"
    corrected[1500] = ",".join(moved)
    imported("events", header + "\n".join(corrected) + "\n")
    with caplog.at_level(logging.WARNING, logger="clmbot.risk.kept_events"):
        later = _scores(engine)
    assert "no longer match" in caplog.text
    assert later != first
    assert later == _fresh(engine)
    _arrays_match(engine)


def test_events_added_in_many_passes_are_the_columns_of_one_read(engine):
    fill(engine, 2)
    for seed in range(3, 6):
        _scores(engine)
        _more_events(engine, seed)
    _scores(engine)
    _arrays_match(engine)


def test_a_transaction_committed_after_a_later_one_was_read_is_found(engine, db_url):
    """PostgreSQL hands out ids when rows are written, not when they commit: events written
    by a transaction still open when a pass reads past its ids are found on the next one."""
    if not db_url.startswith("postgresql"):
        pytest.skip("PostgreSQL's ids and commits")
    fill(engine, 1)
    _scores(engine)
    row = {"customer_id": 5, "kind": "purchase", "value": 3.0, "seq": 900}
    slow = engine.connect()
    slow.begin()
    slow.execute(insert(Event), [{**row, "occurred_at": AS_OF - timedelta(days=3)}])
    with engine.begin() as conn:  # a later id, committed first
        conn.execute(insert(Event), [{**row, "occurred_at": AS_OF - timedelta(days=2)}])
    _scores(engine)
    slow.commit()
    slow.close()
    assert _scores(engine) == _fresh(engine)
    _arrays_match(engine)


@pytest.mark.parametrize("apart", [False, True])
def test_an_event_deleted_behind_clmbots_back_is_found_by_the_count(engine, caplog, apart):
    """A delete clmbot did not make (another tool on the database) raises no mark: the
    count of events up to the file's last id finds it, new events added since or not, on
    the pass's connection or counted on one of its own while the file is read."""
    fill(engine, 1)
    _scores(engine)
    path = _place(engine)
    noted = set(kept_events._read(path).samples[:, 0].tolist())
    _more_events(engine, 3)  # added since the file: counted apart from the kept ones
    raw = engine.raw_connection()  # the driver's own: unseen by clmbot's write notes
    try:
        cursor = raw.cursor()
        cursor.execute("SELECT id FROM events ORDER BY id")
        gone = next(i for (i,) in cursor.fetchall()[40:] if i not in noted)
        cursor.execute(f"DELETE FROM events WHERE id = {int(gone)}")
        raw.commit()
    finally:
        raw.close()
    with caplog.at_level(logging.WARNING, logger="clmbot.risk.kept_events"):
        if apart:
            with engine.connect() as conn:
                config, lifecycle = Settings().risk, LIFECYCLE
                got = score(conn, AS_OF, config=config, lifecycle=lifecycle, engine=engine).rows()
        else:
            got = _scores(engine)
    assert "no longer match" in caplog.text
    assert got == _fresh(engine)


def test_a_fifo_in_the_files_place_does_not_hold_the_pass(engine, caplog):
    fill(engine, 1)
    truth = _scores(engine)
    path = _place(engine)
    path.unlink()
    os.mkfifo(path, 0o600)
    got: list = []
    with caplog.at_level(logging.WARNING, logger="clmbot.risk.kept_events"):
        passing = threading.Thread(target=lambda: got.append(_scores(engine)), daemon=True)
        passing.start()
        passing.join(60)
    assert not passing.is_alive(), "the pass waits for a writer to open the FIFO"
    with contextlib.suppress(OSError):  # (a writer, to let a stuck test thread go)
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
    assert got == [truth]
    assert "not a file of clmbot's" in caplog.text
    assert path.is_file()  # replaced by the kept file


def _planted(path: Path, *, long_ago: bool = False) -> Path:
    """A file at `path`, last written in 1970 when `long_ago`."""
    path.write_bytes(b"someone's bytes")
    if long_ago:
        os.utime(path, (1, 1))
    return path


def test_a_half_written_copy_left_by_a_killed_pass_is_removed(engine):
    fill(engine, 1)
    _scores(engine)
    path = _place(engine)
    old = _planted(path.parent / f".{path.name}.abc123.part", long_ago=True)
    fresh = _planted(path.parent / f".{path.name}.def456.part")  # being written right now
    _more_events(engine, 7)
    _scores(engine)
    assert not old.exists()
    assert fresh.exists()


def test_a_file_of_another_clmbot_is_read_again_whole_quietly(engine, caplog):
    """After an upgrade that changes the file's format: no warning, one full read."""
    import io

    fill(engine, 1)
    truth = _scores(engine)
    path = _place(engine)
    older = io.BytesIO()
    older.write(kept_events._MAGIC)
    np.save(older, np.array([1, 10**9, 0], dtype=np.int64))
    path.write_bytes(older.getvalue())
    with caplog.at_level(logging.INFO, logger="clmbot.risk.kept_events"):
        assert _scores(engine) == truth
    assert "of another clmbot" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_another_databases_file_unused_for_a_month_is_removed(engine):
    if engine.dialect.name != "postgresql":
        pytest.skip("the state folder holds PostgreSQL databases' files")
    fill(engine, 1)
    _scores(engine)
    path = _place(engine)
    old = _planted(path.parent / f"events-{'0' * 32}", long_ago=True)
    # Not a name clmbot gives: never touched.
    mine = _planted(path.parent / "events-notes.txt", long_ago=True)
    recent = _planted(path.parent / f"events-{'1' * 32}")  # another database, used lately
    _more_events(engine, 8)
    _scores(engine)
    assert not old.exists()
    assert recent.exists() and mine.exists()


def test_a_database_that_cannot_be_written_is_scored_without_keeping(db_url, caplog):
    """The first pass marks the database; a read-only role (a replica, `clmbot risk` with
    a reader's account) cannot, and is scored from every event, with no file."""
    if not db_url.startswith("postgresql"):
        pytest.skip("PostgreSQL's read-only transactions")
    from sqlalchemy.engine import make_url

    from clmbot.store.db import make_engine

    writer = make_engine(db_url)
    SQLModel.metadata.create_all(writer)
    fill(writer, 1)
    url = make_url(db_url)
    options = url.query["options"] + " -c default_transaction_read_only=on"
    reader = make_engine(url.update_query_dict({"options": options}).render_as_string(False))
    try:
        with caplog.at_level(logging.WARNING, logger="clmbot.risk.kept_events"):
            got = _scores(reader)
        assert "cannot mark the database" in caplog.text
        assert got == _scores(writer)
        with reader.connect() as conn:
            assert not kept_events.place(conn).exists()
    finally:
        reader.dispose()
        writer.dispose()
