"""Property tests of the CSV imports on arbitrary bytes.

Whatever a file holds, an import either refuses the file as a whole (`FileProblem`, and
then nothing is stored and no rejected file is left) or returns a report whose counts add
up; every rejected row is in FILE.rejected.csv with its line and its reason, cells intact;
and nothing of a rejected row is stored.

Most examples run on SQLite, each on a database of its own (a copy of one migrated when the
test starts: migrating per example would cost more than the import). One property runs on
both backends through the `engine` fixture, emptying the tables the imports fill between
examples.

Bugs it found are kept at the end as tests of their own.

Examples per property: CLMBOT_FUZZ_EXAMPLES (default 300), e.g.
`CLMBOT_FUZZ_EXAMPLES=5000 pytest tests/importing/test_csvstream_fuzz.py`.
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, Phase, given
from hypothesis import event as outcome_event
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context
from sqlalchemy import Engine, delete, event, func, select

from clmbot.config import Settings
from clmbot.files import neutralise, restore
from clmbot.importing.base import ImportReport
from clmbot.importing.csvstream import FileProblem, rejected_path
from clmbot.importing.kinds import KINDS
from clmbot.importing.runner import import_file
from clmbot.store.db import make_engine
from clmbot.store.migrate import upgrade
from clmbot.store.models import Customer, Event, Feedback, StageChange

EXAMPLES = int(os.environ.get("CLMBOT_FUZZ_EXAMPLES") or 300)
hsettings.register_profile(
    "clmbot-fuzz-imports",
    max_examples=EXAMPLES,
    deadline=None,
    # The fixtures are set up once per test; every example makes its own database, or
    # empties the tables it filled (see the module's docstring).
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
    # No example database in the working tree: a failure prints what reproduces it.
    database=None,
    print_blob=True,
    # Explaining a failure re-runs it hundreds of times: minutes, against a database.
    phases=[Phase.explicit, Phase.generate, Phase.target, Phase.shrink],
)
# Applied to each test rather than with `load_profile`, which is global: it would also set
# the count of every other Hypothesis test collected in the same run.
FUZZ = hsettings(hsettings.get_profile("clmbot-fuzz-imports"))
# PostgreSQL's imports cost several times SQLite's: a third as many examples there. Feedback
# and stages files, beyond customers and events: half as many.
FUZZ_BOTH = hsettings(FUZZ, max_examples=max(EXAMPLES // 3, 1))
FUZZ_HALF = hsettings(FUZZ, max_examples=max(EXAMPLES // 2, 1))

TABLES = {t.__tablename__: t.__table__ for t in (Customer, Event, Feedback, StageChange)}
ZONES = [ZoneInfo(z) for z in ("UTC", "Asia/Jakarta", "America/St_Johns", "Pacific/Kiritimati")]
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)  # as tests/conftest.py
LINE = re.compile(r"^line (\d+): (.+)$", re.DOTALL)

HEADERS = {
    "customers": [
        "external_id,name,email,stage",
        "external_id,name,email,stage,mrr,signup_date,tags,stage_since,industry",
        "Name, External_ID ,reason,locale,timezone,slack_user_id,owner_slack_id",
        "'=x,external_id,'@name,name",
    ],
    "events": [
        "customer_external_id,kind,occurred_at,value",
        "customer_external_id,kind,occurred_at,value,event_id",
        "customer_external_id,kind,occurred_at,value,event_id,channel",
        "Occurred_At,Kind,Customer_External_Id,reason",
    ],
    "feedback": [
        "customer_external_id,kind,score,comment,responded_at",
        "customer_external_id,kind,score,responded_at,survey",
    ],
    "stages": [
        "customer_external_id,stage,moved_at,by,reason",
        "customer_external_id,stage,moved_at,rejected_reason,source",
    ],
}
# Customers the feedback and stages files can name: those kinds store nothing for others.
KNOWN_CUSTOMERS = ("A1", "B2", "C3")


# --- databases -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def templates(tmp_path_factory) -> dict[str, tuple[Path, dict[str, int]]]:
    """Two migrated SQLite databases to copy, with the rows they hold: empty, and with
    KNOWN_CUSTOMERS."""
    folder = tmp_path_factory.mktemp("templates")
    out = {}
    for name in ("empty", "known"):
        path = folder / f"{name}.db"
        engine = make_engine(f"sqlite:///{path}")
        upgrade(engine)
        if name == "known":
            body = "external_id,name\n" + "".join(f"{c},Customer {c}\n" for c in KNOWN_CUSTOMERS)
            csv_path = folder / "known.csv"
            csv_path.write_text(body, encoding="utf-8")
            report = import_file(engine, "customers", csv_path, Settings(), now=NOW)
            assert report.inserted == len(KNOWN_CUSTOMERS)
        out[name] = (path, table_counts(engine))
        engine.dispose()  # the last connection closed: the WAL is folded into the file
    return out


@dataclass
class Case:
    """One example: its own folder, the file to import, and the database to import into
    with the rows it holds before the import."""

    folder: Path
    path: Path
    engine: Engine
    settings: Settings
    before: dict[str, int]


def _no_fsync(dbapi_conn, _record) -> None:
    """Durability is not under test: no waiting for the disk (after clmbot's own pragmas)."""
    dbapi_conn.execute("PRAGMA synchronous=OFF")


@pytest.fixture
def new_case(templates, tmp_path):
    """Make a fresh case (a folder, a database) per example. The one before is removed; the
    last is left in tmp_path, to look at when the test failed."""
    previous: list[tuple[Engine, Path]] = []

    def make(kind: str, data: bytes, zone: ZoneInfo) -> Case:
        while previous:
            engine, folder = previous.pop()
            engine.dispose()
            shutil.rmtree(folder, ignore_errors=True)
        folder = Path(tempfile.mkdtemp(dir=tmp_path))
        db = folder / "clmbot.db"
        template, before = templates["empty" if kind in ("customers", "events") else "known"]
        shutil.copyfile(template, db)
        url = f"sqlite:///{db}"
        engine = make_engine(url)
        event.listen(engine, "connect", _no_fsync)
        previous.append((engine, folder))
        path = folder / f"{kind}.csv"
        path.write_bytes(data)
        return Case(folder, path, engine, Settings(database_url=url, timezone=zone), before)

    yield make
    for engine, _ in previous:
        engine.dispose()


def table_counts(engine: Engine) -> dict[str, int]:
    """Rows in each table an import fills, in one query."""
    counts = [select(func.count()).select_from(t).scalar_subquery() for t in TABLES.values()]
    with engine.connect() as conn:
        return dict(zip(TABLES, conn.execute(select(*counts)).one(), strict=True))


def stored(engine: Engine, table: str, column: str) -> list:
    t = TABLES[table]
    with engine.connect() as conn:
        return list(conn.execute(select(t.c[column])).scalars())


# --- what the file says, read independently of the import ------------------------------------


@dataclass
class Parsed:
    header: list[str]  # as the import reads it: trimmed, guarded cells restored
    records: dict[int, list[str]]  # data rows by the line they start on, cells as in the file


def read_file(data: bytes) -> Parsed:
    """The file as the CSV module reads it with the import's settings (UTF-8 with or without
    a BOM, undecodable bytes kept as surrogates, no newline translation, cells up to the
    import's read limit), blank lines left out. Any CSV error is a file the import must
    have refused."""
    text = io.TextIOWrapper(
        io.BytesIO(data), encoding="utf-8-sig", errors="surrogateescape", newline=""
    )
    reader = csv.reader(text, strict=True)
    header = [restore(n.strip()) for n in next(reader)]
    records: dict[int, list[str]] = {}
    ended = reader.line_num
    for fields in reader:
        start, ended = ended + 1, reader.line_num
        if fields and not (len(fields) == 1 and not fields[0].strip()):
            assert start not in records
            records[start] = fields
    return Parsed(header, records)


def read_rejected(path: Path) -> list[list[str]]:
    """The rows of a rejected file, header first (as tests/helpers.read_rejected reads it)."""
    with path.open(newline="", encoding="utf-8", errors="surrogateescape") as fh:
        return list(csv.reader(fh))


# --- the properties every import has -----------------------------------------------------------


def run_import(case: Case, kind: str, *, strict: bool) -> ImportReport | FileProblem:
    """The import's outcome: a report, or FileProblem. Anything else fails the test."""
    try:
        return import_file(case.engine, kind, case.path, case.settings, now=NOW, strict=strict)
    except FileProblem as exc:
        return exc


def note(what: str) -> None:
    """Count the outcome for --hypothesis-show-statistics (outside Hypothesis: nothing)."""
    if currently_in_test_context():
        outcome_event(what)


def no_leftovers(case: Case) -> None:
    """No half-written rejected file (`.customers.rejected.csv.XXXX.part`) is left behind."""
    leftovers = [p.name for p in case.folder.iterdir() if p.name.endswith(".part")]
    assert not leftovers


def check_import(
    case: Case, kind: str, data: bytes, strict: bool
) -> tuple[ImportReport | FileProblem, Parsed | None, set[int]]:
    """The properties of any import of any file. Returns the outcome, the file as read, and
    the lines of the rows rejected."""
    outcome = run_import(case, kind, strict=strict)
    no_leftovers(case)
    out = rejected_path(case.path)
    if isinstance(outcome, FileProblem):
        # Refused as a whole: nothing stored, no rejected rows written.
        assert str(outcome)
        assert table_counts(case.engine) == case.before
        assert not out.exists()
        note("refused as a whole")
        return outcome, None, set()
    report = outcome
    stored_rows = report.rows - report.rejected
    note(
        "strict: aborted"
        if report.strict_aborted
        else "rows stored and rows rejected"
        if stored_rows and report.rejected
        else "every row stored"
        if stored_rows
        else "every row rejected"
        if report.rejected
        else "no rows"
    )
    assert report.kind == kind and report.rejected <= report.rows
    if report.strict_aborted:
        assert strict and report.rejected > 0
        assert (report.inserted, report.updated, report.unchanged) == (0, 0, 0)
        assert report.customers_created == 0
        assert table_counts(case.engine) == case.before
    else:
        assert report.rows == (
            report.inserted + report.updated + report.unchanged + report.rejected
        ), report.summary()
    parsed = read_file(data)
    assert report.rows == len(parsed.records)
    rejected_lines = check_rejected_file(kind, report, out, parsed)
    assert report.summary()
    return report, parsed, rejected_lines


def check_rejected_file(kind: str, report: ImportReport, out: Path, parsed: Parsed) -> set[int]:
    """Every rejected row is in the rejected file, once, with its line and a reason, its
    cells as in the file (guarded against spreadsheets, which importing again undoes), the
    reason in the reason column. Returns the lines rejected."""
    if not report.rejected:
        assert report.rejected_path is None and not out.exists()
        return set()
    assert report.rejected_path == out
    header, *rows = read_rejected(out)
    reject_column = KINDS[kind].reject_column
    reason_pos = next((i for i, h in enumerate(parsed.header) if h.lower() == reject_column), None)
    names = [h for i, h in enumerate(parsed.header) if i != reason_pos]
    assert header == [neutralise(h) for h in [*names, reject_column]]
    assert len(rows) == report.rejected
    width = len(names)
    lines: set[int] = set()
    for row in rows:
        assert len(row) >= width + 1
        said = LINE.match(row[width])
        assert said, row[width]
        line, reason = int(said[1]), said[2]
        assert reason.strip() and line not in lines
        lines.add(line)
        original = parsed.records[line]
        if reason_pos is not None and len(original) > reason_pos:
            original = original[:reason_pos] + original[reason_pos + 1 :]
        cells = row[:width] + row[width + 1 :]
        expected = original + [""] * (width - len(original))
        assert [restore(c) for c in cells] == [restore(c) for c in expected]
        assert all(neutralise(c) == c for c in cells)  # no formula for a spreadsheet to run
    return lines


def kept_rows(parsed: Parsed, rejected: set[int]) -> list[dict[str, str]]:
    """The rows the import did not reject, cells as it reads them, by lower-cased column."""
    names = [h.lower() for h in parsed.header]
    return [
        {name: restore(cell).strip() for name, cell in zip(names, fields, strict=True)}
        for line, fields in parsed.records.items()
        if line not in rejected
    ]


def check_customers_stored(case: Case, report: ImportReport, parsed: Parsed, rejected: set[int]):
    """Into an empty database: exactly the customers of the rows not rejected, each once,
    with the name and stage of their row, and the first stage of their history."""
    t = TABLES["customers"]
    with case.engine.connect() as conn:
        got = sorted(tuple(r) for r in conn.execute(select(t.c.external_id, t.c.name, t.c.stage)))
    if report.strict_aborted:
        assert got == []
        return
    kept = kept_rows(parsed, rejected)
    expected = sorted(
        (r["external_id"], r["name"], (r.get("stage") or "awareness").lower()) for r in kept
    )
    assert got == expected
    assert len({r[0] for r in got}) == len(got)
    assert (report.inserted, report.updated, report.unchanged) == (len(kept), 0, 0)
    assert table_counts(case.engine)["stage_history"] == len(got)


def _by_value(row: tuple) -> tuple:
    ext, kind, value = row
    return ext, kind, value is None, value or 0.0


def check_events_stored(case: Case, report: ImportReport, parsed: Parsed, rejected: set[int]):
    """Into an empty database: one event per row not rejected, with its kind and value, and
    a customer for each external id among those rows, created with their first stage."""
    counts = table_counts(case.engine)
    if report.strict_aborted:
        assert counts["events"] == counts["customers"] == 0
        return
    kept = kept_rows(parsed, rejected)
    events, customers = TABLES["events"], TABLES["customers"]
    with case.engine.connect() as conn:
        got = conn.execute(
            select(customers.c.external_id, events.c.kind, events.c.value).join(
                customers, customers.c.id == events.c.customer_id
            )
        )
        got = sorted((tuple(r) for r in got), key=_by_value)
    expected = [
        (
            r["customer_external_id"],
            r["kind"].lower(),
            float(r["value"]) if r.get("value") else None,
        )
        for r in kept
    ]
    assert got == sorted(expected, key=_by_value)
    assert counts["events"] == len(kept) == report.inserted
    assert (report.updated, report.unchanged) == (0, 0)
    ids = {r["customer_external_id"] for r in kept}
    assert sorted(stored(case.engine, "customers", "external_id")) == sorted(ids)
    assert report.customers_created == len(ids) == counts["stage_history"]


# --- files -------------------------------------------------------------------------------------

# --strict now and then: most examples should store what they can.
stricts = st.sampled_from([False, False, False, True])
newlines = st.sampled_from(["\n", "\r\n", "\n", "\r\n", "\r", "", "\n\n"])
# What each column may hold: values that pass, and values refused or on an edge.
GOOD_TIMES = [
    "2024-05-01", "2024-05-01T10:00:00Z", "2024-05-01 07:00", "2024-05-01T10:00:00+14:00",
    "2026-11-25T11:59:59Z", "1970-01-01", "1970-01-01T00:00:00", "2024-05-01T10:00:00.5Z",
]  # fmt: skip
BAD_TIMES = [
    "1969-12-31T23:00:00-05:00", "0002-01-01", "9999-12-31", "9999-12-31T23:00-05:00",
    "2026-11-25T12:00:01Z", "2024-13-01", "01/05/2024", "2024-05-01T10:00:00.123456789Z",
]  # fmt: skip
ids = st.one_of(
    st.sampled_from(["A1", "B2", "C3", " A1 ", "x" * 200]),
    st.from_regex(r"[A-Za-z0-9_.-]{1,8}", fullmatch=True),
    st.text(min_size=1, max_size=8),
)
COLUMNS: dict[str, tuple[st.SearchStrategy[str], list[str]]] = {
    # column: (what passes, what is refused or on an edge)
    "external_id": (ids, ["", "x" * 201, "'=1+2", "@a"]),
    "name": (
        st.one_of(st.sampled_from(["Acme", "Zoë & <Co>", "N" * 300]), st.text(max_size=12)),
        ["", "N" * 301],
    ),
    "email": (st.sampled_from(["", "ops@acme.io", "a.b@c.co"]), ["a@b", "x@" + "y" * 320]),
    "stage": (st.sampled_from(["", "purchase", "Retention", " advocacy "]), ["vip"]),
    "mrr": (st.sampled_from(["", "12.5", "0", "-0", "1e308"]), ["-1", "1e309", "nan", "$5"]),
    "signup_date": (
        st.sampled_from(["", *GOOD_TIMES]),
        ["0001-01-01", "1969-12-31", *BAD_TIMES[2:]],
    ),
    "stage_since": (st.sampled_from(["", *GOOD_TIMES]), BAD_TIMES),
    "tags": (st.sampled_from(["", "vip; emea;vip", ";;", "a;" * 50]), []),
    "locale": (st.sampled_from(["", "en", "pt-BR"]), ["xx_bad", "EN"]),
    "timezone": (st.sampled_from(["", "Asia/Jakarta", "UTC"]), ["Nowhere/Land", "../etc"]),
    "slack_user_id": (st.sampled_from(["", "U0ABC123", "W0X1"]), ["u0abc", "@sari"]),
    "owner_slack_id": (st.sampled_from(["", "U0OWNER1"]), ["Sari"]),
    "kind": (
        st.sampled_from(["login", "purchase", "Purchase", "nps", "csat", "NPS"]),
        ["", "ces", "k" * 61],
    ),
    "occurred_at": (st.sampled_from(GOOD_TIMES), BAD_TIMES),
    "responded_at": (st.sampled_from(GOOD_TIMES), BAD_TIMES),
    "moved_at": (st.sampled_from(GOOD_TIMES), BAD_TIMES),
    "value": (st.sampled_from(["", "1", "12.5", "-3"]), ["1e309", "nan", "abc"]),
    "score": (st.sampled_from(["0", "10", "4", "5", " 7 "]), ["11", "4.5", "-1"]),
    "event_id": (st.sampled_from(["", "e1", "e2", "e3"]), ["x" * 201]),
    "by": (st.sampled_from(["", "U0SALES1", "Sari"]), []),
}
COLUMNS["customer_external_id"] = COLUMNS["external_id"]
NOISE = ["", " ", "'", "''", "\x00", "\udc80", "é", "\t=x", "a\nb", 'say "hi"', "a,b", "\r"]
noise = st.one_of(st.sampled_from(NOISE), st.text(max_size=12))


def column_cells(name: str, kind: str, *, clean: bool) -> st.SearchStrategy[str]:
    """What passes in column `name`; unless `clean`, now and then what does not."""
    good, bad = COLUMNS.get(name.strip().lower(), (st.text(max_size=12), []))
    if kind in ("feedback", "stages") and name == "customer_external_id":
        good = st.one_of(st.sampled_from([*KNOWN_CUSTOMERS, " A1 "]), good)  # mostly known
    if clean:
        return good
    refused = st.sampled_from(bad) if bad else noise
    return st.one_of(good, good, good, refused, noise)


def header_rows(header: str, kind: str) -> st.SearchStrategy[list[list[str]]]:
    """Rows for `header`: rows that should pass, rows with a cell or two that should not,
    and rows of any length."""
    columns = [restore(n).strip().lower() for n in header.split(",")]
    clean = st.tuples(*(column_cells(c, kind, clean=True) for c in columns)).map(list)
    dirty = st.tuples(*(column_cells(c, kind, clean=False) for c in columns)).map(list)
    any_length = st.lists(st.one_of(*(column_cells(c, kind, clean=False) for c in columns)))
    return st.lists(st.one_of(clean, clean, dirty, any_length), max_size=12)


def csv_rows(rows: list[list[str]], terminator: str) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator=terminator).writerows(rows)
    return out.getvalue()


def as_bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


# A valid header, then rows that are CSV (most of them nearly right), then maybe noise.
def structured(kind: str) -> st.SearchStrategy[bytes]:
    return st.sampled_from(HEADERS[kind]).flatmap(
        lambda header: st.builds(
            lambda bom, nl, rows, terminator, tail: (
                (b"\xef\xbb\xbf" if bom else b"")
                + as_bytes(header + nl + csv_rows(rows, terminator))
                + tail
            ),
            st.booleans(),
            newlines,
            header_rows(header, kind),
            st.sampled_from(["\r\n", "\n", "\r"]),
            st.one_of(st.just(b""), st.just(b""), st.binary(max_size=40)),
        )
    )


# A valid header followed by arbitrary bytes.
def header_then_bytes(kind: str) -> st.SearchStrategy[bytes]:
    return st.builds(
        lambda header, nl, body: as_bytes(header + nl) + body,
        st.sampled_from(HEADERS[kind]),
        newlines,
        st.binary(max_size=2000),
    )


def files(kind: str) -> st.SearchStrategy[bytes]:
    return st.one_of(structured(kind), header_then_bytes(kind), st.binary(max_size=500))


# --- the tests ---------------------------------------------------------------------------------


@FUZZ
@given(data=files("customers"), zone=st.sampled_from(ZONES), strict=stricts)
def test_customers_file_of_any_bytes(new_case, data, zone, strict):
    case = new_case("customers", data, zone)
    report, parsed, rejected = check_import(case, "customers", data, strict)
    if isinstance(report, ImportReport):
        assert parsed is not None
        check_customers_stored(case, report, parsed, rejected)


@FUZZ
@given(data=files("events"), zone=st.sampled_from(ZONES), strict=stricts)
def test_events_file_of_any_bytes(new_case, data, zone, strict):
    case = new_case("events", data, zone)
    report, parsed, rejected = check_import(case, "events", data, strict)
    if isinstance(report, ImportReport):
        assert parsed is not None
        check_events_stored(case, report, parsed, rejected)


@FUZZ_HALF
@given(
    kind=st.sampled_from(["feedback", "stages"]),
    data=st.data(),
    zone=st.sampled_from(ZONES),
    strict=stricts,
)
def test_feedback_and_stages_files_of_any_bytes(new_case, kind, data, zone, strict):
    """Into a database that knows KNOWN_CUSTOMERS: only rows naming one of them are stored."""
    body = data.draw(files(kind), label="file")
    case = new_case(kind, body, zone)
    report, parsed, rejected = check_import(case, kind, body, strict)
    if not isinstance(report, ImportReport) or report.strict_aborted:
        return
    assert parsed is not None
    after = table_counts(case.engine)
    assert after["customers"] == case.before["customers"]
    # Only rows naming a known customer are stored: rows for anyone else are rejected.
    kept = [r["customer_external_id"] for r in kept_rows(parsed, rejected)]
    assert set(kept) <= set(KNOWN_CUSTOMERS)
    if kind == "feedback":
        assert after["feedback"] == len(kept) == report.inserted


@FUZZ
@given(kind=st.sampled_from(sorted(KINDS)), data=st.binary(max_size=3000))
def test_a_file_of_nothing_but_bytes(new_case, kind, data):
    """No header at all: refused as a whole, or (rarely) read as CSV all the same."""
    case = new_case(kind, data, ZONES[0])
    check_import(case, kind, data, strict=False)


# --- on both backends ----------------------------------------------------------------------------


def empty_tables(engine: Engine) -> None:
    with engine.begin() as conn:
        for name in ("events", "feedback", "stage_history", "customers"):
            conn.execute(delete(TABLES[name]))


@pytest.fixture
def shared_case(engine, tmp_path) -> Iterator:
    """Cases on the test's database (SQLite or PostgreSQL), emptied for every example."""

    def make(kind: str, data: bytes, zone: ZoneInfo) -> Case:
        empty_tables(engine)
        folder = Path(tempfile.mkdtemp(dir=tmp_path))
        path = folder / f"{kind}.csv"
        path.write_bytes(data)
        url = engine.url.render_as_string(hide_password=False)
        before = table_counts(engine)
        assert set(before.values()) == {0}
        return Case(folder, path, engine, Settings(database_url=url, timezone=zone), before)

    yield make


@FUZZ_BOTH
@given(
    kind=st.sampled_from(["customers", "events"]),
    data=st.data(),
    zone=st.sampled_from(ZONES),
    strict=stricts,
)
def test_imports_on_both_backends(shared_case, kind, data, zone, strict):
    body = data.draw(st.one_of(structured(kind), header_then_bytes(kind)), label="file")
    case = shared_case(kind, body, zone)
    report, parsed, rejected = check_import(case, kind, body, strict)
    if isinstance(report, ImportReport):
        assert parsed is not None
        check = check_customers_stored if kind == "customers" else check_events_stored
        check(case, report, parsed, rejected)


# --- known bugs, kept as they are found (strict: a fix makes these fail, to be un-marked) ---


def test_a_signup_on_the_first_day_there_is(new_case):
    """A team east of UTC (Asia/Jakarta): midnight on 0001-01-01 there is before the first
    moment a datetime holds in UTC; the placeholder date rejects its row, and the import
    goes on."""
    data = b"external_id,name,signup_date\nA1,Acme,0001-01-01\nB2,Beta,2024-05-01\n"
    case = new_case("customers", data, ZoneInfo("Asia/Jakarta"))
    report, parsed, rejected = check_import(case, "customers", data, strict=False)
    assert isinstance(report, ImportReport) and parsed is not None
    check_customers_stored(case, report, parsed, rejected)


def test_an_events_file_with_extra_columns(shared_case):
    """Events with extra columns keep their value and their number in the file apart (a
    once-swapped tuple stored the value as `seq`, and failed on PostgreSQL)."""
    data = (
        b"customer_external_id,kind,occurred_at,value,channel\n"
        b"A1,login,2024-05-01,5,web\nA1,login,2024-05-01,7,app\n"
    )
    case = shared_case("events", data, ZONES[0])
    report, parsed, rejected = check_import(case, "events", data, strict=False)
    assert isinstance(report, ImportReport) and parsed is not None
    check_events_stored(case, report, parsed, rejected)
