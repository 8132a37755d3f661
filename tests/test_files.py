import os
import stat

import pytest

from clmbot.files import (
    PrivateFile,
    neutralise,
    private_dir,
    restore,
    scrub_values,
    write_private,
)


@pytest.mark.parametrize(
    ("cell", "shown"),
    [
        ("=1+1", "'=1+1"),
        ("+62 812 555", "'+62 812 555"),
        ("-cmd", "'-cmd"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("-5", "-5"),
        ("+1.5e3", "+1.5e3"),
        ("Acme", "Acme"),
        ("", ""),
        ("'=already", "'=already"),
    ],
)
def test_neutralise_and_restore(cell, shown):
    assert neutralise(cell) == shown
    if shown != cell:
        assert restore(shown) == cell


def test_a_private_file_appears_whole_and_replaces_a_link(tmp_path):
    target = tmp_path / "target"
    target.write_text("keep")
    link = tmp_path / "out.csv"
    link.symlink_to(target)
    out = PrivateFile(link)
    out.file.write("a,b\n")
    assert link.is_symlink()  # nothing in place until committed
    out.commit()
    assert not link.is_symlink() and link.read_text() == "a,b\n"
    assert target.read_text() == "keep"
    assert stat.S_IMODE(link.stat().st_mode) == 0o600
    gone = PrivateFile(tmp_path / "never.csv")
    gone.discard()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv", "target"]


def test_private_dirs_and_files(tmp_path):
    folder = tmp_path / "state" / "errors"
    folder.parent.mkdir()
    folder.mkdir(mode=0o755)
    path = write_private(folder, "report.log", "text")
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(FileExistsError):
        write_private(folder, "report.log", "again")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "linked").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(OSError, match="not a directory"):
        private_dir(tmp_path / "linked")
    os.chmod(folder, 0o700)


def test_scrub_values_withholds_what_a_database_or_slack_put_in_an_error():
    text = (
        'psycopg.errors.NotNullViolation: null value in column "name"\n'
        "DETAIL:  Failing row contains (1, jane@example.com, null).\n"
        "Key (email)=(jane@example.com) already exists.\n"
        "posting to https://hooks.slack.com/commands/T1/2/abc failed with xoxb-123-abc"
    )
    clean = scrub_values(text)
    assert "jane@example.com" not in clean and "xoxb-123" not in clean
    assert "hooks.slack.com/commands" not in clean
    assert 'null value in column "name"' in clean
