"""Files clmbot writes: rejected rows, exports, crash reports.

They hold customers' data, so they are private (0600, in directories of 0700), and they are
written where they are asked for without following a link planted in their place: a file is
written beside its destination under a new name and then renamed over it, which replaces a
planted link instead of writing through it. CSV cells that a spreadsheet would run as a
formula are neutralised.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
from pathlib import Path
from typing import IO, Any

# A cell starting with one of these is a formula to Excel, LibreOffice and Google Sheets.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_GUARD = "'"


def neutralise(cell: str) -> str:
    """A cell a spreadsheet shows as text, never runs: `=HYPERLINK(…)` -> `'=HYPERLINK(…)`.

    Plain numbers (`-5`, `+1.5`) are no formula and stay as they are.
    """
    if cell.startswith(_FORMULA_START) and not _PLAIN_NUMBER.match(cell):
        return _GUARD + cell
    return cell


def restore(cell: str) -> str:
    """What `neutralise` guarded, back as it was: a corrected rejected file imports as is."""
    if cell.startswith(_GUARD) and cell[1:].startswith(_FORMULA_START):
        return cell[1:]
    return cell


class PrivateFile:
    """A new private file that appears at `path` only when `commit` is called.

    Written under a temporary name in the same directory (created exclusively, 0600), then
    renamed over `path`: a symlink planted at `path` is replaced, never followed, and a reader
    never sees half a file.
    """

    def __init__(
        self, path: Path, *, newline: str = "", encoding: str = "utf-8", binary: bool = False
    ) -> None:
        self.path = path
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
        self._tmp = Path(tmp)
        self.file: IO[Any] = (
            os.fdopen(fd, "wb")
            if binary
            else os.fdopen(fd, "w", encoding=encoding, errors="surrogateescape", newline=newline)
        )

    def commit(self) -> None:
        self.file.close()
        os.replace(self._tmp, self.path)

    def discard(self) -> None:
        if not self.file.closed:
            self.file.close()
        self._tmp.unlink(missing_ok=True)


def private_dir(path: Path) -> Path:
    """`path` as a directory only its owner can enter; refused if it is a link or not ours."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode):
        raise OSError(f"{path} is not a directory")
    if info.st_uid != os.getuid():
        raise OSError(f"{path} belongs to another user")
    if stat.S_IMODE(info.st_mode) != 0o700:
        path.chmod(0o700)
    return path


# PostgreSQL explains a broken constraint with the row or key that broke it ("DETAIL: Failing
# row contains (…)", "Key (email)=(…) already exists"): customer values, in an error message.
_DETAIL = re.compile(r"^(DETAIL|Key \(|Failing row).*$", re.MULTILINE)
# Secrets that an error message may quote: tokens, and response URLs (which act as tokens).
_SECRETS = re.compile(r"(xox[a-z]-|xapp-)[A-Za-z0-9-]+|https://hooks\.slack\.com/\S+")


def scrub_values(text: str) -> str:
    """An error's text without the values a database put into it, nor tokens or response
    URLs, for reports and logs."""
    text = _SECRETS.sub("(withheld)", text)
    return _DETAIL.sub("DETAIL: (withheld: it may hold customer values)", text)


def state_dir() -> Path:
    """Where clmbot keeps its own files for this user (XDG's state directory)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "clmbot"


def write_private(directory: Path, name: str, text: str) -> Path:
    """A new file `name` in `directory` (made private), 0600, never through a link."""
    path = private_dir(directory) / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    return path


def write_private_bytes(path: Path, data: bytes) -> Path:
    """`data` at `path`, 0600, written whole under another name and renamed over `path`: a
    link planted at `path` is replaced, never followed."""
    out = PrivateFile(path, binary=True)
    try:
        out.file.write(data)
        out.commit()
    except BaseException:
        out.discard()
        raise
    return path
