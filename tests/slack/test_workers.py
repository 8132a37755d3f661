"""`clmbot run --http --workers N`: N processes behind one port. Started as a person would
start it (a real process, settings from the environment), against the Slack stand-in:
every process listens on the port and answers, a helper that dies is started again, a
helper whose first process was killed stops by itself, and SIGTERM stops them all."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests.fakeslack import SECRET, FakeSlack, post, signed_headers, slash_command_body
from tests.helpers import until
from tests.slack.conftest import ADMIN

REPO = Path(__file__).parents[2]


def children(pid: int) -> list[int]:
    """`pid`'s child processes, whichever of its threads started them."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def listening(port: int) -> set[int]:
    """The processes with a socket listening on `port` (from /proc, as `ss -ltnp` finds
    them)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    found = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    found.add(int(proc.name))
        except OSError:
            continue
    return found


class Bot:
    def __init__(self, db_url: str, slack: FakeSlack, folder: Path, workers: int) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "CLMBOT_"))}
        env.update(
            DATABASE_URL=db_url,
            SLACK_API_URL=slack.url,
            SLACK_BOT_TOKEN="xoxb-workers",
            SLACK_SIGNING_SECRET=SECRET,
            CLMBOT_ADMINS=ADMIN,
            PYTHONPATH=str(REPO),
            PYTHONUNBUFFERED="1",
        )
        self.log = folder / "bot.log"
        self._out = self.log.open("w")
        command = [sys.executable, "-m", "clmbot.cli", "run", "--http", "--port", "0"]
        self.proc = subprocess.Popen(
            [*command, "--workers", str(workers)],
            env=env,
            cwd=folder,
            stdout=self._out,
            stderr=subprocess.STDOUT,
        )
        self.slack = slack
        self.sent = 0
        up = until("the bot is up", lambda: re.search(r"HTTP mode on port (\d+)", self.said()))
        self.port = int(up[1])  # type: ignore[index]

    def said(self) -> str:
        return self.log.read_text()

    def ask(self, text: str) -> str:
        """`/clm <text>` through a new connection, as Slack sends each; the answer's text."""
        self.sent += 1
        name = f"w{self.sent}"
        body = slash_command_body(text, response_url=self.slack.response_url(name), user=ADMIN)
        headers = signed_headers(body, content_type="application/x-www-form-urlencoded")
        reply = post(f"http://127.0.0.1:{self.port}/slack/events", body, headers)
        assert reply.status == 200, reply

        def answered() -> list:
            return [c for c in self.slack.calls_to("response_url") if c.path.endswith("/" + name)]

        (call,) = until(f"the answer to {text}", answered)  # type: ignore[misc]
        return str(call.body)

    def close(self) -> None:
        for pid in children(self.proc.pid):
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._out.close()


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    fake = FakeSlack()
    fake.add_user(ADMIN)
    yield fake
    fake.close()


@pytest.fixture
def bot(engine: Engine, db_url: str, slack: FakeSlack, tmp_path: Path) -> Iterator[Bot]:
    if db_url.startswith("postgresql"):
        pytest.skip("the processes' own life, on SQLite; copies on PostgreSQL: test_copies.py")
    started = Bot(db_url, slack, tmp_path, workers=2)
    yield started
    started.close()


def test_every_process_listens_answers_and_stops_on_sigterm(bot: Bot) -> None:
    (helper,) = until("a helper process", lambda: children(bot.proc.pid))  # type: ignore[misc]
    assert "2 processes" in bot.said()
    assert until("both listening", lambda: listening(bot.port) == {bot.proc.pid, helper})
    for _ in range(12):
        assert "/clm" in bot.ask("help")
    bot.proc.send_signal(signal.SIGTERM)
    assert bot.proc.wait(timeout=60) == 0
    assert until("the helper gone", lambda: not alive(helper))
    assert "Traceback" not in bot.said()


def test_a_helper_that_dies_is_started_again(bot: Bot) -> None:
    (helper,) = until("a helper process", lambda: children(bot.proc.pid))  # type: ignore[misc]
    os.kill(helper, signal.SIGKILL)
    (again,) = until(  # type: ignore[misc]
        "another helper", lambda: [c for c in children(bot.proc.pid) if c != helper]
    )
    assert until("it listens", lambda: again in listening(bot.port))
    assert "starting another" in bot.said()
    assert "/clm" in bot.ask("help")


def test_a_helper_stops_when_the_first_process_is_killed(bot: Bot) -> None:
    (helper,) = until("a helper process", lambda: children(bot.proc.pid))  # type: ignore[misc]
    bot.proc.send_signal(signal.SIGKILL)
    bot.proc.wait(timeout=10)
    assert until("the helper stopped by itself", lambda: not alive(helper), timeout=20)
    assert "first process is gone" in bot.said()
