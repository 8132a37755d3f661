import csv
import io
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from clmbot.cli import cli
from tests.helpers import read_rejected, rows, write_csv

REPO = Path(__file__).parents[1]


@pytest.fixture
def run(db_url, tmp_path, monkeypatch):
    """`clmbot …` in an empty folder (no .env, no clmbot.toml) on the test database."""
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def invoke(*args: str, env: dict[str, str] | None = None):
        return runner.invoke(
            cli, list(args), env={"DATABASE_URL": db_url, **(env or {})}, catch_exceptions=False
        )

    return invoke


@pytest.fixture
def ready(run):
    result = run("db", "upgrade")
    assert result.exit_code == 0, result.stderr
    assert "schema at revision" in result.stdout
    return run


def test_help_lists_the_commands():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for command in ("db", "import", "funnel", "stage", "run"):
        assert f"  {command} " in result.stdout


def test_bot_py_help_lists_the_commands():
    out = subprocess.run(
        [sys.executable, str(REPO / "bot.py"), "--help"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    assert "import" in out.stdout and "funnel" in out.stdout


def test_work_on_a_database_without_schema_is_refused(run, tmp_path):
    path = write_csv(tmp_path / "c.csv", "external_id,name\nA1,Acme")
    result = run("import", "customers", str(path))
    assert result.exit_code == 2
    # SQLite: no database file at all (and none is made); PostgreSQL: no tables in it
    assert "has no clmbot tables yet; run: clmbot db upgrade" in result.stderr or (
        "there is no database at" in result.stderr
        and "create it with: clmbot db upgrade" in result.stderr
    )
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "clmbot.db").exists()


def test_db_current_reports_the_revision(ready):
    result = ready("db", "current")
    assert "up to date" in result.stdout


def test_a_bad_setting_stops_with_one_line(run):
    result = run("funnel", env={"CLMBOT_ALERT_TIME": "25:00"})
    assert result.exit_code == 2
    assert result.stderr == (
        "clmbot: CLMBOT_ALERT_TIME=25:00 is not a time of day; use HH:MM, e.g. 09:00\n"
    )


def test_an_unreachable_database_is_one_line(run):
    result = run("funnel", env={"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"})
    assert result.exit_code == 2
    assert result.stderr.startswith("clmbot: cannot use the database:")
    assert result.stderr.count("\n") == 1


def test_import_prints_the_summary_and_exits_0(ready, engine, tmp_path):
    path = write_csv(tmp_path / "customers.csv", "external_id,name\nA1,Acme\nB2,Beta")
    result = ready("import", "customers", str(path))
    assert result.exit_code == 0, result.stderr
    assert "customers: 2 rows: 2 inserted, 0 updated, 0 unchanged, 0 rejected in" in result.stdout
    again = ready("import", "customers", str(path))
    assert "0 inserted, 0 updated, 2 unchanged, 0 rejected" in again.stdout


# The bad files of the foundation issue, each with its documented behaviour.


def test_missing_required_column(ready, engine, tmp_path):
    path = write_csv(tmp_path / "events.csv", "customer_external_id,occurred_at\nA1,2024-05-01")
    result = ready("import", "events", str(path))
    assert result.exit_code == 1
    assert "required column kind missing from the header" in result.stderr
    assert rows(engine, "events", "id") == [] and not (tmp_path / "events.rejected.csv").exists()


def test_bad_date(ready, engine, tmp_path):
    path = write_csv(
        tmp_path / "events.csv",
        "customer_external_id,kind,occurred_at\nA1,login,2024-05-01\nA1,login,2024-13-45",
    )
    result = ready("import", "events", str(path))
    assert result.exit_code == 1
    assert "1 inserted, 0 updated, 0 unchanged, 1 rejected" in result.stdout
    assert "events.rejected.csv" in result.stdout
    (bad,) = read_rejected(tmp_path / "events.rejected.csv")
    assert bad["occurred_at"] == "2024-13-45"
    assert bad["reason"].startswith("line 3: occurred_at '2024-13-45' is not an ISO 8601")


def test_score_out_of_range(ready, engine, tmp_path):
    ready("import", "customers", str(write_csv(tmp_path / "c.csv", "external_id,name\nA1,Acme")))
    path = write_csv(
        tmp_path / "feedback.csv",
        "customer_external_id,kind,score,responded_at\nA1,csat,6,2024-05-01\nA1,nps,6,2024-05-01",
    )
    result = ready("import", "feedback", str(path))
    assert result.exit_code == 1
    (bad,) = read_rejected(tmp_path / "feedback.rejected.csv")
    assert bad["reason"] == "line 2: score 6 is out of range; CSAT scores are 1 to 5"
    assert rows(engine, "feedback", "kind", "score") == [("nps", 6)]


def test_same_id_twice(ready, engine, tmp_path):
    path = write_csv(tmp_path / "c.csv", "external_id,name\nA1,Acme\nA1,Acme Two\nB2,Beta")
    result = ready("import", "customers", str(path))
    assert result.exit_code == 1
    (bad,) = read_rejected(tmp_path / "c.rejected.csv")
    assert bad["name"] == "Acme Two"
    assert "already appears on line 2" in bad["reason"]
    assert rows(engine, "customers", "external_id", "name") == [("A1", "Acme"), ("B2", "Beta")]


def test_bytes_that_are_not_utf8_are_rejected_and_kept_byte_for_byte(ready, engine, tmp_path):
    path = tmp_path / "c.csv"
    path.write_bytes(b"external_id,name\nA1,Caf\xe9 Latin-1\nB2,Caf\xc3\xa9 UTF-8\n")
    result = ready("import", "customers", str(path))
    assert result.exit_code == 1
    assert rows(engine, "customers", "name") == [("Café UTF-8",)]
    raw = (tmp_path / "c.rejected.csv").read_bytes()
    assert b"A1,Caf\xe9 Latin-1,line 2: column 2 has bytes that are not UTF-8 (e9)" in raw
    assert b"save the file as UTF-8" in raw


def test_header_only_file_imports_zero_rows(ready, engine, tmp_path):
    path = write_csv(tmp_path / "c.csv", "external_id,name")
    result = ready("import", "customers", str(path))
    assert result.exit_code == 0
    assert "customers: 0 rows: 0 inserted" in result.stdout


def test_empty_file(ready, engine, tmp_path):
    path = tmp_path / "c.csv"
    path.write_bytes(b"")
    result = ready("import", "customers", str(path))
    assert result.exit_code == 1
    assert "c.csv is empty; it needs a header row: external_id, name" in result.stderr


def test_excel_bom_and_crlf_are_fine(ready, engine, tmp_path):
    path = tmp_path / "c.csv"
    path.write_bytes(b"\xef\xbb\xbfexternal_id,Name\r\nA1,Acme\r\n")
    result = ready("import", "customers", str(path))
    assert result.exit_code == 0, result.stdout
    assert rows(engine, "customers", "external_id", "name") == [("A1", "Acme")]


def test_missing_file_is_a_usage_error(ready, tmp_path):
    result = ready("import", "customers", str(tmp_path / "nope.csv"))
    assert result.exit_code == 2
    assert "nope.csv: no such file" in result.stderr


def test_unknown_kind_is_a_usage_error(ready, tmp_path):
    result = ready("import", "orders", str(tmp_path / "x.csv"))
    assert result.exit_code == 2
    assert "'orders' is not one of 'customers', 'events', 'feedback'" in result.stderr


def test_strict_exits_1_and_imports_nothing(ready, engine, tmp_path):
    path = write_csv(tmp_path / "c.csv", "external_id,name,email\nA1,Acme,a@b.co\nB2,Beta,nope")
    result = ready("import", "customers", str(path), "--strict")
    assert result.exit_code == 1
    assert "nothing imported (--strict): 1 of 2 rows rejected" in result.stdout
    assert rows(engine, "customers", "id") == []


def test_stage_and_funnel(ready, engine, tmp_path):
    ready(
        "import",
        "customers",
        str(write_csv(tmp_path / "c.csv", "external_id,name,stage\nA1,Acme,purchase")),
    )
    moved = ready("stage", "acme", "retention", "renewed", "for", "2027", "--by", "U0ADMIN")
    assert moved.exit_code == 0, moved.stderr
    assert moved.stdout == "Acme moved from purchase to retention (renewed for 2027).\n"
    again = ready("stage", "A1", "retention")
    assert again.stdout == "Acme is already in retention; nothing changed.\n"
    import getpass

    assert rows(engine, "audit_log", "actor", "action", "channel") == [
        ("U0ADMIN", "stage", "cli"),
        (f"cli:{getpass.getuser()}", "import", "cli"),  # the import, by whoever ran it
    ]
    bad = ready("stage", "A1", "vip")
    assert bad.exit_code == 2 and "'vip' is not a stage; use one of: awareness" in bad.stderr
    nobody = ready("stage", "Zeta", "retention")
    assert nobody.exit_code == 2 and "no customer matches 'Zeta'" in nobody.stderr
    funnel = ready("funnel", "--since", "30d")
    assert funnel.exit_code == 0
    assert "Funnel on" in funnel.stdout and "purchase → retention" in funnel.stdout
    assert "100%  (1 of 1)" in funnel.stdout
    bad_since = ready("funnel", "--since", "next week")
    assert bad_since.exit_code == 2 and "not a date or a period" in bad_since.stderr


def test_funnel_chart_is_written_here_privately(ready, tmp_path):
    ready(
        "import",
        "customers",
        str(write_csv(tmp_path / "c.csv", "external_id,name,stage\nA1,Acme,purchase")),
    )
    ready("stage", "A1", "retention")
    words = ready("funnel", "--since", "30d")
    assert words.exit_code == 0 and not (tmp_path / "funnel.png").exists()
    chart = ready("funnel", "--since", "30d", "--chart")
    assert chart.exit_code == 0, chart.stderr
    path = tmp_path / "funnel.png"
    assert chart.stdout.startswith("Customer funnel: 1 customer by stage on ")
    assert "(30 days), in funnel.png." in chart.stdout
    assert chart.stdout.endswith(f" Written to {path}\n")
    assert path.stat().st_mode & 0o777 == 0o600
    png = path.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert (int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")) == (800, 450)
    again = ready("funnel", "--chart")  # the default period; the file is replaced
    assert again.exit_code == 0 and "(90 days), in funnel.png." in again.stdout
    assert path.stat().st_mode & 0o777 == 0o600
    bad = ready("funnel", "--since", "next week", "--chart")
    assert bad.exit_code == 2 and "not a date or a period" in bad.stderr


def test_progress_bar_on_a_terminal(db_url, tmp_path):
    """On a terminal, stderr shows a progress bar; the summary still goes to stdout."""
    path = write_csv(tmp_path / "c.csv", "external_id,name\nA1,Acme")
    env = {**os.environ, "DATABASE_URL": db_url}
    subprocess.run(
        [sys.executable, "-m", "clmbot.cli", "db", "upgrade"],
        env=env,
        check=True,
        cwd=tmp_path,
        capture_output=True,
    )
    leader, follower = pty.openpty()
    out = subprocess.run(
        [sys.executable, "-m", "clmbot.cli", "import", "customers", str(path)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=follower,
        text=True,
        timeout=60,
    )
    os.close(follower)
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    os.close(leader)
    assert out.returncode == 0
    assert b"importing c.csv" in shown and b"100%" in shown
    assert "1 inserted" in out.stdout


def test_a_bug_is_one_line_and_a_report_file_not_a_traceback(ready, monkeypatch, tmp_path):
    import clmbot.commands.funnel

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))

    def broken(*args, **kwargs):
        raise ZeroDivisionError("oops")

    monkeypatch.setattr(clmbot.commands.funnel, "funnel", broken)
    result = ready("funnel")
    assert result.exit_code == 3
    assert result.stderr.startswith("clmbot: internal error ") and result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr
    report = Path(result.stderr.split("the details are in ")[1].split(",")[0])
    assert "ZeroDivisionError: oops" in report.read_text()
    report.unlink()


def test_a_new_sqlite_database_is_private(run, db_url, tmp_path):
    import stat

    if not db_url.startswith("sqlite"):
        pytest.skip("a SQLite file")
    assert run("db", "upgrade").exit_code == 0
    assert stat.S_IMODE((tmp_path / "clmbot.db").stat().st_mode) == 0o600


@pytest.mark.parametrize("args", [("funnel",), ("db", "current"), ("customer", "A1"), ("audit",)])
def test_commands_that_only_read_do_not_create_a_database(tmp_path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, list(args), env={"DATABASE_URL": "sqlite:///nothing.db"})
    assert result.exit_code == 2
    assert result.stderr == (
        "clmbot: there is no database at nothing.db; create it with: clmbot db upgrade (or set "
        "DATABASE_URL to the one you meant)\n"
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("postgresql://ann:s3cret@db.example:abc/crm", "is not a database URL"),
        ("postgresql://ann:s3cret@db.example:99999/crm", "names port 99999; a port is a number"),
        ("postgresql+asyncpg://ann:s3cret@db.example/crm", "asks for the driver asyncpg"),
        ("mysql://ann:s3cret@db.example/crm", "clmbot supports sqlite and postgresql"),
        ("s3cret", "is not a database URL"),
    ],
)
def test_a_bad_database_url_is_one_line_without_its_password(tmp_path, monkeypatch, url, says):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["funnel"], env={"DATABASE_URL": url})
    assert result.exit_code == 2
    assert says in result.stderr and result.stderr.count("\n") == 1
    if url != "s3cret":
        assert "s3cret" not in result.stderr


def test_customer_prints_the_card(ready, engine, tmp_path):
    ready(
        "import",
        "customers",
        str(
            write_csv(
                tmp_path / "c.csv",
                "external_id,name,email,stage,plan,mrr,signup_date,stage_since\n"
                "A1,Acme Corp,ops@acme.io,retention,pro,1250.5,2025-07-05,2026-01-10\n"
                "A2,Acme Labs,,awareness,,,,",
            )
        ),
    )
    ready(
        "import",
        "feedback",
        str(
            write_csv(
                tmp_path / "f.csv",
                "customer_external_id,kind,score,comment,responded_at\n"
                "A1,nps,9,Great support,2026-03-01",
            )
        ),
    )
    result = ready("customer", "A1")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "Acme Corp"
    assert "stage:           retention since 2026-01-10" in lines
    assert "MRR:             1,250.50" in lines
    assert "NPS, latest:     9 on 2026-03-01: “Great support”" in lines
    assert "  2026-01-10  started in retention, by import: created by import of c.csv" in lines
    several = ready("customer", "acme")
    assert several.exit_code == 2 and "Acme Corp (A1); Acme Labs (A2)" in several.stderr
    nobody = ready("customer", "Acne", "Crop")
    assert nobody.exit_code == 2
    assert "no customer matches 'Acne Crop'; closest names: Acme Corp" in nobody.stderr


def test_currency_and_a_churned_customers_mrr(ready, tmp_path):
    (tmp_path / "clmbot.toml").write_text('[display]\ncurrency = "€"\n')
    ready(
        "import",
        "customers",
        str(write_csv(tmp_path / "c.csv", "external_id,name,stage,mrr\nA1,Acme,churned,90")),
    )
    assert "MRR:             €90 before churned" in ready("customer", "A1").stdout.splitlines()
    (tmp_path / "clmbot.toml").write_text('[display]\ncurrency = "IDR"\n')
    ready("stage", "A1", "purchase", "won back", "--by", "U0ADMIN")
    assert "MRR:             IDR 90" in ready("customer", "A1").stdout.splitlines()


def test_audit_lists_the_changes(ready, tmp_path):
    ready(
        "import",
        "customers",
        str(write_csv(tmp_path / "c.csv", "external_id,name,stage\nA1,Acme,purchase")),
    )
    ready("stage", "A1", "retention", "renewed", "--by", "U0ADMIN")
    result = ready("audit", "--since", "7d")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Changes from ") and lines[0].endswith(": 2")
    assert lines[2].split() == ["when", "who", "what", "where", "customer"]
    assert lines[3].split()[2:] == [
        *("U0ADMIN", "stage", "cli", "Acme", "(A1)"),
        *("purchase", "→", "retention", "(renewed)"),
    ]
    assert lines[4].split()[3:6] == ["import", "cli", "—"]
    assert lines[4].endswith("customers from c.csv: 1 rows, 1 inserted, 0 updated, 0 rejected")
    assert ready("audit", "--since", "0d").exit_code == 0
    bad = ready("audit", "--since", "soon")
    assert bad.exit_code == 2 and "is not a date or a period" in bad.stderr


def test_funnel_since_today_and_calendar_words(ready):
    for since in ("0d", "today", "last month", "3mo"):
        result = ready("funnel", "--since", since)
        assert result.exit_code == 0, (since, result.stderr)
        assert result.stdout.startswith("Funnel on")


def test_the_sample_tells_a_story(ready, tmp_path):
    """Its dates end today: the first funnel shows conversions and stays, not dashes."""
    assert ready("sample", "data").exit_code == 0
    for kind in ("customers", "stages", "events", "feedback"):
        result = ready("import", kind, f"data/{kind}.csv")
        assert result.exit_code == 0, result.stdout + result.stderr
    funnel = ready("funnel", "--since", "30d").stdout
    conversion = next(ln for ln in funnel.splitlines() if ln.startswith("awareness → consid"))
    assert not conversion.split()[3].startswith("—") and "(0 of" not in conversion
    table = funnel.split("\n\n")[1].splitlines()
    stays = [ln for ln in table if ln.startswith(("awareness ", "purchase "))]
    assert len(stays) == 2 and all("(of " in ln for ln in stays)
    ready("sample", "again")
    assert (tmp_path / "data" / "events.csv").read_bytes() == (
        tmp_path / "again" / "events.csv"
    ).read_bytes()


def test_a_crash_report_is_private_and_holds_no_values(ready, tmp_path, monkeypatch):
    import stat

    from sqlalchemy import text

    import clmbot.commands.funnel
    from clmbot.store.db import make_engine

    state = tmp_path / "state"
    monkeypatch.setenv("XDG_STATE_HOME", str(state))

    def broken(session, **kwargs):
        # a bug that breaks a constraint, with a customer's e-mail among its values
        session.execute(
            text("INSERT INTO customers (external_id, email) VALUES (:v, :v)"),
            {"v": "jane@secret.example"},
        )

    monkeypatch.setattr(clmbot.commands.funnel, "funnel", broken)
    result = ready("funnel")
    assert result.exit_code == 3
    report = Path(result.stderr.split("the details are in ")[1].split(",")[0])
    assert report.parent == state / "clmbot" / "errors"
    assert stat.S_IMODE(report.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(report.stat().st_mode) == 0o600
    content = report.read_text()
    assert "INSERT INTO customers" in content and "jane@secret.example" not in content
    assert make_engine("sqlite://").hide_parameters


@pytest.mark.parametrize("since", ["00d", "0 d", "000w"])
def test_every_spelling_of_no_time_at_all_means_today(ready, since):
    result = ready("funnel", "--since", since)
    assert result.exit_code == 0, result.stderr


def test_a_password_with_an_at_sign_is_refused_without_showing_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    url = "postgresql://u:hun@ter2@127.0.0.1:5433/db"
    result = CliRunner().invoke(cli, ["funnel"], env={"DATABASE_URL": url})
    assert result.exit_code == 2
    assert "has an @ in its user name or password; write it as %40" in result.stderr
    assert "hun" not in result.stderr and "ter2" not in result.stderr


def test_an_over_long_slack_id_is_a_rejected_row(ready, engine, tmp_path):
    path = write_csv(
        tmp_path / "c.csv",
        "external_id,name,slack_user_id\nL1,Long,U" + "A" * 40 + "\nS1,Short,U0ABC",
    )
    result = ready("import", "customers", str(path))
    assert result.exit_code == 1
    assert "is not a Slack user ID" in read_rejected(tmp_path / "c.rejected.csv")[0]["reason"]
    assert rows(engine, "customers", "external_id") == [("S1",)]


def test_rejected_rows_that_cannot_be_written_import_nothing(ready, engine, tmp_path, monkeypatch):
    """A read-only folder (simulated: root writes through any mode) gets one line, exit 2,
    and nothing is imported: rows would otherwise be lost from both places."""
    import errno

    import clmbot.files

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    path = write_csv(tmp_path / "c.csv", "external_id,name,email\nA1,Acme,nope\nB2,Beta,")
    monkeypatch.setattr(clmbot.files.tempfile, "mkstemp", read_only)
    result = ready("import", "customers", str(path))
    assert result.exit_code == 2
    assert "cannot write the rejected rows to" in result.stderr
    assert "Read-only file system" in result.stderr
    assert rows(engine, "customers", "id") == []


def test_a_folder_where_the_rejected_file_goes_is_named_before_anything_is_imported(
    ready, engine, tmp_path
):
    path = write_csv(tmp_path / "c.csv", "external_id,name,email\nA1,Acme,nope\nB2,Beta,")
    (tmp_path / "c.rejected.csv").mkdir()
    result = ready("import", "customers", str(path))
    assert result.exit_code == 2
    assert "c.rejected.csv is a folder, where this import would write its rejected rows" in (
        result.stderr
    )
    assert rows(engine, "customers", "id") == []
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []


def test_ctrl_c_is_not_rejected_input(ready, monkeypatch):
    import clmbot.commands.funnel

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(clmbot.commands.funnel, "funnel", interrupted)
    result = ready("funnel")
    assert result.exit_code == 130
    assert result.stderr == "clmbot: stopped (Ctrl-C); what was under way was not saved\n"


def test_a_sample_that_cannot_be_written_is_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "taken").write_text("a file, not a folder")
    result = CliRunner().invoke(cli, ["sample", "taken/data"])
    assert result.exit_code == 2
    assert result.stderr.startswith("clmbot: cannot write the sample to taken/data")


def test_two_schema_upgrades_at_once_take_turns(db_url, tmp_path):
    """Two copies of the bot starting on a new database both upgrade it: one waits."""
    env = {**os.environ, "DATABASE_URL": db_url}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "clmbot.cli", "db", "upgrade"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs


@pytest.fixture
def business(ready, tmp_path):
    """Three customers and their answers, imported as a team would."""
    ready(
        "import",
        "customers",
        str(
            write_csv(
                tmp_path / "c.csv",
                "external_id,name,stage,plan,mrr,email\n"
                "A1,Acme Corp,retention,pro,1200,ops@acme.io\n"
                "B1,=cmd|' /C calc'!A0,purchase,pro,300,\n"
                "C1,Cosy Cafe,awareness,free,,",
            )
        ),
    )
    ready(
        "import",
        "feedback",
        str(
            write_csv(
                tmp_path / "f.csv",
                "customer_external_id,kind,score,comment,responded_at\n"
                "A1,nps,10,Love it,2026-10-01\nB1,nps,3,Too slow,2026-10-02\n"
                "C1,csat,5,,2026-10-03",
            )
        ),
    )
    return ready


def test_segment_nps_csat_feedback_on_the_terminal(business, tmp_path):
    table = business("segment", "plan:pro", "-stage:awareness")
    assert table.exit_code == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0] == "Segment plan:pro -stage:awareness: 2 customers, MRR 1,500."
    assert "stage      customers" in lines and "retention          1" in lines
    assert "`" not in table.stdout and "*" not in table.stdout  # no Slack markup
    exported = business("segment", "plan:pro", "--format", "csv")
    assert exported.exit_code == 0, exported.stderr
    rows = list(csv.reader(io.StringIO(exported.stdout)))
    assert rows[0][:2] == ["external_id", "name"]
    assert {r[0]: r[1] for r in rows[1:]}["B1"] == "'=cmd|' /C calc'!A0"  # not a formula
    nps = business("nps", "since", "2026-01-01")
    assert nps.exit_code == 0, nps.stderr
    assert nps.stdout.startswith("NPS, 2026-01-01 to ")
    assert "1 promoters, 0 passives, 1 detractors" in nps.stdout
    by = business("nps", "by", "plan")
    assert "pro " in by.stdout and "too few to mean much" in by.stdout
    chart = business("csat", "chart")
    assert chart.exit_code == 0, chart.stderr
    assert (tmp_path / "csat-trend.png").read_bytes().startswith(b"\x89PNG")
    comments = business("feedback", "detractors")
    assert "NPS 3 (detractor)" in comments.stdout and "“Too slow”" in comments.stdout
    bad = business("segment", "stag:x")
    assert bad.exit_code == 2
    assert "unknown field 'stag' at position 1; did you mean 'stage'?" in bad.stderr
    saved = business("segment", "save", "paying", "plan:pro")
    assert "Segment 'paying' saved: plan:pro (2 customers now)" in saved.stdout
    assert "paying          2  plan:pro" in business("segments").stdout


def test_workers_are_for_http_mode(run):
    env = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1", "SLACK_SIGNING_SECRET": "s"}
    result = run("run", "--workers", "2", env=env)
    assert result.exit_code == 2
    assert "--workers is for HTTP mode: add --http" in result.stderr
    assert "--serve-only" not in run("run", "--help").stdout
