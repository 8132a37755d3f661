"""`clmbot demo` as a newcomer runs it: the README's tour as written, a script, a pipe;
and what it leaves behind (nothing, unless asked)."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from clmbot.cli import cli
from clmbot.store.db import make_engine
from clmbot.store.migrate import require_current

README = Path(__file__).parents[2] / "README.md"


def readme_tour() -> list[str]:
    text = README.read_text(encoding="utf-8")
    block = re.search(r"<!-- demo-tour -->\n```text\n(.*?)\n```", text, re.S)
    assert block, "README.md has no tour after <!-- demo-tour -->"
    return block.group(1).splitlines()


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    """An empty working folder, and a temporary folder of our own to see what is left."""
    work, temp = tmp_path / "work", tmp_path / "temp"
    work.mkdir()
    temp.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    return work, temp


def demo(*args: str, stdin: str | None = None):
    return CliRunner().invoke(cli, ["demo", *args], input=stdin, catch_exceptions=False)


@pytest.mark.parametrize("today", ["2026-12-05", "2026-12-07"])  # a Saturday, a Monday
def test_the_readme_tour_runs_as_written_and_leaves_nothing_behind(private_tmp, today):
    work, temp = private_tmp
    (work / "tour.txt").write_text("\n".join(readme_tour()) + "\n")
    result = demo("--script", "tour.txt", "--today", today)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "sari > /clm survey nps C0001" in out  # the transcript echoes every line
    assert "Queued 1 NPS survey for C0001" in out
    assert "── clmbot in #customer-alerts" in out and "DRIFTING TOWARD CHURN" in out
    assert re.search(r"── clmbot in DM with .* \(C0001\) · \w{3} \d\d \w{3} 09:00", out)
    assert "NPS 9/10" in out and "the reports save us hours" in out
    assert "(pressed [1] Assign to me)" in out and "Assigned to @sari" in out
    assert "At risk:" in out
    assert "\x1b[" not in out  # no colour when not a terminal
    assert [p.name for p in work.iterdir()] == ["tour.txt"]
    assert [p.name for p in temp.iterdir() if "clmbot-demo" in p.name] == []


def test_piped_lines_run_like_a_script(private_tmp):
    result = demo("--today", "2026-12-07", stdin="/clm funnel\n:as budi\n/clm nps\n")
    assert result.exit_code == 0, result.output
    assert "sari > /clm funnel" in result.stdout and "budi > /clm nps" in result.stdout
    assert "NPS, " in result.stdout


def test_a_script_line_that_cannot_be_done_stops_with_its_line_number(private_tmp):
    work, _ = private_tmp
    (work / "bad.txt").write_text("/clm funnel\n# a comment\n:click 9\n/clm nps\n")
    result = demo("--script", "bad.txt", "--today", "2026-12-07")
    assert result.exit_code == 2
    assert result.stderr == (
        "clmbot: bad.txt line 3: no message with buttons yet: ask for one, e.g. /clm at-risk\n"
    )
    assert "sari > /clm nps" not in result.stdout


def test_a_missing_script_is_refused(private_tmp):
    result = demo("--script", "nope.txt")
    assert result.exit_code == 2
    assert "cannot read the script nope.txt" in result.stderr and "Traceback" not in result.output


def test_the_database_can_be_kept_and_explored_with_the_real_commands(private_tmp):
    work, _ = private_tmp
    result = demo("--db", "shop.db", "--today", "2026-12-02", stdin=":advance 1d\n")
    assert result.exit_code == 0, result.output
    assert f"DATABASE_URL=sqlite:///{work / 'shop.db'} clmbot funnel" in result.stdout
    engine = make_engine(f"sqlite:///{work / 'shop.db'}", create=False)
    require_current(engine)
    engine.dispose()
    at_risk = CliRunner().invoke(
        cli, ["at-risk"], env={"DATABASE_URL": f"sqlite:///{work / 'shop.db'}"}
    )
    assert at_risk.exit_code == 0 and "At risk" in at_risk.stdout
    again = demo("--db", "shop.db")
    assert again.exit_code == 2 and "exists: the demo builds a new database" in again.stderr


def test_charts_can_be_kept(private_tmp):
    work, _ = private_tmp
    result = demo("--out", "charts", "--today", "2026-12-07", stdin="/clm nps chart\n")
    assert result.exit_code == 0, result.output
    assert (work / "charts" / "nps-trend.png").read_bytes()[:4] == b"\x89PNG"
    assert f"Charts and exports are in {work / 'charts'}." in result.stdout


def test_the_same_seed_and_day_give_the_same_demo(private_tmp):
    args = ("--seed", "11", "--today", "2026-12-07")
    first = demo(*args, stdin="/clm at-risk\n/clm feedback\n")
    second = demo(*args, stdin="/clm at-risk\n/clm feedback\n")
    assert first.stdout == second.stdout
    other = demo("--seed", "12", "--today", "2026-12-07", stdin="/clm at-risk\n/clm feedback\n")
    assert other.stdout != first.stdout


def test_a_database_name_a_url_would_misread_is_refused(private_tmp):
    for name in ("real.db?", "x?mode=ro.db", "pct%20.db", "a#b.db"):
        result = demo("--db", name)
        assert result.exit_code == 2 and "without ?, # or %" in result.stderr
    assert list(private_tmp[0].iterdir()) == []


@pytest.mark.parametrize("day", ["1970-01-01", "2101-01-01"])
def test_a_day_the_sample_cannot_count_back_from_is_refused(private_tmp, day):
    result = demo("--today", day)
    assert result.exit_code == 2 and "--today must be between" in result.stderr


def test_a_script_that_is_not_utf8_names_its_line(private_tmp):
    work, _ = private_tmp
    (work / "bad.txt").write_bytes(b"/clm funnel\n:dm C0001 9 caf\xe9\n")
    result = demo("--script", "bad.txt", "--today", "2026-12-07")
    assert result.exit_code == 2
    assert result.stderr == "clmbot: bad.txt line 2 is not UTF-8 text: save the script as UTF-8\n"
    assert "Funnel on" in result.stdout  # line 1 ran


def test_a_demo_killed_or_hung_up_on_leaves_nothing_behind(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    temp = tmp_path / "temp"
    temp.mkdir()
    env = {**os.environ, "TMPDIR": str(temp)}
    env.pop("DATABASE_URL", None)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        proc = subprocess.Popen(
            [sys.executable, "-m", "clmbot.cli", "demo", "--today", "2026-12-07"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=tmp_path,
            env=env,
        )
        deadline = time.monotonic() + 60
        while not any(p.name.startswith("clmbot-demo-") for p in temp.iterdir()):
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        assert proc.stdout is not None
        proc.stdout.readline()  # the banner: the demo is up, waiting for lines
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 128 + sig, err
        left = [p.name for p in temp.iterdir() if p.name.startswith("clmbot-demo")]
        assert left == [], (sig, err, [list((temp / n).rglob("*")) for n in left])


def test_a_reader_that_stops_early_ends_the_demo_quietly(tmp_path):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    command = (
        f"printf '/clm funnel\\n/clm nps\\n/clm csat\\n' | {sys.executable} -m clmbot.cli demo"
    )
    out = subprocess.run(
        f"{command} --today 2026-12-07 | head -1",
        shell=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert out.stdout.startswith("clmbot demo:")
    assert "Traceback" not in out.stderr and "went wrong" not in out.stderr
