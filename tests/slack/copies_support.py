"""What `test_copies.py` needs to run several copies of the bot as real processes: a clock the
test can move from outside them, the bot started with it, one address in front of them all,
and a Slack stand-in that holds one survey until the test has killed the copy that sent it.

`python -m tests.slack.copies_support CLOCK_FILE` is `clmbot run --http --port 0` (settings
from the environment and clmbot.toml, the same `run_bot`) with one difference: its clock is
the real one moved by the seconds written in CLOCK_FILE. The bot has no clock setting of its
own, on purpose (a production bot reads the real time); `run_bot` takes the clock as an
argument, so the test starts it here rather than adding a setting only tests would use.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import socket
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from tests.fakeslack import FakeSlack


class FileClock:
    """The real time plus the offset (in seconds) written in a file: the test moves the clock
    of every copy at once by writing it. Read again only when the file changed."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._seen: int | None = None
        self._offset = timedelta()

    def __call__(self) -> datetime:
        try:
            stamp = self._path.stat().st_mtime_ns
        except FileNotFoundError:
            stamp = None
        if stamp != self._seen and stamp is not None:
            text = self._path.read_text().strip()
            if text:  # written and read at once: the next call reads it whole
                self._offset = timedelta(seconds=float(text))
                self._seen = stamp
        return datetime.now(UTC) + self._offset


def set_clock(path: Path, at: datetime) -> None:
    """Every copy's clock reads `at` now (and runs on from there)."""
    offset = (at - datetime.now(UTC)).total_seconds()
    tmp = path.with_suffix(".tmp")
    tmp.write_text(f"{offset:.6f}\n")
    os.replace(tmp, path)


class Front:
    """One address for all the copies, as a load balancer gives them: each connection goes
    to the next copy in turn. `sent_to` says where each one went (by the copy's index)."""

    def __init__(self, ports: list[int]) -> None:
        self._ports = ports
        self._turn = itertools.cycle(range(len(ports)))
        self.sent_to: list[int] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            index = next(self._turn)
            self.sent_to.append(index)
            try:
                backend = socket.create_connection(("127.0.0.1", self._ports[index]), timeout=10)
            except OSError:
                client.close()
                continue
            for src, dst in ((client, backend), (backend, client)):
                threading.Thread(target=_pipe, args=(src, dst), daemon=True).start()

    def close(self) -> None:
        self._closed = True
        self._listener.close()


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class HoldingSlack(FakeSlack):
    """The stand-in, holding the `hold_at`-th survey question it receives: Slack has taken
    it (it is in the customer's DM), and its answer does not come until `release()`."""

    def __init__(self, hold_at: int) -> None:
        super().__init__()
        self._hold_at = hold_at
        self._questions = 0
        self.held: dict[str, Any] | None = None  # {"survey_id", "channel", "ts"}
        self.holding = threading.Event()
        self._released = threading.Event()

    def release(self) -> None:
        self._released.set()

    def _answer(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = super()._answer(method, body)
        survey_id = survey_of(body) if method == "chat.postMessage" else None
        if survey_id is None:
            return answer
        with self._cond:
            self._questions += 1
            hold = self._questions == self._hold_at
            if hold:
                self.held = {"survey_id": survey_id, "channel": answer["channel"]}
                self.held["ts"] = answer["ts"]
        if hold:
            self.holding.set()
            self._released.wait(timeout=60)
        return answer

    @staticmethod
    def _send(
        req: BaseHTTPRequestHandler, status: int, payload: dict[str, Any], headers: dict[str, str]
    ) -> None:
        with contextlib.suppress(OSError):  # the copy that asked was killed meanwhile
            FakeSlack._send(req, status, payload, headers)


def survey_of(body: dict[str, Any]) -> int | None:
    """The survey id a question carries in its metadata (None for other messages)."""
    meta = body.get("metadata")
    if isinstance(meta, str):
        meta = json.loads(meta)
    if not isinstance(meta, dict) or meta.get("event_type") != "clmbot_survey":
        return None
    return int(meta["event_payload"]["survey_id"])


def main(argv: list[str]) -> int:
    from clmbot.config import ConfigError, load_settings
    from clmbot.slack.runner import StartError, run_bot

    clock: Callable[[], datetime] = FileClock(Path(argv[0]))
    try:
        settings = load_settings()
        return run_bot(
            settings,
            http=True,
            port=0,
            clock=clock,
            announce=lambda line: print(line, file=sys.stderr, flush=True),
        )
    except (StartError, ConfigError) as exc:
        print(f"clmbot: {exc}", file=sys.stderr, flush=True)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
