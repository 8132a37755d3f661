from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from clmbot.config import Settings
from clmbot.importing import csvstream
from clmbot.importing.runner import import_file
from tests.helpers import read_rejected, rows, snapshot, statements, write_csv

pytestmark = pytest.mark.usefixtures("checking_mode")

EVENTS = """
customer_external_id,kind,occurred_at,value
A1,login,2024-05-01T10:00:00Z,
A1,purchase,2024-05-02T09:30:00+02:00,99.50
N1,login,2024-05-03,
N1,Purchase,2024-04-03T08:00:00Z,12
N2,ticket,2024-06-01T12:00:00.250Z,
"""


@pytest.fixture
def with_a1(engine, settings, now, tmp_path):
    path = write_csv(tmp_path / "customers.csv", "external_id,name,stage\nA1,Acme,retention")
    import_file(engine, "customers", path, settings, now=now)


def test_events_are_stored_in_utc_and_unknown_customers_created(
    engine, settings, now, tmp_path, with_a1
):
    report = import_file(
        engine, "events", write_csv(tmp_path / "events.csv", EVENTS), settings, now=now
    )
    assert (report.rows, report.inserted, report.rejected, report.customers_created) == (5, 5, 0, 2)
    events = rows(engine, "events", "kind", "occurred_at", "value")
    assert ("purchase", datetime(2024, 5, 2, 7, 30, tzinfo=UTC), 99.5) in events
    assert ("ticket", datetime(2024, 6, 1, 12, 0, 0, 250000, tzinfo=UTC), None) in events
    assert ("purchase", datetime(2024, 4, 3, 8, tzinfo=UTC), 12.0) in events  # kind lower-cased
    customers = rows(engine, "customers", "external_id", "name", "stage", "signup_date")
    # A1 existed and keeps its stage; N1 has a purchase, N2 only a ticket
    assert customers == [
        ("A1", "Acme", "retention", None),
        ("N1", "N1", "purchase", date(2024, 4, 3)),  # its first event, not its first row
        ("N2", "N2", "awareness", date(2024, 6, 1)),
    ]
    history = rows(engine, "stage_history", "to_stage", "at", "by", "reason")
    assert (
        "purchase",
        datetime(2024, 4, 3, 8, tzinfo=UTC),
        "import",
        "created by import of events.csv",
    ) in history


def test_a_customer_settles_across_chunks(engine, settings, now, tmp_path, monkeypatch):
    """A customer created in the first chunk by a login gets the purchase and the earlier
    signup that later chunks reveal."""
    monkeypatch.setattr(csvstream, "CHUNK_ROWS", 2)
    path = write_csv(
        tmp_path / "events.csv",
        """
        customer_external_id,kind,occurred_at
        N1,login,2024-05-10T00:00:00Z
        X9,login,2024-05-10T00:00:00Z
        N1,login,2024-05-01T00:00:00Z
        X9,login,2024-05-11T00:00:00Z
        N1,purchase,2024-05-20T00:00:00Z
        """,
    )
    report = import_file(engine, "events", path, settings, now=now)
    assert report.inserted == 5 and report.customers_created == 2
    assert rows(engine, "customers", "external_id", "stage", "signup_date") == [
        ("N1", "purchase", date(2024, 5, 1)),
        ("X9", "awareness", date(2024, 5, 10)),
    ]
    assert rows(engine, "stage_history", "to_stage", "at") == [
        ("awareness", datetime(2024, 5, 10, tzinfo=UTC)),
        ("purchase", datetime(2024, 5, 1, tzinfo=UTC)),
    ]


def test_events_into_an_empty_database_look_nobody_up(engine, settings, now, tmp_path):
    """With no customer yet, every customer is one the import creates: the look-ups that
    find nothing are not made. Into customers already there, they are."""
    path = write_csv(tmp_path / "events.csv", EVENTS)
    with statements(engine, "SELECT customers.external_id, customers.id") as looked_up:
        first = import_file(engine, "events", path, settings, now=now)
        assert (first.inserted, first.customers_created, looked_up) == (5, 3, [])
        again = import_file(engine, "events", path, settings, now=now)
    assert (again.unchanged, again.customers_created, len(looked_up)) == (5, 0, 1)


def test_importing_the_same_events_twice_changes_nothing(engine, settings, now, tmp_path):
    path = write_csv(tmp_path / "events.csv", EVENTS)
    import_file(engine, "events", path, settings, now=now)
    before = snapshot(engine)
    again = import_file(engine, "events", path, settings, now=now + timedelta(hours=5))
    assert (again.inserted, again.updated, again.unchanged, again.customers_created) == (0, 0, 5, 0)
    assert snapshot(engine) == before


def test_a_changed_value_is_an_update(engine, settings, now, tmp_path):
    import_file(engine, "events", write_csv(tmp_path / "e.csv", EVENTS), settings, now=now)
    path = write_csv(
        tmp_path / "e2.csv",
        """
        customer_external_id,kind,occurred_at,value
        A1,purchase,2024-05-02T07:30:00Z,120
        A1,login,2024-05-01T10:00:00Z,
        A1,login,2024-07-01T10:00:00Z,
        """,
    )
    report = import_file(engine, "events", path, settings, now=now)
    assert (report.inserted, report.updated, report.unchanged) == (1, 1, 1)
    assert ("purchase", 120.0) in rows(engine, "events", "kind", "value")


def test_naive_times_are_in_the_team_time_zone(engine, db_url, now, tmp_path):
    settings = Settings(database_url=db_url, timezone=ZoneInfo("Asia/Jakarta"))
    path = write_csv(
        tmp_path / "e.csv", "customer_external_id,kind,occurred_at\nA1,login,2024-05-01 07:00"
    )
    import_file(engine, "events", path, settings, now=now)
    assert rows(engine, "events", "occurred_at") == [(datetime(2024, 5, 1, 0, 0, tzinfo=UTC),)]


def test_extra_columns_are_kept_with_the_event(engine, settings, now, tmp_path):
    path = write_csv(
        tmp_path / "e.csv",
        "customer_external_id,kind,occurred_at,value,channel\n"
        "A1,login,2024-05-01,,ios\nA1,ticket,2024-05-02,,",
    )
    import_file(engine, "events", path, settings, now=now)
    assert rows(engine, "events", "kind", "attributes") == [
        ("login", {"channel": "ios"}),
        ("ticket", None),
    ]


def test_bad_events_are_rejected_and_the_rest_imported(engine, settings, now, tmp_path):
    path = write_csv(
        tmp_path / "events.csv",
        """
        customer_external_id,kind,occurred_at,value
        A1,login,2024-05-01T10:00:00Z,
        A1,login,yesterday,
        A1,login,2031-01-01,
        A1,purchase,2024-05-02,ten
        ,login,2024-05-01,
        A1,,2024-05-01,
        A1,login,2024-05-01T12:00:00+02:00,
        A1,login,2024-05-01T11:00:00Z,,extra
        """,
    )
    report = import_file(engine, "events", path, settings, now=now)
    assert (report.rows, report.inserted, report.rejected) == (8, 2, 6)
    reasons = [r["reason"] for r in read_rejected(tmp_path / "events.rejected.csv")]
    assert reasons[0].startswith("line 3: occurred_at 'yesterday' is not an ISO 8601")
    assert "in the future" in reasons[1]
    assert "value 'ten' is not a number" in reasons[2]
    assert "customer_external_id is empty" in reasons[3]
    assert "kind is empty" in reasons[4]
    # 12:00+02:00 is the same instant as line 2: a second login then, not a rejected row
    assert "has 5 fields, the header has 4" in reasons[5]


def test_strict_rolls_back_chunks_already_written(engine, settings, now, tmp_path, monkeypatch):
    """The bad row is in the last chunk: the chunks before it, and the customers they
    created, must not survive."""
    monkeypatch.setattr(csvstream, "CHUNK_ROWS", 2)
    path = write_csv(
        tmp_path / "events.csv",
        """
        customer_external_id,kind,occurred_at
        N1,login,2024-05-10T00:00:00Z
        N2,purchase,2024-05-10T00:00:00Z
        N3,login,2024-05-01T00:00:00Z
        N1,login,not-a-date
        """,
    )
    report = import_file(engine, "events", path, settings, now=now, strict=True)
    assert report.strict_aborted and report.rejected == 1 and report.customers_created == 0
    assert rows(engine, "events", "id") == []
    assert rows(engine, "customers", "id") == []
    assert rows(engine, "stage_history", "id") == []


def test_a_file_that_is_not_csv_stops_with_its_line(engine, settings, now, tmp_path):
    from clmbot.importing.runner import FileProblem

    path = tmp_path / "events.csv"
    path.write_text('customer_external_id,kind,occurred_at\nA1,login,2024-05-01\nA1,"log"in,x\n')
    with pytest.raises(FileProblem, match=r"line 3: not valid CSV"):
        import_file(engine, "events", path, settings, now=now)
    assert rows(engine, "events", "id") == [] and rows(engine, "customers", "id") == []
    assert not (tmp_path / "events.rejected.csv").exists()


def test_a_failing_checker_process_is_an_error_not_a_hang(tmp_path, now):
    from clmbot.importing.base import CheckingStats, ParseContext
    from clmbot.importing.checking import _checked_elsewhere

    path = write_csv(tmp_path / "e.csv", "customer_external_id,kind,occurred_at\nA1,x,2024-01-01")
    pctx = ParseContext(now, Settings().timezone, Settings().lifecycle, "sqlite")
    with pytest.raises(RuntimeError, match=r"checking e\.csv failed: 'no-such-kind'"):
        list(_checked_elsewhere(path, "no-such-kind", pctx, CheckingStats()))


def test_odd_but_valid_iso_forms_and_placeholder_dates(engine, db_url, now, tmp_path):
    settings = Settings(database_url=db_url, timezone=ZoneInfo("Asia/Jakarta"))
    path = write_csv(
        tmp_path / "events.csv",
        """
        customer_external_id,kind,occurred_at
        A1,login,2024-W18-3T10:00:00Z
        A1,login,2024-05-01T10:00:00Z
        A1,ticket,0001-01-01
        A1,ticket,1900-01-01T00:00:00Z
        A1,ticket,9999-12-31T23:00:00-05:00
        """,
    )
    report = import_file(engine, "events", path, settings, now=now)
    assert (report.inserted, report.rejected) == (2, 3)
    reasons = [r["reason"] for r in read_rejected(tmp_path / "events.rejected.csv")]
    assert "before 1970: a placeholder date?" in reasons[0] and "before 1970" in reasons[1]
    assert "in the future" in reasons[2]
    # an ISO week date is the same instant as line 3: two logins then, in file order
    at = datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert rows(engine, "events", "occurred_at", "seq") == [(at, 0), (at, 1)]


def test_the_checker_process_exits_when_the_importer_is_gone(tmp_path, now):
    """Killed importer, closed pipe: the checker must not linger."""
    import pickle
    import subprocess
    import sys

    from clmbot.importing.base import ParseContext
    from clmbot.importing.checking import _Job

    lines = ["customer_external_id,kind,occurred_at"]
    lines += [f"C{i},login,2024-05-01T10:{i % 60:02d}:{i % 7:02d}Z" for i in range(60_000)]
    path = tmp_path / "big.csv"
    path.write_text("\n".join(lines) + "\n")
    pctx = ParseContext(now, Settings().timezone, Settings().lifecycle, "sqlite")
    child = subprocess.Popen(
        [sys.executable, "-m", "clmbot.importing.checker"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    pickle.dump(_Job(str(path), "events", pctx, 1000), child.stdin)
    child.stdin.close()
    child.stdout.read(10)  # it has started sending
    child.stdout.close()  # the importer is gone
    assert child.wait(timeout=30) != 0


ORDERS = """
customer_external_id,kind,occurred_at,value
A1,purchase,2024-05-02,20
A1,purchase,2024-05-02,35
A1,purchase,2024-05-02,20
B1,purchase,2024-05-02,20
"""


def test_several_events_of_one_kind_at_one_time_are_distinct(engine, settings, now, tmp_path):
    """Two orders on one day, as a real order log has them: both kept, numbered in file
    order, and importing the file again (or a longer export of it) adds only what is new."""
    path = write_csv(tmp_path / "orders.csv", ORDERS)
    report = import_file(engine, "events", path, settings, now=now)
    assert (report.rows, report.inserted, report.rejected) == (4, 4, 0)
    assert report.ok and not (tmp_path / "orders.rejected.csv").exists()
    got = rows(engine, "events", "customer_id", "seq", "value")
    assert [(seq, value) for _, seq, value in got] == [(0, 20.0), (1, 35.0), (2, 20.0), (0, 20.0)]
    before = snapshot(engine)
    again = import_file(engine, "events", path, settings, now=now)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 4)
    assert snapshot(engine) == before
    longer = write_csv(tmp_path / "later.csv", ORDERS + "A1,purchase,2024-05-02,99\n")
    grown = import_file(engine, "events", longer, settings, now=now)
    assert (grown.inserted, grown.updated, grown.unchanged) == (1, 0, 4)


def test_an_event_id_is_the_identity(engine, settings, now, tmp_path):
    path = write_csv(
        tmp_path / "orders.csv",
        """
        customer_external_id,kind,occurred_at,value,event_id
        A1,purchase,2024-05-02,20,INV-1
        A1,purchase,2024-05-02,20,INV-2
        A1,purchase,2024-05-02,20,
        A1,ticket,2024-05-02,,INV-1
        A1,purchase,2024-05-03,5,INV-1
        """,
    )
    report = import_file(engine, "events", path, settings, now=now)
    assert (report.inserted, report.rejected) == (4, 1)
    (bad,) = read_rejected(tmp_path / "orders.rejected.csv")
    assert bad["reason"] == (
        "line 6: event_id 'INV-1' of kind purchase already appears on line 2; an event id "
        "names one event"
    )
    assert sorted(rows(engine, "events", "kind", "event_id", "seq"), key=repr) == [
        ("purchase", "INV-1", None),
        ("purchase", "INV-2", None),
        ("purchase", None, 0),
        ("ticket", "INV-1", None),  # ids are unique within a kind of event
    ]
    # The order system corrected INV-2's time and amount: the same event, updated.
    fixed = write_csv(
        tmp_path / "fixed.csv",
        "customer_external_id,kind,occurred_at,value,event_id\n"
        "A1,purchase,2024-05-01,25,INV-2\nA1,purchase,2024-05-02,20,INV-1",
    )
    again = import_file(engine, "events", fixed, settings, now=now)
    assert (again.inserted, again.updated, again.unchanged) == (0, 1, 1)
    assert ("INV-2", datetime(2024, 5, 1, tzinfo=UTC), 25.0) in rows(
        engine, "events", "event_id", "occurred_at", "value"
    )


def test_a_file_for_most_customers_reads_their_ids_at_once(
    engine, settings, now, tmp_path, monkeypatch
):
    """Past a tenth of the customers, the rest of the ids are read in one go rather than a
    chunk's at a time; a small file only looks up its own. Either way every event lands on
    its customer, and a customer not there yet is created."""
    from clmbot.importing import base

    monkeypatch.setattr(base, "READ_ALL_FROM", 5)
    monkeypatch.setattr(csvstream, "CHUNK_ROWS", 4)
    lines = ["external_id,name"] + [f"C{i:03d},Name {i}" for i in range(100)]
    import_file(
        engine, "customers", write_csv(tmp_path / "c.csv", "\n".join(lines)), settings, now=now
    )
    small = ["customer_external_id,kind,occurred_at"]
    small += [f"C{i:03d},login,2026-10-01T10:00:00Z" for i in (1, 2, 3)]
    many = ["customer_external_id,kind,occurred_at"]
    many += [f"C{i:03d},login,2026-10-02T10:00:00Z" for i in range(0, 100, 3)] + [
        "NEW,login,2026-10-02T11:00:00Z"
    ]
    every = "SELECT customers.external_id, customers.id \nFROM customers"
    with statements(engine, "SELECT customers.external_id, customers.id") as asked:
        first = import_file(
            engine, "events", write_csv(tmp_path / "s.csv", "\n".join(small)), settings, now=now
        )
        assert [s for s in asked if s.strip() == every] == []
        second = import_file(
            engine, "events", write_csv(tmp_path / "m.csv", "\n".join(many)), settings, now=now
        )
    assert (first.inserted, second.inserted, second.customers_created) == (3, 35, 1)
    assert len([s for s in asked if s.strip() == every]) == 1
    # Two chunks of look-ups (4 ids, then 8 in all), then all at once (12 > 5, and > 10).
    assert len(asked) == 1 + 2 + 1
    with engine.connect() as conn:
        pairs = (
            conn.execute(
                text(
                    "SELECT c.external_id FROM events e JOIN customers c ON c.id = e.customer_id "
                    "WHERE e.occurred_at > :t ORDER BY c.external_id"
                ),
                {"t": datetime(2026, 10, 2, tzinfo=UTC)},
            )
            .scalars()
            .all()
        )
    assert pairs == sorted([f"C{i:03d}" for i in range(0, 100, 3)] + ["NEW"])
