"""An import as a whole against hostile files and hostile neighbours: bad bytes, oversized
cells, pipes, files that change while they are read, other imports running at once, and
what is written back (the rejected rows)."""

import os
import stat
import threading
import time
from datetime import timedelta

import pytest

from clmbot.importing import checking, csvstream
from clmbot.importing.runner import FileProblem, ImportBusy, import_file
from tests.helpers import read_rejected, rows, snapshot, write_csv


@pytest.mark.usefixtures("checking_mode")
def test_a_nul_byte_is_a_rejected_row(engine, settings, now, tmp_path):
    path = tmp_path / "events.csv"
    path.write_bytes(
        b"customer_external_id,kind,occurred_at\n"
        b"A1,login,2024-05-01\nA1,log\x00in,2024-05-02\nA\x001,login,2024-05-03\nB2,login,2024-05-04\n"
    )
    report = import_file(engine, "events", path, settings, now=now)
    assert (report.inserted, report.rejected) == (2, 2)
    reasons = [r["reason"] for r in read_rejected(tmp_path / "events.rejected.csv")]
    assert reasons == [
        "line 3: column 2 holds a NUL byte (\\0); remove it and import the row again",
        "line 4: column 1 holds a NUL byte (\\0); remove it and import the row again",
    ]
    customers = write_csv(tmp_path / "c.csv", "external_id,name\nC1,ok")
    customers.write_bytes(customers.read_bytes() + b"C2,Nul\x00Name\n")
    report = import_file(engine, "customers", customers, settings, now=now)
    assert (report.inserted, report.rejected) == (1, 1)


@pytest.mark.usefixtures("checking_mode")
def test_a_cell_over_the_csv_limit_is_a_rejected_row_not_a_broken_file(
    engine, settings, now, tmp_path
):
    path = tmp_path / "c.csv"
    huge = "x" * 200_000
    path.write_text(f"external_id,name,notes\nA1,Acme,short\nB2,Beta,{huge}\nC3,Gamma,\n")
    report = import_file(engine, "customers", path, settings, now=now)
    assert (report.rows, report.inserted, report.rejected) == (3, 2, 1)
    (bad,) = read_rejected(tmp_path / "c.rejected.csv")
    assert bad["reason"] == (
        "line 3: column 3 is 200,000 characters long; a cell may hold at most 131,072"
    )
    assert bad["notes"] == huge  # kept whole, to be corrected
    assert rows(engine, "customers", "external_id") == [("A1",), ("C3",)]


@pytest.mark.usefixtures("checking_mode")
def test_a_quote_never_closed_refuses_the_file_instead_of_losing_rows(
    engine, settings, now, tmp_path
):
    """The rest of the file runs into one cell: carrying on after it would start reading in
    the middle of a row, and the rows it swallowed would be in neither place."""
    path = tmp_path / "q.csv"
    rows_after = "".join(f"Q{n},Name {n},\n" for n in range(2, 20_000))
    path.write_text('external_id,name,email\nA0,Fine,\nQ1,"Unclosed quote,\n' + rows_after)
    with pytest.raises(FileProblem) as err:
        import_file(engine, "customers", path, settings, now=now)
    assert "line 3: a quoted cell that starts in this row is never closed" in str(err.value)
    # longer than the reader takes: refused where it started, not read on from the middle
    path.write_text(
        'external_id,name,email\nA0,Fine,\nQ1,"Unclosed quote,\n'
        + rows_after * 50
        + 'Z1,"closed at last",\n'
    )
    with pytest.raises(FileProblem) as err:
        import_file(engine, "customers", path, settings, now=now)
    assert "line 3: a cell runs on for more than 16,777,216 characters" in str(err.value)
    assert "a quote that is never closed?" in str(err.value)
    assert rows(engine, "customers", "id") == []


def test_a_multi_line_row_is_named_by_the_line_it_starts_on(engine, settings, now, tmp_path):
    path = tmp_path / "c.csv"
    path.write_text('external_id,name,email\nA1,"Acme\nCorp\nLtd",nope\nB2,Beta,also-nope\n')
    import_file(engine, "customers", path, settings, now=now)
    reasons = [r["reason"][:7] for r in read_rejected(tmp_path / "c.rejected.csv")]
    assert reasons == ["line 2:", "line 5:"]


def test_a_fifo_is_refused_at_once(engine, settings, now, tmp_path):
    fifo = tmp_path / "events.csv"
    os.mkfifo(fifo)
    started = time.monotonic()
    with pytest.raises(FileProblem, match="is not a regular file"):
        import_file(engine, "events", fifo, settings, now=now)
    assert time.monotonic() - started < 5  # nobody writes the pipe: waiting would be forever
    with pytest.raises(FileProblem, match="is a directory"):
        import_file(engine, "events", tmp_path, settings, now=now)


def test_a_huge_header_missing_a_column_is_named_in_one_short_line(engine, settings, now, tmp_path):
    path = tmp_path / "events.csv"
    path.write_text(",".join(f"col{i}" for i in range(200_000)) + "\n")
    with pytest.raises(FileProblem) as err:
        import_file(engine, "events", path, settings, now=now)
    message = str(err.value)
    assert "required columns customer_external_id, kind, occurred_at missing" in message
    assert "col0, col1" in message and "and 199,988 more" in message
    assert len(message) < 500 and "\n" not in message


def test_two_imports_at_once_take_turns(engine, settings, now, tmp_path, monkeypatch):
    """Both succeed, one after the other; the second sees what the first wrote."""
    monkeypatch.setattr(csvstream, "CHUNK_ROWS", 50)
    first = tmp_path / "a.csv"
    second = tmp_path / "b.csv"
    lines = [f"C{i},Name {i}" for i in range(2000)]
    first.write_text("external_id,name\n" + "\n".join(lines) + "\n")
    second.write_text("external_id,name,plan\n" + "\n".join(f"{ln},pro" for ln in lines) + "\n")
    reports, errors, waited = {}, [], []

    def run(path):
        try:
            reports[path.name] = import_file(
                engine, "customers", path, settings, now=now, waiting=waited.append
            )
        except Exception as exc:  # collected: the test fails on it below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(p,)) for p in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert sorted(r.inserted for r in reports.values()) == [0, 2000]
    assert len(rows(engine, "customers", "id")) == 2000
    assert set(rows(engine, "customers", "plan")) == {("pro",)}


def test_an_import_that_cannot_get_its_turn_says_so(engine, settings, now, tmp_path):
    from clmbot.importing.runner import _IMPORT_LOCK
    from clmbot.store.db import hold_write_lock

    path = write_csv(tmp_path / "c.csv", "external_id,name\nA1,Acme")
    held = threading.Event()
    release = threading.Event()

    def hold_the_lock():
        with engine.begin() as conn:
            hold_write_lock(conn, _IMPORT_LOCK, wait=5, busy=RuntimeError("busy"))
            held.set()
            release.wait(30)

    holder = threading.Thread(target=hold_the_lock)
    holder.start()
    held.wait(10)
    said = []
    try:
        with pytest.raises(ImportBusy, match="another import into this database is still"):
            import_file(engine, "customers", path, settings, now=now, wait=1, waiting=said.append)
    finally:
        release.set()
        holder.join()
    assert said == ["another import into this database is running; waiting for it to finish"]
    assert rows(engine, "customers", "id") == []


@pytest.mark.parametrize("change", ["appended", "truncated", "rewritten"])
def test_a_file_that_changes_while_it_is_read_imports_nothing(
    engine, settings, now, tmp_path, monkeypatch, change
):
    monkeypatch.setattr(csvstream, "CHUNK_ROWS", 10)
    path = tmp_path / "events.csv"
    body = "".join(f"A{i},login,2024-05-01T10:00:00Z\n" for i in range(100))
    path.write_text("customer_external_id,kind,occurred_at\n" + body)
    before = snapshot(engine)

    def meddle(done: int, total: int) -> None:
        if getattr(meddle, "done", False):
            return
        meddle.done = True
        if change == "appended":
            with path.open("a") as fh:
                fh.write("Z9,login,2024-05-01T10:00:00Z\n")
        elif change == "truncated":
            with path.open("r+") as fh:
                fh.truncate(path.stat().st_size - 40)
        else:  # same size, other bytes
            data = path.read_bytes()
            path.write_bytes(data[:-10] + b"2024-06-01\n"[-10:])
            os.utime(path, ns=(time.time_ns(), time.time_ns() + 1_000_000_000))

    with pytest.raises(FileProblem, match=r"while it was read|cut short|grew"):
        import_file(engine, "events", path, settings, now=now, progress=meddle)
    assert snapshot(engine) == before


def test_a_file_changed_while_a_second_process_reads_it_imports_nothing(
    engine, settings, now, tmp_path, monkeypatch
):
    monkeypatch.setattr(checking, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(csvstream, "CHUNK_ROWS", 10)
    path = tmp_path / "events.csv"
    path.write_text(
        "customer_external_id,kind,occurred_at\n"
        + "".join(f"A{i},login,2024-05-01T10:00:00Z\n" for i in range(300))
    )
    before = snapshot(engine)

    def meddle(done: int, total: int) -> None:
        with path.open("a") as fh:
            fh.write("Z9,login,2024-05-01T10:00:00Z\n")

    with pytest.raises(FileProblem, match="grew while it was read"):
        import_file(engine, "events", path, settings, now=now, progress=meddle)
    assert snapshot(engine) == before


def test_the_rejected_file_replaces_a_planted_link_and_is_private(engine, settings, now, tmp_path):
    target = tmp_path / "precious.txt"
    target.write_text("do not overwrite me")
    path = write_csv(tmp_path / "c.csv", "external_id,name,email\nA1,Acme,nope")
    planted = tmp_path / "c.rejected.csv"
    planted.symlink_to(target)
    import_file(engine, "customers", path, settings, now=now)
    assert target.read_text() == "do not overwrite me"
    assert not planted.is_symlink()
    assert stat.S_IMODE(planted.stat().st_mode) == 0o600
    assert "is not an e-mail address" in read_rejected(planted)[0]["reason"]
    # and a later clean import removes the rejected file, not what a link would point to
    import_file(
        engine, "customers", write_csv(path, "external_id,name\nA1,Acme"), settings, now=now
    )
    assert not planted.exists() and target.read_text() == "do not overwrite me"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


def test_cells_a_spreadsheet_would_run_are_neutralised_and_restored_on_import(
    engine, settings, now, tmp_path
):
    path = tmp_path / "c.csv"
    path.write_text(
        'external_id,name,email,=HYPERLINK("x")\n'
        "A1,=cmd|' /C calc'!A0,nope,+1\n"
        "A2,@SUM(1),nope,-5\n"
        'A3,"\tTabbed",nope,\n'
        "A4,-minus,nope,-1.5e3\n"
    )
    import_file(engine, "customers", path, settings, now=now)
    rejected = tmp_path / "c.rejected.csv"
    raw = rejected.read_text()
    assert "'=HYPERLINK" in raw and "'=cmd|" in raw and "'@SUM(1)" in raw
    assert "'\tTabbed" in raw and "'-minus" in raw
    got = read_rejected(rejected)
    assert [r["name"] for r in got] == ["'=cmd|' /C calc'!A0", "'@SUM(1)", "'\tTabbed", "'-minus"]
    assert [r['\'=HYPERLINK("x")'] for r in got] == ["+1", "-5", "", "-1.5e3"]  # numbers stay
    # Corrected (the e-mails) and imported as it is, the cells come back as they were.
    fixed = raw.replace(",nope,", ",ok@example.com,")
    corrected = tmp_path / "corrected.csv"
    corrected.write_text(fixed)
    report = import_file(engine, "customers", corrected, settings, now=now + timedelta(hours=1))
    assert (report.inserted, report.rejected) == (4, 0)
    names = dict(rows(engine, "customers", "external_id", "name"))
    # (cells are trimmed on import, the tab with the rest of the white space)
    assert names == {"A1": "=cmd|' /C calc'!A0", "A2": "@SUM(1)", "A3": "Tabbed", "A4": "-minus"}
    attrs = dict(rows(engine, "customers", "external_id", "attributes"))
    assert attrs["A1"] == {'=HYPERLINK("x")': "+1"}


def test_the_second_process_does_not_run_code_from_the_working_directory(
    engine, settings, now, tmp_path, monkeypatch
):
    monkeypatch.setattr(checking, "PARALLEL_MIN_BYTES", 0)
    marker = tmp_path / "pwned"
    for name in ("pickle.py", "csv.py", "clmbot.py"):
        (tmp_path / name).write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    path = write_csv(
        tmp_path / "e.csv", "customer_external_id,kind,occurred_at\nA1,login,2024-05-01"
    )
    report = import_file(engine, "events", path, settings, now=now)
    assert report.checking.second_process and report.inserted == 1
    assert not marker.exists()
