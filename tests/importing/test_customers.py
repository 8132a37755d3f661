from datetime import UTC, date, datetime, timedelta

import pytest

from clmbot.importing.runner import FileProblem, import_file
from tests.helpers import read_rejected, rows, snapshot, statements, write_csv

CUSTOMERS = """
external_id,name,email,slack_user_id,stage,owner_slack_id,plan,region,mrr,signup_date,tags,industry
A1,Acme Corp,ops@acme.io,U0AAA1,purchase,U0OWN1,pro,EU,1250.50,2024-01-15,vip; emea,retail
B2,Beta Ltd,,,retention,,team,APAC,90,2023-06-01,,
C3,Gamma,gamma@example.com,,,,,,,,,software
"""


def test_inserts_customers_with_every_column(engine, settings, now, tmp_path):
    path = write_csv(tmp_path / "customers.csv", CUSTOMERS)
    report = import_file(engine, "customers", path, settings, now=now)
    assert (report.rows, report.inserted, report.updated, report.unchanged, report.rejected) == (
        3,
        3,
        0,
        0,
        0,
    )
    assert report.rejected_path is None and not (tmp_path / "customers.rejected.csv").exists()
    got = rows(
        engine,
        "customers",
        "external_id",
        "name",
        "email",
        "slack_user_id",
        "stage",
        "owner_slack_id",
        "plan",
        "region",
        "mrr",
        "signup_date",
        "tags",
        "attributes",
        "locale",
        "created_at",
    )
    assert got[0] == (
        "A1",
        "Acme Corp",
        "ops@acme.io",
        "U0AAA1",
        "purchase",
        "U0OWN1",
        "pro",
        "EU",
        1250.5,
        date(2024, 1, 15),
        ["vip", "emea"],
        {"industry": "retail"},
        "",  # no locale column: Slack's locale is asked when surveying
        now,
    )
    # an empty stage is the first stage; empty extra cells are not kept
    assert got[2][4] == "awareness" and got[1][11] == {}
    history = rows(
        engine, "stage_history", "customer_id", "from_stage", "to_stage", "at", "by", "basis"
    )
    # the first stage is dated from the signup (midnight in the team's zone, UTC here);
    # without a signup date, only the import knows it, and says so
    assert [h[1:] for h in history] == [
        (None, "purchase", datetime(2024, 1, 15, tzinfo=UTC), "import", "signup"),
        (None, "retention", datetime(2023, 6, 1, tzinfo=UTC), "import", "signup"),
        (None, "awareness", now, "import", "import"),
    ]


def test_importing_the_same_file_twice_changes_nothing(engine, settings, now, tmp_path):
    path = write_csv(tmp_path / "customers.csv", CUSTOMERS)
    import_file(engine, "customers", path, settings, now=now)
    before = snapshot(engine)
    again = import_file(engine, "customers", path, settings, now=now + timedelta(days=1))
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 3)
    assert snapshot(engine) == before


def test_a_first_import_looks_nobody_up_and_a_second_one_does(engine, settings, now, tmp_path):
    """Into an empty table every row is new (only imports create customers, one at a time,
    and a file names each customer once): a first import of a million customers spent a
    tenth of its time asking for customers that could not be there."""
    path = write_csv(tmp_path / "customers.csv", CUSTOMERS)
    twice = write_csv(tmp_path / "twice.csv", "external_id,name\nN1,New\nN1,Again")
    with statements(engine, "SELECT customers.id, customers.external_id") as looked_up:
        first = import_file(engine, "customers", path, settings, now=now)
        assert (first.inserted, looked_up) == (3, [])
        again = import_file(engine, "customers", twice, settings, now=now)
    assert (again.inserted, again.rejected) == (1, 1)  # a name twice in a file: refused
    assert len(looked_up) == 1
    assert len(rows(engine, "customers", "id")) == 4


def test_a_changed_row_updates_and_a_changed_stage_is_history(engine, settings, now, tmp_path):
    import_file(engine, "customers", write_csv(tmp_path / "c.csv", CUSTOMERS), settings, now=now)
    later = now + timedelta(days=3)
    changed = write_csv(
        tmp_path / "c2.csv",
        """
        external_id,name,plan,stage,industry,tags
        A1,Acme Corp,enterprise,retention,,
        B2,Beta Ltd,,,,
        """,
    )
    report = import_file(engine, "customers", changed, settings, now=later)
    assert (report.inserted, report.updated, report.unchanged) == (0, 1, 1)
    a1 = rows(
        engine,
        "customers",
        "external_id",
        "plan",
        "stage",
        "email",
        "attributes",
        "tags",
        "updated_at",
        "created_at",
    )[0]
    # empty cells keep what is stored: e-mail, attributes and tags survive a partial export
    assert a1 == (
        "A1",
        "enterprise",
        "retention",
        "ops@acme.io",
        {"industry": "retail"},
        ["vip", "emea"],
        later,
        now,
    )
    moves = rows(engine, "stage_history", "from_stage", "to_stage", "at", "by", "reason")
    assert ("purchase", "retention", later, "import", "import of c2.csv") in moves


def test_extra_columns_merge_into_attributes(engine, settings, now, tmp_path):
    import_file(engine, "customers", write_csv(tmp_path / "c.csv", CUSTOMERS), settings, now=now)
    more = write_csv(tmp_path / "c2.csv", "external_id,name,seats\nA1,Acme Corp,40")
    import_file(engine, "customers", more, settings, now=now)
    attrs = rows(engine, "customers", "external_id", "attributes")[0][1]
    assert attrs == {"industry": "retail", "seats": "40"}


def test_locale_and_timezone_columns(engine, settings, now, tmp_path):
    path = write_csv(
        tmp_path / "c.csv",
        "external_id,name,locale,timezone\nA1,Acme,id,Asia/Jakarta\nB2,Beta,xx_bad,Nowhere/Land",
    )
    report = import_file(engine, "customers", path, settings, now=now)
    assert report.inserted == 1
    assert rows(engine, "customers", "locale", "timezone") == [("id", "Asia/Jakarta")]
    reason = read_rejected(tmp_path / "c.rejected.csv")[0]["reason"]
    assert "line 3" in reason and "locale" in reason


BAD = """
external_id,name,email,stage,mrr,signup_date
G1,Good One,good@example.com,purchase,10,2024-01-01
X1,Bad Mail,not-an-email,,,
X2,Bad Stage,,lead,,
X3,Bad Date,,,,31/12/2024
X4,Bad Money,,,"$1,200",
X5,Future,,,,2031-01-01
,No Id,,,,
X7,,,,,
G1,Good One Again,,,,
G2,Good Two,,advocacy,0,2020-02-29
"""


@pytest.mark.usefixtures("checking_mode")
def test_bad_rows_are_rejected_with_reasons_and_the_rest_imported(engine, settings, now, tmp_path):
    path = write_csv(tmp_path / "customers.csv", BAD)
    report = import_file(engine, "customers", path, settings, now=now)
    assert (report.rows, report.inserted, report.rejected) == (10, 2, 8)
    assert report.rejected_path == tmp_path / "customers.rejected.csv"
    rejected = read_rejected(report.rejected_path)
    assert list(rejected[0]) == [
        "external_id",
        "name",
        "email",
        "stage",
        "mrr",
        "signup_date",
        "reason",
    ]
    reasons = {r["external_id"] or r["name"]: r["reason"] for r in rejected}
    assert "line 3" in reasons["X1"] and "not an e-mail address" in reasons["X1"]
    assert (
        "'lead' is not a stage; use one of: awareness, consideration, purchase, retention, "
        "advocacy, churned"
    ) in reasons["X2"]
    assert "not an ISO 8601 date" in reasons["X3"]
    assert "not a number" in reasons["X4"]
    assert "in the future" in reasons["X5"]
    assert "external_id is empty" in reasons["No Id"]
    assert "name is empty" in reasons["X7"]
    assert "external_id G1 already appears on line 2" in reasons["G1"]
    assert rows(engine, "customers", "external_id", "name") == [
        ("G1", "Good One"),
        ("G2", "Good Two"),
    ]


def test_a_corrected_rejected_file_imports_as_is(engine, settings, now, tmp_path):
    path = write_csv(tmp_path / "customers.csv", "external_id,name,email\nA1,Acme,bad-mail")
    import_file(engine, "customers", path, settings, now=now)
    rejected = tmp_path / "customers.rejected.csv"
    rejected.write_text(rejected.read_text().replace("bad-mail", "ops@acme.io"))
    report = import_file(engine, "customers", rejected, settings, now=now)
    assert report.inserted == 1 and report.rejected == 0
    # the reason column is not taken for an attribute
    assert rows(engine, "customers", "email", "attributes") == [("ops@acme.io", {})]


@pytest.mark.usefixtures("checking_mode")
def test_strict_imports_nothing_when_a_row_is_bad(engine, settings, now, tmp_path):
    path = write_csv(tmp_path / "customers.csv", BAD)
    report = import_file(engine, "customers", path, settings, now=now, strict=True)
    assert report.strict_aborted and report.inserted == 0 and report.rejected == 8
    assert "nothing imported (--strict)" in report.summary()
    assert rows(engine, "customers", "external_id") == []
    assert rows(engine, "stage_history", "id") == []
    assert len(read_rejected(tmp_path / "customers.rejected.csv")) == 8


def test_a_clean_import_removes_a_stale_rejected_file(engine, settings, now, tmp_path):
    path = write_csv(tmp_path / "customers.csv", "external_id,name\nA1,Acme")
    (tmp_path / "customers.rejected.csv").write_text("external_id,name,reason\n")
    report = import_file(engine, "customers", path, settings, now=now)
    assert not (tmp_path / "customers.rejected.csv").exists()
    assert "removed customers.rejected.csv" in report.summary()


@pytest.mark.usefixtures("checking_mode")
def test_missing_required_column_imports_nothing(engine, settings, now, tmp_path):
    path = write_csv(tmp_path / "customers.csv", "external_id,email\nA1,a@b.co")
    with pytest.raises(FileProblem) as err:
        import_file(engine, "customers", path, settings, now=now)
    assert "required column name missing" in str(err.value)
    assert rows(engine, "customers", "id") == []


def test_stage_since_dates_the_current_stage(engine, db_url, now, tmp_path):
    from zoneinfo import ZoneInfo

    from clmbot.config import Settings

    settings = Settings(database_url=db_url, timezone=ZoneInfo("Asia/Jakarta"))
    path = write_csv(
        tmp_path / "c.csv",
        """
        external_id,name,stage,signup_date,stage_since
        A1,Acme,retention,2025-07-05,2026-02-01T10:00:00Z
        B2,Beta,purchase,2025-07-05,
        C3,Gamma,retention,,2026-03-01
        D4,Delta,retention,,tomorrow
        """,
    )
    report = import_file(engine, "customers", path, settings, now=now)
    assert (report.inserted, report.rejected) == (3, 1)
    assert (
        "stage_since 'tomorrow' is not an ISO 8601"
        in read_rejected(tmp_path / "c.rejected.csv")[0]["reason"]
    )
    history = rows(engine, "stage_history", "customer_id", "to_stage", "at", "basis")
    assert [h[1:] for h in history] == [
        ("retention", datetime(2026, 2, 1, 10, tzinfo=UTC), "exact"),
        # midnight in the team's zone (UTC+7)
        ("purchase", datetime(2025, 7, 4, 17, tzinfo=UTC), "signup"),
        ("retention", datetime(2026, 2, 28, 17, tzinfo=UTC), "exact"),
    ]


def test_a_stage_change_is_dated_by_stage_since_else_marked_as_found_by_the_import(
    engine, settings, now, tmp_path
):
    first = write_csv(
        tmp_path / "c.csv", "external_id,name,stage\nA1,Acme,purchase\nB2,Beta,purchase"
    )
    import_file(engine, "customers", first, settings, now=now - timedelta(days=30))
    changed = write_csv(
        tmp_path / "c2.csv",
        "external_id,name,stage,stage_since\nA1,Acme,retention,2026-11-20\nB2,Beta,retention,",
    )
    import_file(engine, "customers", changed, settings, now=now)
    moves = rows(engine, "stage_history", "customer_id", "from_stage", "to_stage", "at", "basis")
    assert [m[1:] for m in moves if m[1]] == [
        ("purchase", "retention", datetime(2026, 11, 20, tzinfo=UTC), "exact"),
        ("purchase", "retention", now, "import"),
    ]


def test_a_later_file_dates_a_first_stage_the_import_could_only_guess(
    engine, settings, now, tmp_path
):
    first = write_csv(tmp_path / "c.csv", "external_id,name,stage\nA1,Acme,retention")
    import_file(engine, "customers", first, settings, now=now - timedelta(days=3))
    assert rows(engine, "stage_history", "basis") == [("import",)]
    dated = write_csv(
        tmp_path / "c2.csv", "external_id,name,stage,signup_date\nA1,Acme,retention,2025-01-10"
    )
    report = import_file(engine, "customers", dated, settings, now=now)
    assert report.updated == 1  # the signup date, and the first stage re-dated by it
    assert rows(engine, "stage_history", "at", "basis") == [
        (datetime(2025, 1, 10, tzinfo=UTC), "signup")
    ]
    since = write_csv(
        tmp_path / "c3.csv", "external_id,name,stage,stage_since\nA1,Acme,retention,2025-06-01"
    )
    import_file(engine, "customers", since, settings, now=now)
    assert rows(engine, "stage_history", "at", "basis") == [
        (datetime(2025, 6, 1, tzinfo=UTC), "exact")
    ]
    before = snapshot(engine)
    import_file(engine, "customers", since, settings, now=now + timedelta(days=1))
    assert snapshot(engine) == before
