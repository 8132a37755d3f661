"""Two hundred signed slash commands a second for a minute, against one bot in HTTP mode.

A retention team of a few dozen people, a script or two, and a Monday morning: commands come
without waiting for each other's answers. This fills a database with C customers (default
100,000) as bench_queries.py makes them (their stage history, 30 events and 2 NPS or CSAT
answers each), runs today's risk pass (so `at-risk` has a pass to read, and the bot's own
catch-up at start finds the day taken), and starts the bot as its own process,
`clmbot run --http`, with a real signing secret and SLACK_API_URL at a Slack stand-in in this
process. Then it sends an open-loop schedule: request i leaves at start + i / rate, whatever
became of the ones before, so a bot that falls behind is measured behind (a sender that is
late counts against the bot: times run from when a request was due, not when it left).

Each request is a signed `/clm` command from one of 30 team members (stage moves from one
of 3 admins), a mix of look-ups by external id, e-mail and name, `funnel`, `nps`, `csat`,
`at-risk`, `segment …`, `stage <id> <stage>` and `help`, each with a response URL of its own
on the stand-in. The bot acknowledges with an empty 200 and answers through that URL from
its work pool, so "the answer" is the moment the stand-in receives the POST to it.

Printed: p50/p95/p99/max of the acknowledgement and of the answer, overall and per kind of
command; the errors by kind (a status other than 200, no acknowledgement within the 3
seconds Slack waits, an answer that never came or came twice, an apology with an error id);
the bot's RSS at start, halfway, at the end and at its peak; the send rate achieved and how
late the sender was; the CPU the bot, this process and the machine used. Target: answer
p99 under 1 s, no errors, memory flat (the second half of the run adds at most 5% or 10 MB,
whichever is more: a leak grows all along, a pool that fills up grows at the start).

The baseline, first, in this process and against the same schedule: the same HTTP server
(cheroot, as the bot configures it) serving an app that acknowledges and posts "ok" to the
response URL at once, in a process of its own. What it measures is the floor of this
machine and this harness (sending, the stand-in, the loopback); the bot's figures are
printed as ratios to it.

    python bench/bench_load.py [--rate 200] [--seconds 60] [--customers 100000]
                               [--baseline-seconds 10] [--drain 30] [--seed 7]
                               [--postgres URL] [--no-sqlite] [--dir DIR] [--keep FILE]
                               [--kinds help,customer] [--bot COMMAND] [--show-answers]

`--keep FILE` fills a SQLite file once and uses it as it is on later runs (a 100,000-customer
fill takes minutes). `--kinds` narrows the mix, to tell the cost of answering at all (`help`)
from the cost of a command's queries. `--bot` starts the bot through a wrapper that changes
something first, to measure a fix before making it. A smoke run for CI (under 30 s on an
idle machine): `--seconds 3 --rate 20 --customers 2000`.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import http.client
import os
import random
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the stand-in in tests/

from _databases import add_options, each_database, keep_latest
from bench_queries import (
    FUNNEL,
    SEGMENTS,
    Loaded,
    Population,
    load_postgres,
    load_sqlite,
    make_population,
    percentile,
    stamper,
)
from sqlalchemy import Engine

from clmbot.config import Settings
from clmbot.risk import runs
from clmbot.slack.server import HttpServer
from clmbot.store.db import make_engine
from clmbot.store.migrate import upgrade
from tests.fakeslack import SECRET, FakeSlack, signed_headers, slash_command_body

TARGET_P99_S = 1.0
SLACK_ACK_S = 3.0  # Slack closes the request then, and shows the person an error
MEMBERS = tuple(f"U0TEAM{i:02d}" for i in range(1, 31))
ADMINS = ("U0ADMIN1", "U0ADMIN2", "U0ADMIN3")
FORM = "application/x-www-form-urlencoded"
APOLOGY = re.compile(r"something went wrong|Error id", re.IGNORECASE)
UP = re.compile(r"clmbot is up in HTTP mode on port (\d+)")
TICK = os.sysconf("SC_CLK_TCK")

# What a team types, in what share (percent). Look-ups dominate; writes are rare.
MIX: tuple[tuple[str, int], ...] = (
    ("customer <external id>", 22),
    ("customer <e-mail>", 10),
    ("customer <name>", 14),
    ("funnel", 8),
    ("nps", 6),
    ("csat", 4),
    ("at-risk", 10),
    ("segment", 10),
    ("stage <id> <stage>", 4),
    ("help", 12),
)


# --- what is sent --------------------------------------------------------------------------


@dataclass
class Shot:
    """One slash command: what it is, and what became of it (times: time.monotonic())."""

    kind: str
    name: str  # the last part of its response URL
    body: bytes
    headers: dict[str, str]
    due: float = 0.0
    sent: float | None = None
    acked: float | None = None
    status: int | None = None
    failure: str | None = None  # why no status: reset, refused, no ack within 3 s …
    answered: float | None = None
    answers: int = 0
    text: str = ""


def chosen(kinds: str | None) -> list[tuple[str, int]]:
    """MIX, or the part of it whose kinds start with one of the comma-separated words."""
    if not kinds:
        return list(MIX)
    wanted = tuple(w.strip() for w in kinds.split(",") if w.strip())
    mix = [(k, w) for k, w in MIX if k.startswith(wanted)]
    if not mix:
        raise SystemExit(f"--kinds {kinds}: none of {', '.join(k for k, _ in MIX)}")
    return mix


def words_for(kind: str, pop: Population, rng: random.Random) -> str:
    if kind == "customer <external id>":
        return f"customer {rng.choice(pop.external_ids)}"
    if kind == "customer <e-mail>":
        return f"customer {rng.choice(pop.emails)}"
    if kind == "customer <name>":
        first, second, *_ = rng.choice(pop.names).split()
        return f"customer {first} {second[: rng.randint(3, len(second))]}"
    if kind == "at-risk":
        return rng.choice(AT_RISK)
    if kind == "segment":
        return rng.choice(SEGMENTS)
    if kind == "stage <id> <stage>":
        return f"stage {rng.choice(pop.external_ids)} {rng.choice(FUNNEL)} load test"
    return kind  # funnel, nps, csat, help


AT_RISK = ("at-risk", "at-risk plan:pro", "at-risk region:emea", "at-risk page 2")


def draw(mix: Sequence[tuple[str, int]], count: int, rng: random.Random) -> list[str]:
    return rng.choices([k for k, _ in mix], weights=[w for _, w in mix], k=count)


def make_shots(
    kinds: list[str],
    pop: Population,
    slack: FakeSlack,
    rng: random.Random,
    tag: str,
    rate: float,
    words: list[str] | None = None,
) -> list[Shot]:
    """A signed command of each kind, each with its own response URL. Signed now, and
    stamped with the time it is due (`rate` a second from now), as Slack stamps what it
    sends: signing while sending would make the sender late for its own reasons, and a
    stamp older than five minutes is refused (a run longer than that had its last ones
    refused as too old)."""
    shots = []
    start = time.time()
    for i, kind in enumerate(kinds):
        name = f"{tag}{i}"
        user = rng.choice(ADMINS if kind.startswith("stage") else MEMBERS)
        said = words[i] if words is not None else words_for(kind, pop, rng)
        body = slash_command_body(said, response_url=slack.response_url(name), user=user)
        signed = signed_headers(body, content_type=FORM, timestamp=int(start + i / rate))
        shots.append(Shot(kind, name, body.encode(), signed))
    return shots


def send(port: int, shot: Shot) -> None:
    shot.sent = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=SLACK_ACK_S)
    try:
        conn.request("POST", "/slack/events", body=shot.body, headers=shot.headers)
        reply = conn.getresponse()
        reply.read()
        shot.status = reply.status
    except TimeoutError:
        shot.failure = f"no acknowledgement within {SLACK_ACK_S:.0f} s (Slack gives up)"
    except (OSError, http.client.HTTPException) as exc:
        shot.failure = type(exc).__name__
    finally:
        shot.acked = time.monotonic()
        conn.close()


def fire(port: int, shots: list[Shot], rate: float) -> None:
    """Open loop: shot i is due at start + i / rate and handed to a sender then, however
    many earlier ones are still waiting for their acknowledgement: there are enough
    senders for every request of the 3 s a sender waits at most, as Slack waits."""
    start = time.monotonic() + 0.2
    for i, shot in enumerate(shots):
        shot.due = start + i / rate
    senders = int(rate * SLACK_ACK_S * 1.5) + 32
    with ThreadPoolExecutor(max_workers=senders, thread_name_prefix="sender") as pool:
        for shot in shots:
            wait = shot.due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            pool.submit(send, port, shot)


def collect(slack: FakeSlack, shots: list[Shot], drain: float) -> None:
    """Wait (at most `drain` s after the last send) for every answer, then match each
    answer to its command by its response URL."""
    by_name = {s.name: s for s in shots}
    deadline = time.monotonic() + drain
    while time.monotonic() < deadline:
        came = {c.path.rsplit("/", 1)[-1] for c in slack.calls_to("response_url")}
        if len(came & by_name.keys()) >= len(shots):
            break
        time.sleep(0.2)
    for call in slack.calls_to("response_url"):
        shot = by_name.get(call.path.rsplit("/", 1)[-1])
        if shot is None:
            continue
        shot.answers += 1
        if shot.answered is None:
            shot.answered = call.at
            shot.text = str(call.body.get("text") or "")


# --- the processes --------------------------------------------------------------------------


class Process:
    """A server in a process of its own (the bot, or the baseline), its stderr read line by
    line: the port it announces, and the warnings and errors it logs."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        self.lines: list[str] = []
        self._ready = threading.Event()
        self.port = 0
        self._proc = subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.pid = self._proc.pid
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self._proc.stderr is not None
        for line in self._proc.stderr:
            self.lines.append(line.rstrip())
            found = UP.search(line)
            if found:
                self.port = int(found[1])
                self._ready.set()
        self._ready.set()  # it ended: whoever waits must not wait on

    def wait_ready(self, timeout: float = 120) -> int:
        self._ready.wait(timeout)
        if not self.port:
            tail = "\n  ".join(self.lines[-15:])
            self.stop()
            raise SystemExit(f"the server did not start; its last words:\n  {tail}")
        return self.port

    def tree(self) -> list[int]:
        """This process and its children (`--workers`: the bot's other processes), whichever
        of its threads started them."""
        children: list[int] = []
        for task in Path(f"/proc/{self.pid}/task").glob("*"):
            try:
                children += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
        return [self.pid, *children]

    def status(self) -> dict[str, int]:
        """VmRSS, VmHWM (kB) and Threads, from /proc/<pid>/status, summed over `tree`."""
        out: dict[str, int] = {}
        for pid in self.tree():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    key, _, value = line.partition(":")
                    if key in ("VmRSS", "VmHWM", "Threads"):
                        out[key] = out.get(key, 0) + int(value.split()[0])
            except OSError:
                pass
        return out

    def cpu(self) -> float:
        """CPU seconds used so far (user + system), from /proc/<pid>/stat, over `tree`
        (a child that exited is no longer counted)."""
        total = 0.0
        for pid in self.tree():
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2 :].split()
            total += (int(fields[11]) + int(fields[12])) / TICK
        return total

    def stop(self, grace: float = 30) -> tuple[int | None, float]:
        """SIGTERM, as a deployment stops it (the bot finishes the work it took); after
        `grace` seconds a second one (the bot's "stop now"), then SIGKILL. The exit code
        (None when it had to be killed) and how long the stop took."""
        started = time.monotonic()
        for sent, wait in ((signal.SIGTERM, grace), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            if self._proc.poll() is not None:
                break
            self._proc.send_signal(sent)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=wait)
        code = self._proc.poll()
        return (None if code in (None, -signal.SIGKILL) else code), time.monotonic() - started


def clmbot_argv(given: str | None, workers: int = 1) -> list[str]:
    """`clmbot run --http --port 0`, or `<given> run --http --port 0`: a wrapper that
    changes something in the bot before it starts, to measure a fix before making it;
    with `--workers N` when more than one."""
    script = Path(sys.executable).parent / "clmbot"
    if given:
        base = shlex.split(given)
    elif script.exists():
        base = [str(script)]
    else:
        base = [sys.executable, "-m", "clmbot.cli"]
    more = ["--workers", str(workers)] if workers > 1 else []
    return [*base, "run", "--http", "--port", "0", *more]


def bot_env(url: str, slack: FakeSlack) -> dict[str, str]:
    """The bot's environment: this one without Slack or clmbot settings, then what the run
    needs. The alert time is midnight, so the morning due is today's, which the bench has
    already run: the bot's catch-up finds it taken rather than scoring everyone mid-run."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLACK_", "CLMBOT_", "DATABASE_URL", "PORT"))
    }
    env.update(
        DATABASE_URL=url,
        SLACK_BOT_TOKEN="xoxb-bench-load",
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_API_URL=slack.url,
        CLMBOT_ADMINS=",".join(ADMINS),
        CLMBOT_ALERT_TIME="00:00",
        CLMBOT_TIMEZONE="UTC",
        PYTHONUNBUFFERED="1",
    )
    return env


def serve_bare() -> None:
    """The baseline server (`--bare`): the bot's HTTP server serving an app that answers
    200 at once and posts "ok" to the response URL from a pool of 16, as the bot's work
    pool does; no signature check, no Bolt, no database."""
    pool = ThreadPoolExecutor(max_workers=16)

    def answer(url: str) -> None:
        where = urllib.parse.urlsplit(url)
        conn = http.client.HTTPConnection(where.hostname or "", where.port or 80, timeout=10)
        try:
            json_type = {"Content-Type": "application/json"}
            conn.request("POST", where.path, body=b'{"text": "ok"}', headers=json_type)
            conn.getresponse().read()
        finally:
            conn.close()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        form = urllib.parse.parse_qs(body.decode())
        pool.submit(answer, form["response_url"][0])
        start_response("200 OK", [("Content-Length", "0")])
        return [b""]

    server = HttpServer(app, host="127.0.0.1", port=0, tick=0.05)
    port = server.start()
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.stop).start())
    print(f"clmbot is up in HTTP mode on port {port} (bare baseline)", file=sys.stderr, flush=True)
    server.serve()
    pool.shutdown(wait=True)


# --- measuring --------------------------------------------------------------------------------


@dataclass
class Sample:
    at: float
    rss_kb: int
    hwm_kb: int
    threads: int


@dataclass
class Watch:
    """The server's memory every half second while the load runs."""

    proc: Process
    samples: list[Sample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self._stop.is_set():
            s = self.proc.status()
            if s:
                self.samples.append(
                    Sample(time.monotonic(), s["VmRSS"], s["VmHWM"], s.get("Threads", 0))
                )
            self._stop.wait(0.5)

    def stop(self) -> None:
        self._stop.set()


def machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def loadavg() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


@dataclass
class Run:
    label: str
    shots: list[Shot]
    seconds: float  # from the first due time to the last answer looked for
    bot_cpu: float  # CPU seconds of the server during the run
    own_cpu: float  # of this process
    machine_busy: float  # share of all CPUs busy
    watch: Watch | None = None


def load_run(
    label: str, proc: Process, slack: FakeSlack, shots: list[Shot], rate: float, drain: float
) -> Run:
    watch = Watch(proc)
    watch.start()
    bot_before, own_before, (busy_before, total_before) = proc.cpu(), _own_cpu(), machine_cpu()
    started = time.monotonic()
    # This process sends the commands, reads the acknowledgements and, as the Slack
    # stand-in, receives the answers, holding every one: a full garbage collection of them
    # paused it for up to 0.7 s, and every request and answer then was timed late against
    # the bot. Nothing is collected until the run is over.
    gc.disable()
    try:
        fire(proc.port, shots, rate)
        collect(slack, shots, drain)
    finally:
        gc.enable()
    took = time.monotonic() - started
    busy_after, total_after = machine_cpu()
    watch.stop()
    return Run(
        label,
        shots,
        took,
        proc.cpu() - bot_before,
        _own_cpu() - own_before,
        (busy_after - busy_before) / max(total_after - total_before, 1),
        watch,
    )


def _own_cpu() -> float:
    t = os.times()
    return t.user + t.system


def errors(shots: list[Shot], drain: float) -> Counter[str]:
    found: Counter[str] = Counter()
    for s in shots:
        if s.failure:
            found[s.failure] += 1
        elif s.status != 200:
            found[f"HTTP {s.status}"] += 1
        elif s.acked is not None and s.acked - s.due > SLACK_ACK_S:
            found[f"acknowledged {SLACK_ACK_S:.0f} s or more after it was due"] += 1
        if s.status == 200 and s.answered is None:
            found[f"acknowledged, no answer by {drain:g} s after the last send"] += 1
        if s.answers > 1:
            found["answered more than once"] += 1
        if s.answered is not None and APOLOGY.search(s.text):
            found["an apology with an error id"] += 1
    return found


def figures(values: list[float]) -> str:
    if not values:
        return f"{'-':>8}{'-':>8}{'-':>8}{'-':>8}"
    return "".join(f"{percentile(values, p) * 1000:>8.0f}" for p in (50, 95, 99, 100))


def acks(shots: list[Shot]) -> list[float]:
    return [s.acked - s.due for s in shots if s.status == 200 and s.acked is not None]


def answers(shots: list[Shot]) -> list[float]:
    return [s.answered - s.due for s in shots if s.answered is not None]


def summary(run: Run, rate: float) -> None:
    shots = run.shots
    sent = [s.sent for s in shots if s.sent is not None]
    span = max(sent) - min(sent) if len(sent) > 1 else 0.0
    late = [s.sent - s.due for s in shots if s.sent is not None]
    achieved = (len(sent) - 1) / span if span else 0.0
    print(
        f"  sent {len(sent)} at {achieved:.1f}/s (asked {rate:g}/s); sender late p99 "
        f"{percentile(late, 99) * 1000:.0f} ms, max {max(late) * 1000:.0f} ms"
    )
    print(
        f"  CPU over {run.seconds:.1f} s: server {run.bot_cpu / run.seconds:.2f} cores, this "
        f"process {run.own_cpu / run.seconds:.2f}, the machine {run.machine_busy:.0%} of "
        f"{os.cpu_count()} busy"
    )
    print(f"  {'ms from when due':<30}{'p50':>8}{'p95':>8}{'p99':>8}{'max':>8}{'count':>8}")
    print(f"  {'acknowledgement':<30}{figures(acks(shots))}{len(acks(shots)):>8}")
    print(f"  {'answer':<30}{figures(answers(shots))}{len(answers(shots)):>8}")


def per_kind(shots: list[Shot]) -> None:
    print(f"  {'answer by command, ms':<30}{'p50':>8}{'p95':>8}{'p99':>8}{'max':>8}{'count':>8}")
    for kind, _ in MIX:
        mine = [s for s in shots if s.kind == kind]
        print(f"  {kind:<30}{figures(answers(mine))}{len(mine):>8}")


def worst_windows(shots: list[Shot], width: float = 5.0, shown: int = 3) -> None:
    """The windows of `width` seconds (by when requests were due) with the most answers over
    a second: a tail spread over the run is the machine at its limit, one gathered in a few
    windows is something that happened then (a report worked out, a checkpoint)."""
    if not shots:
        return
    start = min(s.due for s in shots)
    slow: Counter[int] = Counter()
    total: Counter[int] = Counter()
    for s in shots:
        window = int((s.due - start) // width)
        total[window] += 1
        if s.answered is None or s.answered - s.due > 1.0:
            slow[window] += 1
    if not slow:
        print(f"  no {width:g} s window had an answer over 1 s")
        return
    worst = ", ".join(
        f"{w * width:g}-{(w + 1) * width:g} s: {n} of {total[w]}"
        for w, n in sorted(slow.most_common(shown))
    )
    print(
        f"  answers over 1 s (or none) in {len(slow)} of {len(total)} windows of {width:g} s; "
        f"most in {worst}"
    )


def memory(watch: Watch) -> tuple[str, bool]:
    """The RSS line, and whether it was flat (the second half added at most 5% or 10 MB)."""
    samples = watch.samples
    if len(samples) < 2:
        return "no samples", True
    first, last = samples[0], samples[-1]
    middle = samples[len(samples) // 2]
    peak = max(s.rss_kb for s in samples)
    grew = last.rss_kb - middle.rss_kb
    flat = grew <= max(10_240, middle.rss_kb * 0.05)
    threads = max(s.threads for s in samples)
    line = (
        f"RSS start {first.rss_kb / 1024:.0f} MB, halfway {middle.rss_kb / 1024:.0f} MB, end "
        f"{last.rss_kb / 1024:.0f} MB, peak {peak / 1024:.0f} MB (VmHWM {last.hwm_kb / 1024:.0f} "
        f"MB); second half {grew / 1024:+.0f} MB: {'flat' if flat else 'GROWING'}; "
        f"threads up to {threads}"
    )
    return line, flat


# --- the run --------------------------------------------------------------------------------


def fill(engine: Engine, args: argparse.Namespace, *, empty: bool) -> Population:
    """Customers, history, events and answers as bench_queries.py loads them (unless the
    database is not `empty`: a file kept from an earlier run, made from the same seed); then
    today's risk pass, as the bot's morning job would have run it."""
    postgres = engine.dialect.name == "postgresql"
    started = time.perf_counter()
    events, answers_ = args.customers * 30, args.customers * 2
    pop = make_population(args.customers, events, stamper("+00" if postgres else ".000000"))
    if not empty:
        with engine.connect() as conn:
            tables = ("customers", "stage_history", "events", "feedback")
            counts = [conn.exec_driver_sql(f"SELECT count(*) FROM {t}").scalar() for t in tables]
        loaded = Loaded({}, dict(zip(tables, [int(c or 0) for c in counts], strict=True)))
    elif postgres:
        loaded = load_postgres(engine, pop, answers_)
    else:
        engine.dispose()  # the load has a connection of its own, without a journal
        assert engine.url.database is not None
        loaded = load_sqlite(Path(engine.url.database), pop, answers_)
    filled = time.perf_counter() - started
    now = datetime.now(UTC)
    settings = Settings(database_url=engine.url.render_as_string(hide_password=False))
    outcome = runs.run(engine, now.date(), as_of=now, now=now, settings=settings, by="bench")
    scored = f"{outcome.scored:,} scored, {outcome.at_risk:,} at risk" if outcome else "taken"
    passed = time.perf_counter() - started - filled
    changed, kept_in = keep_latest(engine)
    rows = ", ".join(f"{t} {n:,}" for t, n in loaded.rows.items())
    print(
        f"  {'filled' if empty else 'kept, generated'} in {filled:.0f} s ({rows}); "
        f"today's risk pass {passed:.0f} s ({scored}); the customers' latest values kept "
        f"in {kept_in:.0f} s ({changed:,} changed)"
    )
    return pop


def bench(engine: Engine, label: str, args: argparse.Namespace, *, empty: bool = True) -> bool:
    print(f"--- {label}: {args.customers:,} customers; load average {loadavg()}")
    began = time.monotonic()
    home = Path(tempfile.mkdtemp(prefix="clmbot-load-"))  # no .env nor clmbot.toml here
    # The baseline's server starts meanwhile: it is idle until its turn.
    bare = Process([sys.executable, __file__, "--bare"], dict(os.environ), home)
    slack = FakeSlack()
    try:
        for user in (*MEMBERS, *ADMINS):
            slack.add_user(user)
        pop = fill(engine, args, empty=empty)
        engine.dispose()
        rng = random.Random(args.seed)

        bare_for = min(args.baseline_seconds, args.seconds)
        bare.wait_ready()
        mix = chosen(args.kinds)
        base_shots = make_shots(
            draw(mix, int(args.rate * bare_for), rng), pop, slack, rng, "b", args.rate
        )
        base = load_run("baseline", bare, slack, base_shots, args.rate, args.drain)
        bare.stop()  # before the bot starts: the two never share the machine
        print(f"  baseline (bare app, same server, {bare_for:g} s at {args.rate:g}/s):")
        summary(base, args.rate)

        started = time.monotonic()
        url = engine.url.render_as_string(hide_password=False)
        bot = Process(clmbot_argv(args.bot, args.workers), bot_env(url, slack), home)
        try:
            bot.wait_ready()
            print(f"  the bot (pid {bot.pid}) is up after {time.monotonic() - started:.1f} s")
            warm_up(bot, slack, pop, rng, args.workers)
            kinds = draw(mix, int(args.rate * args.seconds), rng)
            shots = make_shots(kinds, pop, slack, rng, "c", args.rate)
            run = load_run("clmbot", bot, slack, shots, args.rate, args.drain)
        finally:
            code, stopping = bot.stop()
        ok = report(run, bot, args, base_shots, code, stopping)
        print(f"  {time.monotonic() - began:.0f} s in all")
        return ok
    finally:
        bare.stop()
        slack.close()
        shutil.rmtree(home, ignore_errors=True)


def warm_up(
    bot: Process, slack: FakeSlack, pop: Population, rng: random.Random, workers: int
) -> None:
    """Every kind of command, every at-risk list and segment of the mix, and `help` from
    every member, enough times that each of the bot's processes (`--workers`; the kernel
    spreads connections among them at random) has most likely seen each at least once
    (with two processes, 1 in 500 that one missed one): the first of each pays for
    imports, first queries, a report's first working out and the member's look-up
    (`users.info`, cached for 10 min), which a bot that has been up a while has long paid.
    Twice each, with two processes, left a process one report or other to work out for
    the first time under the load, up to 1.2 s on PostgreSQL, every command behind it
    waiting."""
    times = 10 + 2 * workers
    said = [
        *(w for w in (*AT_RISK, *SEGMENTS) for _ in range(times)),
        *(words_for(k, pop, rng) for k, _ in MIX for _ in range(times)),
        *["help"] * len(MEMBERS),
    ]
    kinds = [w.split()[0] for w in said]
    warm = make_shots(kinds, pop, slack, rng, "w", 50, words=said)
    fire(bot.port, warm, 50)
    collect(slack, warm, 60)
    print(
        f"  warm-up: {sum(s.answered is not None for s in warm)} of {len(warm)} answered; "
        f"RSS {bot.status().get('VmRSS', 0) / 1024:.0f} MB; load average {loadavg()}"
    )


def report(
    run: Run,
    bot: Process,
    args: argparse.Namespace,
    base_shots: list[Shot],
    code: int | None,
    stopping: float,
) -> bool:
    shots = run.shots
    print(f"  clmbot ({args.seconds:g} s at {args.rate:g}/s), load average {loadavg()}:")
    summary(run, args.rate)
    per_kind(shots)
    worst_windows(shots)
    if args.show_answers:
        for kind, _ in MIX:
            shot = next((s for s in shots if s.kind == kind and s.answered), None)
            said = " ".join(shot.text.split())[:110] if shot else "(no answer)"
            print(f"    {kind}: {said}")
    assert run.watch is not None
    line, flat = memory(run.watch)
    print(f"  memory: {line}")
    found = errors(shots, args.drain)
    total = sum(found.values())
    listed = "; ".join(f"{k}: {n}" for k, n in found.most_common()) or "none"
    print(f"  errors: {total} ({listed})")
    up = next((i for i, ln in enumerate(bot.lines) if UP.search(ln)), 0)
    logged = [ln for ln in bot.lines[up:] if " ERROR " in ln or " WARNING " in ln]
    print(
        f"  the bot logged {len(logged)} warnings and errors once up; SIGTERM to exit "
        f"{stopping:.1f} s, exit code {code}"
    )
    for ln in logged[:8]:
        print(f"    {ln[:160]}")
    p99 = percentile(answers(shots), 99) if answers(shots) else float("inf")
    bare_p99 = percentile(answers(base_shots), 99) if answers(base_shots) else float("nan")
    print(
        f"  answer p99 {p99 * 1000:.0f} ms = {p99 / bare_p99:.1f}x the bare app's "
        f"{bare_p99 * 1000:.0f} ms"
    )
    ok = p99 < TARGET_P99_S and total == 0 and flat and code == 0
    print(
        f"  {'PASS' if ok else 'FAIL'}: answer p99 {p99 * 1000:.0f} ms (target < "
        f"{TARGET_P99_S * 1000:.0f}), errors {total} (target 0), memory "
        f"{'flat' if flat else 'growing'}, exit code {code}"
    )
    return ok


def main() -> int:
    if sys.argv[1:] == ["--bare"]:
        serve_bare()
        return 0
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0, help="commands a second")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--baseline-seconds", type=float, default=10.0)
    parser.add_argument("--drain", type=float, default=30.0, help="s to wait for late answers")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--show-answers", action="store_true", help="print one answer of each kind")
    parser.add_argument(
        "--kinds",
        metavar="WORDS",
        help="only the commands of the mix that start with these, e.g. help,customer",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="processes of the bot sharing its port (clmbot run --workers N)",
    )
    parser.add_argument(
        "--bot",
        metavar="COMMAND",
        help="start the bot with COMMAND instead of clmbot (run --http --port 0 is added)",
    )
    parser.add_argument(
        "--keep",
        type=Path,
        metavar="FILE",
        help="SQLite only: fill FILE and keep it, or use it as it is when it exists",
    )
    add_options(parser)
    args = parser.parse_args()
    if args.customers < 100 or args.rate <= 0 or args.seconds <= 0:
        parser.error("use at least 100 customers, and a rate and a time above 0")
    print(
        f"bench_load: {args.rate:g} /clm a second for {args.seconds:g} s; machine: "
        f"{os.cpu_count()} CPUs, load average {loadavg()}"
    )
    if args.keep:
        path = args.keep.resolve()
        empty = not path.exists()
        engine = make_engine(f"sqlite:///{path}")
        upgrade(engine)
        ok = bench(engine, f"SQLite ({path}, kept)", args, empty=empty)
        engine.dispose()
    else:
        ok = each_database(args, "load", lambda engine, label: bench(engine, label, args))
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
