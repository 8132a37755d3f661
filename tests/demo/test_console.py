"""The demo at a real terminal: a prompt with colour, line editing and history."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time

from clmbot.demo.console import HELP


def read_until(fd: int, marker: bytes, seen: bytearray, count: int = 1, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while seen.count(marker) < count:
        left = deadline - time.monotonic()
        assert left > 0, f"no {marker!r} in {bytes(seen[-2000:])!r}"
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen.extend(chunk)


def test_a_terminal_gets_a_prompt_with_colour_and_history(tmp_path):
    leader, follower = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "DATABASE_URL")}
    env["TERM"] = "xterm"
    proc = subprocess.Popen(
        [sys.executable, "-m", "clmbot.cli", "demo", "--today", "2026-12-07"],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        cwd=tmp_path,
        env=env,
        close_fds=True,
    )
    os.close(follower)
    seen = bytearray()
    try:
        read_until(leader, b"sari > ", seen)
        os.write(leader, b"/clm nps\r")
        read_until(leader, b"NPS, ", seen)
        read_until(leader, b"sari > ", seen, count=2)
        os.write(leader, b"\x1b[A\r")  # the up arrow brings the last line back
        read_until(leader, b"NPS, ", seen, count=2)
        os.write(leader, b":quit\r")
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(leader)
    assert b"\x1b[1m" in seen  # bold on a terminal
    assert b"Type :help" in seen
    assert list(tmp_path.iterdir()) == []  # no history file, no database left here


def test_help_names_every_verb():
    for verb in (":as", ":dm", ":click", ":advance", ":home", ":help", ":quit"):
        assert verb in HELP


def test_ctrl_c_during_a_verb_stops_the_verb_not_the_demo(demo, transcript, monkeypatch):
    from clmbot.demo.console import run

    def interrupted(_text: str) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(demo, "advance", interrupted)
    transcript.take()
    run(demo, [":advance 1w", "/clm funnel"], echo=False)
    out = transcript.take()
    assert "! stopped; it is Fri 04 Dec 08:30 in the demo now" in out and "Funnel on" in out


def test_the_prompt_tells_readline_which_characters_take_no_room():
    from clmbot.demo.console import for_readline

    assert for_readline("\x1b[1msari > \x1b[0m") == "\x01\x1b[1m\x02sari > \x01\x1b[0m\x02"
