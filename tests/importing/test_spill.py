"""The checkers' memory of earlier rows (`SpillMap`), and imports that need it to spill: the
same numbers and the same reports as when everything fits in memory."""

import random
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from clmbot.importing import checking, csvstream, spill
from clmbot.importing.runner import import_file
from clmbot.importing.spill import SpillMap
from tests.helpers import read_rejected, rows, snapshot, write_csv


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    """Where `tempfile` makes its directories, to see what is left there."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def test_a_spilling_map_answers_as_a_dict_does(private_tmp):
    rng = random.Random(7)
    book, truth = SpillMap(limit=50), {}
    for _ in range(40):
        keys = [rng.randrange(-(2**63), 2**63) if rng.random() < 0.5 else rng.randrange(300)]
        keys += [rng.randrange(300) for _ in range(30)]
        book.load(keys)
        for key in keys:
            assert book.get(key) == truth.get(key)
            book.memory[key] = truth[key] = truth.get(key, 0) + 1
        book.settle()
    assert book.spilled and len(book.memory) <= 50
    book.load(list(truth))
    assert {k: book.get(k) for k in truth} == truth
    # Its database was unlinked, with its private directory, as soon as it was open.
    assert list(private_tmp.iterdir()) == []
    book.close()
    assert not book.spilled


def test_nothing_spills_below_the_limit(private_tmp):
    book = SpillMap(limit=10)
    book.load(range(10))
    book.memory.update(dict.fromkeys(range(10), 1))
    book.settle()
    assert not book.spilled and book.get(3) == 1


EVENTS = """
customer_external_id,kind,occurred_at,value,event_id
A1,purchase,2024-05-02,20,
A1,purchase,2024-05-02,35,
B2,login,2024-05-03T10:00:00Z,,
A1,purchase,2024-05-02,20,INV-1
B2,login,2024-05-03T10:00:00Z,,
A1,login,not a time,,
B2,ticket,2024-05-04,,INV-2
A1,purchase,2024-05-02,21,
A1,purchase,2024-05-05,5,INV-1
B2,login,2024-05-03T10:00:00Z,,
B2,ticket,2024-05-06,,INV-2
"""


@pytest.mark.parametrize("where", ["checked here", "checked in a second process"])
def test_events_numbered_the_same_when_the_checker_spills(
    engine, settings, now, tmp_path, monkeypatch, private_tmp, where
):
    """With room for two keys and chunks of three rows, nearly every look-up goes to disk;
    the seq numbers, the rejected rows and their lines are those of the in-memory path."""
    path = write_csv(tmp_path / "events.csv", EVENTS)
    monkeypatch.setattr(csvstream, "CHUNK_ROWS", 3)
    if where == "checked in a second process":
        # The second process has its own module state: only the default limit there.
        monkeypatch.setattr(checking, "PARALLEL_MIN_BYTES", 0)
    else:
        monkeypatch.setattr(spill, "MEMORY_KEYS", 2)
    report = import_file(engine, "events", path, settings, now=now)
    assert (report.rows, report.inserted, report.rejected) == (11, 8, 3)
    assert [r["reason"] for r in read_rejected(tmp_path / "events.rejected.csv")] == [
        "line 7: occurred_at 'not a time' is not an ISO 8601 date or time; use e.g. "
        "2024-05-01 or 2024-05-01T14:30:00Z",
        "line 10: event_id 'INV-1' of kind purchase already appears on line 5; an event id "
        "names one event",
        "line 12: event_id 'INV-2' of kind ticket already appears on line 8; an event id "
        "names one event",
    ]
    got = rows(engine, "events", "kind", "occurred_at", "seq", "value", "event_id")
    day = datetime(2024, 5, 2, tzinfo=UTC)
    assert ("purchase", day, 0, 20.0, None) in got
    assert ("purchase", day, 1, 35.0, None) in got
    assert ("purchase", day, 2, 21.0, None) in got
    at = datetime(2024, 5, 3, 10, tzinfo=UTC)
    assert [g[2] for g in got if g[0] == "login" and g[1] == at] == [0, 1, 2]
    assert list(private_tmp.iterdir()) == []
    before = snapshot(engine)
    again = import_file(engine, "events", path, settings, now=now)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 8)
    assert snapshot(engine) == before


def test_customers_duplicates_named_when_the_checker_spills(
    engine, settings, now, tmp_path, monkeypatch, private_tmp
):
    monkeypatch.setattr(csvstream, "CHUNK_ROWS", 2)
    monkeypatch.setattr(spill, "MEMORY_KEYS", 1)
    path = write_csv(
        tmp_path / "customers.csv",
        "external_id,name\nA1,Acme\nB2,Beta\nC3,\nD4,Delta\nA1,Acme again\nE5,Eps\nB2,Beta again",
    )
    report = import_file(engine, "customers", path, settings, now=now)
    assert (report.inserted, report.rejected) == (4, 3)
    assert [r["reason"] for r in read_rejected(tmp_path / "customers.rejected.csv")] == [
        "line 4: name is empty; every customer needs a name",
        "line 6: external_id A1 already appears on line 2; keep one row per customer",
        "line 8: external_id B2 already appears on line 3; keep one row per customer",
    ]
    assert rows(engine, "customers", "external_id", "name")[0] == ("A1", "Acme")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="Linux's /proc only")
def test_a_checker_reports_its_own_peak_memory_not_its_parents():
    """`ru_maxrss` survives exec on Linux: a checker started by a big importer reported the
    importer's size as its own."""
    ballast = bytearray(300 * 1024 * 1024)
    ballast[::4096] = b"x" * len(ballast[::4096])  # touched: resident
    said = subprocess.run(
        [
            sys.executable,
            "-c",
            "from clmbot.importing.checking import peak_rss_mb as p; print(p())",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert float(said.stdout) < 250
    del ballast
