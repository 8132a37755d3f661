"""More than one process behind one HTTP port: `clmbot run --http --workers N`.

One Python process answers at most about 120 `/clm customer` look-ups a second on the
2-core development machine, whatever its thread count: signature checks, Bolt, the
queries and the answers' posts all hold the interpreter's lock in turn, and a process
cannot use a second core for them. So the bot starts N-1 more processes that serve the
same port (SO_REUSEPORT: the kernel spreads new connections over them) and do nothing
else. The daily job and the survey sender run in the first process only: on SQLite,
two senders could claim the same survey (PostgreSQL's FOR UPDATE SKIP LOCKED is what
makes several copies safe there).

What they share is the database, as several copies of the bot do. A helper that dies is
started again; one whose first process went away (killed) stops by itself.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable

log = logging.getLogger("clmbot.run")

FIRST_PROCESS = "CLMBOT_FIRST_PROCESS"  # its pid, in each helper's environment
SERVE_ONLY = "--serve-only"  # the helpers' own flag of `clmbot run`, hidden from --help
RESTARTS_PER_MINUTE = 5  # beyond that a helper that keeps dying is left dead, and said so
STOP_GRACE_SECONDS = 40.0  # a helper finishes its requests in flight (30 s at most)


def free_port(host: str) -> int:
    """A port nobody listens on now. SO_REUSEPORT cannot share port 0, so the first
    process picks one before binding it for all."""
    with socket.socket() as probe:
        probe.bind((host if host != "0.0.0.0" else "", 0))
        return int(probe.getsockname()[1])


class Helpers:
    """The other N-1 processes: each `clmbot run --http --port P --serve-only`, with this
    process's environment and working folder (so the same settings)."""

    def __init__(self, port: int, count: int) -> None:
        self._command = [sys.executable, "-m", "clmbot.cli", "run", "--http"]
        self._command += ["--port", str(port), SERVE_ONLY]
        self._procs: list[subprocess.Popen[bytes]] = []
        self._count = count
        self._stopping = threading.Event()
        self._restarts: list[float] = []
        self._watch = threading.Thread(target=self._keep_up, name="clmbot-helpers", daemon=True)

    def start(self) -> None:
        self._procs = [self._spawn() for _ in range(self._count)]
        self._watch.start()

    def stop(self) -> None:
        """SIGTERM to each, as to this process: each finishes its requests in flight."""
        self._stopping.set()
        for proc in self._procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for proc in self._procs:
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                log.warning("a helper process (pid %s) did not stop in time: killed", proc.pid)
                proc.kill()
                proc.wait()

    def _spawn(self) -> subprocess.Popen[bytes]:
        env = {**os.environ, FIRST_PROCESS: str(os.getpid())}
        return subprocess.Popen(self._command, stdin=subprocess.DEVNULL, env=env)

    def _keep_up(self) -> None:
        while not self._stopping.wait(1.0):
            for i, proc in enumerate(self._procs):
                code = proc.poll()
                if code is None or self._stopping.is_set():
                    continue
                now = time.monotonic()
                self._restarts = [t for t in self._restarts if now - t < 60]
                if len(self._restarts) >= RESTARTS_PER_MINUTE:
                    log.error(
                        "a helper process keeps exiting (code %s): not started again; "
                        "this process serves on with the others",
                        code,
                    )
                    self._procs[i] = _Gone(code)  # type: ignore[assignment]
                    continue
                self._restarts.append(now)
                log.warning("a helper process exited with code %s: starting another", code)
                self._procs[i] = self._spawn()


class _Gone:
    """A helper left dead: polled as exited, never signalled again."""

    def __init__(self, code: int) -> None:
        self.returncode = code
        self.pid = 0

    def poll(self) -> int:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        return self.returncode


def stop_with_parent(request_stop: Callable[[], None]) -> None:
    """In a helper: stop (`request_stop()`) once the first process is gone (killed: it
    could not stop us), rather than serve on as an orphan nobody stops."""
    # Told, not read from getppid() here: the first process may have died already.
    parent = int(os.environ.get(FIRST_PROCESS) or os.getppid())

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        log.warning("the bot's first process is gone: stopping this helper")
        request_stop()

    threading.Thread(target=watch, name="clmbot-parent-watch", daemon=True).start()
