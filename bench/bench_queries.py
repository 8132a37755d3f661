"""How long the read commands take on a large customer base, server-side.

A team types `/clm customer …`, `/clm segment …`, `/clm nps` and `/clm funnel` while a
customer is on the phone: the answer has to come in well under a second, and Slack gives a
command 3 seconds in all. This builds a database the size of a large retention team's
(default 100,000 customers with plans, regions, owners, tags, MRR, signup dates and imported
attributes; their stage history, about 1.8 moves each besides the first stage; 3,000,000
purchases and logins over two years, each customer at their own rhythm; 200,000 NPS and CSAT
answers over two years, some with comments; three saved segments, the last two daily risk
passes over everyone, twenty survey runs asking one customer in twenty), loaded with bulk
inserts (`executemany` a slice at a time on SQLite, `COPY` on PostgreSQL) and analysed. Then
it runs every command that reads through `run_command`, in this process, one session per
run, as the bot does once a request has been acknowledged (no HTTP, no Slack), and prints
p50, p95 and max latency in ms over N runs after two warm-up runs. The customer each
look-up names is drawn at random every run, so the figures are not one cached page.

As a baseline, in the same process and the same way: a bare `SELECT count(*) FROM events`
(the cost of reading every event) and a single-row primary-key lookup (the floor of any
query: a round trip through SQLAlchemy and the driver). On a shared machine, compare the
commands with these rather than with another run's figures.

The reports that are kept while nothing they read changes (the funnel, NPS, CSAT, segments,
at-risk: clmbot/store/cache.py) are measured twice: as a team mostly meets them (p50, p95,
max: kept after the first run, unless the question moves, as a random customer's does),
and as the first ask after a change meets them (`first`: every kept report forgotten
before each of `--cold-runs` runs).

The target is p95 <= 100 ms. For every command over it, the SQL it ran is recorded (a
`before_cursor_execute` listener, during one more run), each SELECT is timed on its own, and
the plan of the slowest is printed (`EXPLAIN QUERY PLAN` on SQLite, `EXPLAIN (ANALYZE,
BUFFERS)` on PostgreSQL), with the share of the command's time spent in SQL at all: a
command whose time is not in its SQL is slow in Python.

    python bench/bench_queries.py [--customers 100000] [--events 3000000] [--answers 200000]
                                  [--runs 200] [--keep FILE] [--postgres [URL]] [--seed 7]
                                  [--only LABEL …] [--skip LABEL …] [--cold-runs 5]

`--postgres` runs on PostgreSQL (default URL: CLMBOT_TEST_POSTGRES_URL, else
postgresql://postgres@127.0.0.1:5432/test) in a fresh schema, dropped at the end, instead of
a temporary SQLite file. `--keep FILE` keeps the SQLite file; run again with the same sizes
and the same FILE, it measures the file again without filling it (a million customers take
minutes to fill). `--only`/`--skip` pick commands by the beginning of their label. A CI
smoke run: `--customers 2000 --events 60000 --answers 4000 --runs 5`.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import random
import shutil
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from _databases import keep_latest
from sqlalchemy import Engine, event, text
from sqlalchemy.engine import make_url
from sqlmodel import Session

from clmbot.commands.run import run_command
from clmbot.commands.spec import Actor
from clmbot.config import Settings
from clmbot.results import (
    FunnelResult,
    HelpResult,
    MatchesResult,
    NoMatchResult,
    NotYetResult,
    ProfileResult,
    ScoreByResult,
    ScoreResult,
    SegmentResult,
    StageResult,
    UsageResult,
)
from clmbot.store import cache
from clmbot.store.db import make_engine, normalise_url, session_scope
from clmbot.store.migrate import upgrade

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
NOW_TS = int(NOW.timestamp())
DAY = 86_400
START_TS = NOW_TS - 730 * DAY  # events and answers cover the two years before NOW
OLDEST_SIGNUP_DAYS = 3 * 365
TARGET_MS = 100.0
WARMUP = 2
ACTOR = Actor("U0BENCH", is_admin=True)
DEFAULT_PG_URL = os.environ.get(
    "CLMBOT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)

FUNNEL = ("awareness", "consideration", "purchase", "retention", "advocacy")
STAGE_WEIGHTS = (
    ("awareness", 8),
    ("consideration", 10),
    ("purchase", 17),
    ("retention", 45),
    ("advocacy", 8),
    ("churned", 12),
)
# plan, lowest and highest MRR, share of paying customers, share of purchases among events
PLANS = (
    ("free", 0, 0, 25, 0.02),
    ("starter", 19, 79, 27, 0.08),
    ("pro", 99, 499, 28, 0.12),
    ("team", 300, 1500, 14, 0.15),
    ("enterprise", 2000, 20000, 6, 0.2),
)
REGIONS = (("amer", 40), ("emea", 30), ("apac", 22), ("latam", 8))
OWNERS = tuple(f"U0OWNER{i:02d}" for i in range(1, 25))
TAGS = ("vip", "beta", "partner", "at-risk", "enterprise", "reseller", "onboarding")
INDUSTRIES = (
    "retail", "saas", "fintech", "health", "logistics", "education", "media",
    "manufacturing", "hospitality", "agency", "food", "travel",
)  # fmt: skip
SOURCES = ("web", "partner", "sales", "event", "referral")
SECOND_WORDS = (
    "Bakery", "Logistics", "Foods", "Motors", "Textiles", "Pharma", "Systems", "Studio",
    "Dental", "Travel", "Energy", "Retail", "Farms", "Media", "Capital", "Health", "Robotics",
    "Coffee", "Books", "Fitness", "Apparel", "Builders", "Outdoor", "Pets", "Garden", "Audio",
    "Print", "Solar", "Marine", "Optics", "Software", "Clinic", "Imports", "Brewing",
    "Kitchens", "Cargo", "Dairy", "Tools", "Labs", "Events",
)  # fmt: skip
SUFFIXES = ("", "Ltd", "Inc", "Co", "Group", "GmbH", "PT", "LLC")
SEGMENTS = (
    "segment nps<7 stage:retention",
    "segment inactive>60d plan:pro",
    "segment attr.industry:retail mrr>100",
)
GOOD_COMMENTS = (
    "Support answered within the hour, thank you",
    "The new dashboard saves us a lot of time",
    "Easy to set up for the whole team",
    "Great onboarding call",
    "Exports work exactly as we need",
)
BAD_COMMENTS = (
    "Too expensive for what we use",
    "The app is slow in the afternoons",
    "Billing was wrong twice this quarter",
    "We miss an integration with our shop",
    "Support took three days to answer",
    "Hard to find the reports",
)


# --- generating ----------------------------------------------------------------------------


def syllable_words(rng: random.Random, count: int) -> list[str]:
    """`count` different made-up company words ("Karivo", "Meltora"): names to look up."""
    onsets = [*"bcdfghklmnprstvz", "br", "kr", "st", "tr", "pl", "gr"]
    vowels = [*"aeiou", "ai", "ea", "io"]
    codas = ["", "", "", "n", "r", "s", "x", "l"]
    words: set[str] = set()
    while len(words) < count:
        parts = [rng.choice(onsets) + rng.choice(vowels) for _ in range(rng.choice((2, 2, 3)))]
        words.add(("".join(parts) + rng.choice(codas)).capitalize())
    return sorted(words)


def stamper(tail: str) -> Callable[[int], str]:
    """Epoch seconds to the text a timestamp column stores: SQLite's "YYYY-MM-DD
    HH:MM:SS.ffffff" (as `UTCDateTime` writes it) or PostgreSQL's "…+00". Made from two
    tables rather than `datetime`: millions of events go through it."""
    first = (NOW_TS - (OLDEST_SIGNUP_DAYS + 2) * DAY) // DAY
    days = [
        (date(1970, 1, 1) + timedelta(days=d)).isoformat() for d in range(first, NOW_TS // DAY + 1)
    ]
    clock = [f" {s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}{tail}" for s in range(DAY)]

    def stamp(ts: int) -> str:
        d, s = divmod(ts, DAY)
        return days[d - first] + clock[s]

    return stamp


@dataclass
class Population:
    """The generated customers: their rows, and what events and answers are made from."""

    customers: list[tuple[Any, ...]] = field(default_factory=list)
    history: list[tuple[Any, ...]] = field(default_factory=list)
    external_ids: list[str] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    misspelt: list[str] = field(default_factory=list)  # names no customer has: typos
    active_from: list[int] = field(default_factory=list)  # epoch seconds, per customer
    active_until: list[int] = field(default_factory=list)
    events: list[int] = field(default_factory=list)  # how many events each customer has
    purchase_share: list[float] = field(default_factory=list)
    mood: list[float] = field(default_factory=list)  # the NPS a customer tends to give


def make_population(n: int, total_events: int, stamp: Callable[[int], str]) -> Population:
    rng = random.Random(1)
    first_words = syllable_words(rng, max(400, math.ceil(n / len(SECOND_WORDS) / 6)))
    combos = len(first_words) * len(SECOND_WORDS) * len(SUFFIXES)
    picks = rng.sample(range(combos), min(n, combos))
    # Drawn for everyone at once: `choices` with weights is slow one value at a time.
    stages = rng.choices([s for s, _ in STAGE_WEIGHTS], weights=[w for _, w in STAGE_WEIGHTS], k=n)
    plans = rng.choices(PLANS, weights=[p[3] for p in PLANS], k=n)
    regions = rng.choices([r for r, _ in REGIONS], weights=[w for _, w in REGIONS], k=n)
    tag_counts = rng.choices((0, 1, 2), weights=(5, 3, 2), k=n)
    entries = rng.choices((0, 1, 2), weights=(5, 2, 3), k=n)
    pop = Population()
    weights: list[float] = []
    for i in range(n):
        cid = i + 1
        pick = picks[i] if i < len(picks) else rng.randrange(combos)
        first, rest = divmod(pick, len(SECOND_WORDS) * len(SUFFIXES))
        second, suffix = divmod(rest, len(SUFFIXES))
        words = [first_words[first], SECOND_WORDS[second], SUFFIXES[suffix]]
        name = " ".join(w for w in words if w) + (f" {cid}" if i >= len(picks) else "")
        email = f"ops{cid}@{words[0]}{words[1]}.example".lower()
        stage = stages[i]
        signup = NOW_TS - int((1 + rng.random() * OLDEST_SIGNUP_DAYS) * DAY)
        prospect = stage in ("awareness", "consideration")
        plan_row = plans[i]
        plan = None if prospect else plan_row[0]
        mrr = (
            None if prospect else round(plan_row[1] + rng.random() * (plan_row[2] - plan_row[1]), 2)
        )
        tags = json.dumps(rng.sample(TAGS, tag_counts[i]))
        attributes = (
            f'{{"industry": "{rng.choice(INDUSTRIES)}", "seats": "{int(rng.random() * 500) + 1}", '
            f'"source": "{rng.choice(SOURCES)}"}}'
        )
        owner = rng.choice(OWNERS) if rng.random() < 0.9 else None
        region = regions[i]

        # The stage history: the first stage at signup, then the moves up to today's stage.
        if stage == "churned":
            path = [*FUNNEL[rng.randint(0, 2) : rng.randint(2, 3) + 1], "churned"]
        else:
            top = FUNNEL.index(stage)
            path = list(FUNNEL[min(entries[i], top) : top + 1])
        moves = sorted(rng.randint(signup + 3600, NOW_TS - 3600) for _ in path[1:])
        at = [signup, *moves]
        by = owner or "import"
        for k, to_stage in enumerate(path):
            pop.history.append(
                (
                    cid,
                    path[k - 1] if k else None,
                    to_stage,
                    stamp(at[k]),
                    "import" if k == 0 else by,
                    None,
                    "signup" if k == 0 else "exact",
                )
            )
        signed_up = stamp(signup)
        pop.customers.append(
            (
                cid,
                f"C{cid:07d}",
                name,
                email,
                None,
                stage,
                owner,
                plan,
                region,
                mrr,
                signed_up[:10],
                tags,
                attributes,
                "en",
                None,
                signed_up,
                stamp(at[-1]),
                None,
            )
        )
        pop.external_ids.append(f"C{cid:07d}")
        pop.emails.append(email)
        pop.names.append(name)

        # When the customer is active, and how often they come back.
        start = max(signup, START_TS)
        if stage == "churned":
            end = at[-1]
        elif rng.random() < 0.15:  # gone quiet: the customers `inactive>60d` is for
            end = NOW_TS - rng.randint(30, 300) * DAY
        else:
            end = NOW_TS - rng.randrange(3 * DAY)
        gap_days = min(max(math.exp(rng.gauss(math.log(2.5), 0.9)), 0.1), 90.0)
        span = end - start
        weight = span / DAY / gap_days * (0.3 if prospect else 1.0) if span > DAY else 0.0
        weights.append(weight)
        pop.active_from.append(start)
        pop.active_until.append(max(end, start))
        pop.purchase_share.append(0.01 if prospect else plan_row[4])
        mood = {"advocacy": 9.0, "churned": 4.0}.get(stage, rng.gauss(7.2, 1.8))
        pop.mood.append(mood)

    # Typos of real names, in the first word so that no name starts with them.
    known = {w.lower() for w in first_words}
    while len(pop.misspelt) < 200:
        name = rng.choice(pop.names)
        head, _, tail = name.partition(" ")
        j = rng.randrange(1, len(head) - 1)
        typo = head[:j] + head[j + 1] + head[j] + head[j + 2 :]  # two letters swapped
        if typo.lower() not in known:
            pop.misspelt.append(f"{typo} {tail}")

    pop.events = share_out(weights, total_events, pop.active_from, pop.active_until)
    return pop


def share_out(weights: Sequence[float], total: int, start: list[int], end: list[int]) -> list[int]:
    """`total` events shared out in proportion to `weights` (largest remainders), at most one
    a minute of a customer's active time, so that their times never collide."""
    whole = sum(weights) or 1.0
    exact = [w * total / whole for w in weights]
    counts = [min(int(x), (end[i] - start[i]) // 60) for i, x in enumerate(exact)]
    left = total - sum(counts)
    by_remainder = sorted(range(len(exact)), key=lambda i: exact[i] - int(exact[i]), reverse=True)
    while left > 0:
        given = 0
        for i in by_remainder:
            if weights[i] > 0 and counts[i] < (end[i] - start[i]) // 60:
                counts[i] += 1
                given += 1
                left -= 1
                if not left:
                    break
        if not given:
            break  # nobody has room: fewer events than asked (a tiny population)
    return counts


def event_rows(pop: Population, stamp: Callable[[int], str]) -> Iterator[tuple[Any, ...]]:
    """Each customer's events, at their own rhythm with some jitter, in customer order."""
    rng = random.Random(2)
    rand = rng.random
    for i, count in enumerate(pop.events):
        if not count:
            continue
        cid, start, share = i + 1, pop.active_from[i], pop.purchase_share[i]
        step = (pop.active_until[i] - start) / count
        for k in range(count):
            at = stamp(start + int((k + rand()) * step))
            if rand() < share:
                yield (cid, "purchase", at, round(5 + rand() * 495, 2), 0)
            else:
                yield (cid, "login", at, None, 0)


def feedback_rows(
    pop: Population, answers: int, stamp: Callable[[int], str]
) -> Iterator[tuple[Any, ...]]:
    """NPS and CSAT answers from customers who were active, at random times of their active
    span, scores around each customer's mood; about a third with a comment."""
    rng = random.Random(3)
    able = [i for i, n in enumerate(pop.events) if n]
    seen: set[tuple[int, str, int]] = set()
    made = 0
    while made < answers:
        i = rng.choice(able)
        kind = "nps" if rng.random() < 0.65 else "csat"
        at = rng.randint(pop.active_from[i], pop.active_until[i])
        if (i, kind, at) in seen:
            continue
        seen.add((i, kind, at))
        mood = pop.mood[i]
        if kind == "nps":
            score = min(max(round(rng.gauss(mood, 1.6)), 0), 10)
            good = score >= 9
        else:
            score = min(max(round(1 + mood * 0.4 + rng.gauss(0, 0.7)), 1), 5)
            good = score >= 4
        comment = None
        if rng.random() < 0.3:
            comment = rng.choice(GOOD_COMMENTS if good else BAD_COMMENTS)
        source = "survey" if rng.random() < 0.4 else "import"
        yield (i + 1, kind, score, comment, stamp(at), source)
        made += 1


# --- loading --------------------------------------------------------------------------------

COLUMNS = {
    "customers": (
        "id, external_id, name, email, slack_user_id, stage, owner_slack_id, plan, region, "
        "mrr, signup_date, tags, attributes, locale, timezone, created_at, updated_at, "
        "forgotten_at"
    ),
    "stage_history": "customer_id, from_stage, to_stage, at, by, reason, basis",
    "events": "customer_id, kind, occurred_at, value, seq",
    "feedback": "customer_id, kind, score, comment, responded_at, source",
    "saved_segments": "name, expression, created_by, created_at, updated_at",
    "risk_runs": "id, day, as_of, by, started_at, finished_at, scored, at_risk",
    "risk_scores": "run_id, customer_id, risk, reasons",
    "survey_runs": "id, kind, target, created_by, created_at, queued, skipped",
    "surveys": "run_id, customer_id, kind, status, queued_at, not_before, attempts, team_post_due",
}
# Saved segments, so that `segments` and `segment <name>` have something to count.
SAVED = (
    ("vip", "plan:enterprise mrr>2000"),
    ("quiet-pros", "plan:pro inactive>60d"),
    ("detractors", "nps<7"),
)
RISK_DAYS = 2  # two daily risk passes: `at-risk` shows the change since the one before
SURVEY_RUNS = 20
SURVEY_SHARE = 20  # one customer in this many has a survey


def extra_rows(pop: Population, stamp: Callable[[int], str]) -> dict[str, list[tuple[Any, ...]]]:
    """What the read commands show besides customers, history, events and answers: saved
    segments, the last two daily risk passes over everyone, and survey runs (one customer
    in SURVEY_SHARE asked, a few still waiting for an answer)."""
    rng = random.Random(4)
    n = len(pop.customers)
    rows: dict[str, list[tuple[Any, ...]]] = {t: [] for t in COLUMNS if t not in TABLES}
    now = stamp(NOW_TS)
    rows["saved_segments"] = [(name, expr, ACTOR.id, now, now) for name, expr in SAVED]
    for day in range(RISK_DAYS):
        ts = NOW_TS - (RISK_DAYS - 1 - day) * DAY - 6 * 3600
        at = stamp(ts)
        risky = 0
        for cid in range(1, n + 1):
            risk = min(int(rng.expovariate(1 / 25)), 100)
            risky += risk >= 70
            reasons = '["no purchase in 45 days", "logins down 60%"]' if risk >= 70 else "[]"
            rows["risk_scores"].append((day + 1, cid, risk, reasons))
        day_text = datetime.fromtimestamp(ts, UTC).date().isoformat()
        rows["risk_runs"].append((day + 1, day_text, at, "bench", at, at, n, risky))
    asked = rng.sample(range(1, n + 1), n // SURVEY_SHARE)
    per_run = max(len(asked) // SURVEY_RUNS, 1)
    for run in range(SURVEY_RUNS):
        ts = NOW_TS - (SURVEY_RUNS - run) * 7 * DAY
        mine = asked[run * per_run : (run + 1) * per_run]
        kind = "nps" if run % 3 else "csat"
        rows["survey_runs"].append(
            (run + 1, kind, "stage:retention", ACTOR.id, stamp(ts), len(mine), "{}")
        )
        for cid in mine:
            recent = run == SURVEY_RUNS - 1
            status = (
                rng.choice(("sent", "queued"))
                if recent
                else rng.choice(("answered", "answered", "expired", "cancelled"))
            )
            rows["surveys"].append((run + 1, cid, kind, status, stamp(ts), stamp(ts), 1, False))
    return rows


@dataclass
class Loaded:
    seconds: dict[str, float]
    rows: dict[str, int]


TABLES = ("customers", "stage_history", "events", "feedback")


def tables(
    pop: Population, answers: int, stamp: Callable[[int], str]
) -> list[tuple[str, Iterable[tuple[Any, ...]]]]:
    return [
        ("customers", pop.customers),
        ("stage_history", pop.history),
        ("events", event_rows(pop, stamp)),
        ("feedback", feedback_rows(pop, answers, stamp)),
        *extra_rows(pop, stamp).items(),
    ]


def chunks(rows: Iterable[tuple[Any, ...]], size: int = 100_000) -> Iterator[list[Any]]:
    """`rows` a slice at a time: one executemany per slice keeps memory flat at 10M events."""
    it = iter(rows)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


def load_sqlite(path: Path, pop: Population, answers: int) -> Loaded:
    """executemany of plain tuples on a connection of its own (a big page cache, no journal
    nor fsync while loading: the file ends the same), then ANALYZE and back to WAL; the
    benchmark's engine opens its connections afresh, with clmbot's own settings."""
    stamp = stamper(".000000")
    con = sqlite3.connect(path)
    for pragma in ("journal_mode=OFF", "synchronous=OFF", "cache_size=-262144"):
        con.execute(f"PRAGMA {pragma}")
    seconds: dict[str, float] = {}
    for table, rows in tables(pop, answers, stamp):
        started = time.perf_counter()
        marks = ", ".join("?" * len(COLUMNS[table].split(", ")))
        for chunk in chunks(rows):
            con.executemany(f"INSERT INTO {table} ({COLUMNS[table]}) VALUES ({marks})", chunk)
        con.commit()
        seconds[table] = time.perf_counter() - started
    started = time.perf_counter()
    con.execute("ANALYZE")
    con.execute("PRAGMA journal_mode=WAL")
    seconds["ANALYZE"] = time.perf_counter() - started
    counts = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in COLUMNS}
    con.close()
    return Loaded(seconds, counts)


def reused(url: str, args: argparse.Namespace) -> Loaded:
    """A file filled by an earlier run with `--keep`: its counts, checked against the sizes
    asked for (the population is made again from them, with the same seeds)."""
    path = make_url(url).database
    assert path is not None
    con = sqlite3.connect(path)
    try:
        counts = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in COLUMNS}
    finally:
        con.close()
    if counts["customers"] != args.customers or counts["events"] > args.events:
        raise SystemExit(
            f"{path} holds {counts['customers']:,} customers and {counts['events']:,} events, "
            f"not the {args.customers:,} and {args.events:,} asked for"
        )
    return Loaded({"reused": 0.0}, counts)


def load_postgres(engine: Engine, pop: Population, answers: int) -> Loaded:
    """COPY of the same tuples (psycopg's `cursor.copy`), then VACUUM ANALYZE: the visibility
    map autovacuum would have set on a live database, so index-only scans are as they would
    be there."""
    stamp = stamper("+00")
    seconds: dict[str, float] = {}
    raw = engine.raw_connection()
    try:
        for table, rows in tables(pop, answers, stamp):
            started = time.perf_counter()
            driver: Any = raw.driver_connection
            sql = f"COPY {table} ({COLUMNS[table]}) FROM STDIN"
            with driver.cursor() as cur, cur.copy(sql) as copy:
                for row in rows:
                    copy.write_row(row)
            raw.commit()
            seconds[table] = time.perf_counter() - started
    finally:
        raw.close()
    started = time.perf_counter()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in ("customers", "risk_runs", "survey_runs"):
            conn.exec_driver_sql(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) FROM {table}"
            )
        for table in COLUMNS:
            conn.exec_driver_sql(f"VACUUM ANALYZE {table}")
    seconds["VACUUM ANALYZE"] = time.perf_counter() - started
    with engine.connect() as conn:
        counts = {
            t: int(conn.exec_driver_sql(f"SELECT count(*) FROM {t}").scalar() or 0) for t in COLUMNS
        }
    return Loaded(seconds, counts)


# --- measuring ------------------------------------------------------------------------------

Runner = Callable[[Session, random.Random], object]


@dataclass(frozen=True)
class Query:
    label: str
    run: Runner
    expect: tuple[type, ...] = ()  # what a command must answer; () for a bare statement
    optional: bool = False  # a command that may not exist yet


@dataclass
class Timing:
    label: str
    ms: list[float]
    note: str | None = None  # "not available", or why the figures are missing

    def median(self) -> float:
        return percentile(self.ms, 50)

    def p95(self) -> float:
        return percentile(self.ms, 95)

    def max(self) -> float:
        return max(self.ms)


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest rank: of 200 runs, p95 is the 190th fastest."""
    ordered = sorted(values)
    return ordered[max(math.ceil(pct / 100 * len(ordered)) - 1, 0)]


def command(settings: Settings, words: Callable[[random.Random], str]) -> Runner:
    def run(session: Session, rng: random.Random) -> object:
        return run_command(words(rng), session=session, settings=settings, now=NOW, actor=ACTOR)

    return run


def queries(settings: Settings, pop: Population) -> tuple[list[Query], list[Query]]:
    """The baseline statements, and the commands."""
    n = len(pop.names)

    def pk_lookup(session: Session, rng: random.Random) -> object:
        sql = text("SELECT * FROM customers WHERE id = :id")
        return session.execute(sql, {"id": rng.randint(1, n)}).one()

    def count_events(session: Session, rng: random.Random) -> object:
        return session.execute(text("SELECT count(*) FROM events")).scalar()

    def prefix(rng: random.Random) -> str:
        first, second, *_ = rng.choice(pop.names).split()
        return f"customer {first} {second[:3]}"

    def run(words: str | Callable[[random.Random], str]) -> Runner:
        return command(settings, words if callable(words) else lambda _: words)

    def ref(values: list[str]) -> Runner:
        return run(lambda rng: f"customer {rng.choice(values)}")

    def stays(rng: random.Random) -> str:
        i = rng.randrange(n)
        return f"stage {pop.external_ids[i]} {pop.customers[i][5]}"  # already there: no write

    def customer_feedback(rng: random.Random) -> str:
        return f"feedback {rng.choice(pop.external_ids)}"

    found = (ProfileResult,)
    baseline = [
        Query("SELECT count(*) FROM events", count_events),
        Query("primary-key lookup (customers.id)", pk_lookup),
    ]
    commands = [
        Query("customer <external id>", ref(pop.external_ids), found),
        Query("customer <e-mail>", ref(pop.emails), found),
        Query(
            "customer <E-MAIL>", run(lambda r: f"customer {r.choice(pop.emails).upper()}"), found
        ),
        Query("customer <exact name>", ref(pop.names), (ProfileResult, MatchesResult)),
        Query("customer <name prefix>", run(prefix), (ProfileResult, MatchesResult)),
        Query("customer <misspelt name>", ref(pop.misspelt), (NoMatchResult,)),
        Query("stage <id> <its stage> (no move)", run(stays), (StageResult,)),
        Query("funnel", run("funnel"), (FunnelResult,)),
        Query("funnel since 30d", run("funnel since 30d"), (FunnelResult,)),
        Query("funnel since 1y", run("funnel since 365d"), (FunnelResult,)),
        *(Query(s, run(s), (SegmentResult,)) for s in SEGMENTS),
        Query("segment vip (saved)", run("segment vip"), (SegmentResult,)),
        Query("segments", run("segments"), ()),
        Query("nps", run("nps"), (ScoreResult,)),
        Query("nps by plan", run("nps by plan"), (ScoreByResult,)),
        Query(
            "nps plan:pro since 6mo by region",
            run("nps plan:pro since 6mo by region"),
            (ScoreByResult,),
        ),
        Query("csat", run("csat"), (ScoreResult,)),
        Query("csat since this quarter by owner", run("csat since this quarter by owner"), ()),
        Query("feedback", run("feedback"), ()),
        Query(
            "feedback plan:pro since 30d detractors",
            run("feedback plan:pro since 30d detractors"),
            (),
        ),
        Query("feedback <customer>", run(customer_feedback), ()),
        Query("at-risk", run("at-risk"), ()),
        Query("at-risk plan:pro page 2", run("at-risk plan:pro page 2"), ()),
        Query("survey status", run("survey status"), ()),
        Query("help", run("help"), (HelpResult,)),
    ]
    return baseline, commands


NOT_THERE = (HelpResult, NotYetResult, UsageResult)


def unexpected(query: Query, result: object) -> str | None:
    """Why an answer is not the one measured, or None when it is."""
    if query.optional and isinstance(result, NOT_THERE):
        return "not available"
    if not query.expect and isinstance(result, (NotYetResult, UsageResult)):
        return f"unexpected answer {type(result).__name__}"
    if query.expect and not isinstance(result, query.expect):
        detail = getattr(result, "problem", None) or getattr(result, "note", None) or ""
        return f"unexpected answer {type(result).__name__} {detail}".rstrip()
    return None


def measure(
    engine: Engine, query: Query, runs: int, rng: random.Random, *, cold: bool = False
) -> Timing:
    """`runs` timed runs after `WARMUP`; `cold`: each one the first since a change (every
    kept report forgotten before it), as after a move or an import."""
    times: list[float] = []
    for i in range(WARMUP + runs):
        if cold:
            cache.forget_all()
        with session_scope(engine) as session:
            started = time.perf_counter()
            result = query.run(session, rng)
            elapsed = time.perf_counter() - started
        if i == 0:
            why = unexpected(query, result)
            if why:
                return Timing(query.label, [], why)
        if i >= WARMUP:
            times.append(elapsed * 1000)
    return Timing(query.label, times)


@dataclass(frozen=True)
class Statement:
    sql: str
    params: Any


def capture(engine: Engine, query: Query, rng: random.Random) -> tuple[list[Statement], float]:
    """The statements one run of `query` sends, with their parameters; and its ms."""
    seen: list[Statement] = []

    def record(
        conn: Any, cursor: Any, sql: str, params: Any, context: Any, executemany: bool
    ) -> None:
        seen.append(Statement(sql, params))

    event.listen(engine, "before_cursor_execute", record)
    try:
        with session_scope(engine) as session:
            started = time.perf_counter()
            query.run(session, rng)
            ms = (time.perf_counter() - started) * 1000
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return seen, ms


def replay(engine: Engine, statements: list[Statement]) -> list[float]:
    """ms of each statement, run again in order on one connection (a command may build a
    temporary table that its later statements read), then rolled back."""
    times = []
    with engine.connect() as conn:
        for statement in statements:
            started = time.perf_counter()
            result = conn.exec_driver_sql(statement.sql, statement.params)
            if result.returns_rows:
                result.fetchall()
            times.append((time.perf_counter() - started) * 1000)
        conn.rollback()
    return times


def plan(engine: Engine, before: list[Statement], statement: Statement) -> list[str]:
    """The plan of `statement`, after the statements that came before it (rolled back)."""
    with engine.connect() as conn:
        for earlier in before:
            conn.exec_driver_sql(earlier.sql, earlier.params)
        if engine.dialect.name == "sqlite":
            rows = conn.exec_driver_sql(
                "EXPLAIN QUERY PLAN " + statement.sql, statement.params
            ).all()
            conn.rollback()
            depth: dict[int, int] = {0: -1}
            lines = []
            for node, parent, _, detail in rows:
                depth[node] = depth.get(parent, -1) + 1
                lines.append("  " * depth[node] + detail)
            return lines
        rows = conn.exec_driver_sql(
            "EXPLAIN (ANALYZE, BUFFERS) " + statement.sql, statement.params
        ).all()
        conn.rollback()
        return [r[0] for r in rows]


def explain(engine: Engine, query: Query, timing: Timing, rng: random.Random) -> None:
    statements, ms = capture(engine, query, rng)
    times = replay(engine, statements)
    timed = sorted(zip(times, range(len(statements)), strict=True), key=lambda p: -p[0])
    total = sum(times)
    print()
    print(
        f"--- {timing.label}: p95 {timing.p95():.1f} ms, median {timing.median():.1f} ms; "
        f"this run {ms:.1f} ms, {len(statements)} statements, their SQL alone {total:.1f} ms"
    )
    if not timed:
        return
    for took, i in timed:
        first_line = " ".join(statements[i].sql.split())[:110]
        print(f"  {took:9.1f} ms  {first_line}")
    took, i = timed[0]
    slowest = statements[i]
    print(f"slowest statement ({took:.1f} ms), parameters {slowest.params!r}:")
    print("    " + "\n    ".join(slowest.sql.strip().splitlines()))
    if not slowest.sql.lstrip().upper().startswith(("SELECT", "WITH", "INSERT")):
        return
    label = "EXPLAIN QUERY PLAN" if engine.dialect.name == "sqlite" else "EXPLAIN ANALYZE"
    print(f"{label}:")
    for line in plan(engine, statements[:i], slowest):
        print("    " + line)


# --- the run --------------------------------------------------------------------------------


def postgres_schema(url: str) -> tuple[str, str]:
    """A fresh schema, and the URL of it."""
    schema = f"clmbot_bench_{uuid.uuid4().hex[:8]}"
    admin = make_engine(url)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    finally:
        admin.dispose()
    scoped = make_url(normalise_url(url)).update_query_dict({"options": f"-csearch_path={schema}"})
    return schema, scoped.render_as_string(hide_password=False)


def drop_schema(url: str, schema: str) -> None:
    admin = make_engine(url)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        admin.dispose()


def load() -> str:
    """The load averages (1, 5, 15 min): on a shared machine, what the figures are worth."""
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def bench(url: str, args: argparse.Namespace, where: str) -> int:
    started = time.perf_counter()
    engine = make_engine(url)
    upgrade(engine)
    postgres = engine.dialect.name == "postgresql"
    pop = make_population(args.customers, args.events, stamper("+00" if postgres else ".000000"))
    made = time.perf_counter() - started
    if postgres:
        loaded = load_postgres(engine, pop, args.answers)
    elif args.reuse:
        engine.dispose()
        loaded = reused(url, args)
    else:
        engine.dispose()  # the load has its own connection; measure on fresh ones
        path = make_url(url).database
        assert path is not None
        loaded = load_sqlite(Path(path), pop, args.answers)
    changed, kept_in = keep_latest(engine)
    engine.dispose()
    loaded.seconds[f"latest values kept ({changed:,} changed)"] = kept_in
    total = time.perf_counter() - started

    print(f"clmbot query latency on {where}")
    print(f"machine: {os.cpu_count()} CPUs, load average {load()} before generating")
    print(
        "data: "
        + ", ".join(f"{t} {n:,}" for t, n in loaded.rows.items())
        + f"; now = {NOW:%Y-%m-%d %H:%M} UTC"
    )
    steps = ", ".join(f"{t} {s:.1f} s" for t, s in loaded.seconds.items())
    print(
        f"generated and loaded in {total:.1f} s (schema and customers in memory {made:.1f} s, "
        f"{steps})"
    )

    settings = Settings(database_url=url)
    baseline, commands = queries(settings, pop)
    if args.only:
        commands = [q for q in commands if any(q.label.startswith(o) for o in args.only)]
    if args.skip:
        commands = [q for q in commands if not any(q.label.startswith(o) for o in args.skip)]
    rng = random.Random(args.seed)
    print(
        f"{args.runs} runs each after {WARMUP} warm-up runs; ms in this process, "
        "one session per run (run_command, no HTTP)"
    )
    print(f"load average {load()} before measuring")
    print(
        f"reports are kept while nothing they read changes (clmbot/store/cache.py): 'first' is "
        f"p50 and max of {args.cold_runs} runs each made the first since a change"
    )
    print(f"{'':<42}{'p50':>10}{'p95':>10}{'max':>10}{'first p50':>12}{'first max':>11}")
    results: list[tuple[Query, Timing]] = []
    firsts: list[Timing] = []
    for group, queries_ in (("baseline", baseline), ("command", commands)):
        for query in queries_:
            timing = measure(engine, query, args.runs, rng)
            results.append((query, timing))
            label = f"{group}: {query.label}" if group == "baseline" else query.label
            if timing.note:
                print(f"{label:<42}{timing.note:>20}")
                continue
            first = ""
            if group == "command" and args.cold_runs:
                cold = measure(engine, query, args.cold_runs, rng, cold=True)
                firsts.append(cold)
                first = f"{cold.median():>12.1f}{cold.max():>11.1f}"
            mark = "  over" if group == "command" and timing.p95() > TARGET_MS else ""
            print(
                f"{label:<42}{timing.median():>10.1f}{timing.p95():>10.1f}"
                f"{timing.max():>10.1f}{first}{mark}"
            )
    slow = [(q, t) for q, t in results if q in commands and t.ms and t.p95() > TARGET_MS]
    over = ", ".join(t.label for _, t in slow) or "none"
    print(f"load average {load()} after measuring")
    print(f"target p95 <= {TARGET_MS:.0f} ms; over it: {over}")
    cold_over = ", ".join(t.label for t in firsts if t.median() > TARGET_MS) or "none"
    print(f"first answer after a change, p50 over {TARGET_MS:.0f} ms: {cold_over}")
    for query, timing in slow:
        explain(engine, query, timing, rng)
    engine.dispose()
    failed = [t for q, t in results if t.note and not q.optional]
    for t in failed:
        print(f"FAIL: {t.label}: {t.note}", file=sys.stderr)
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=3_000_000)
    parser.add_argument("--answers", type=int, default=200_000, help="NPS and CSAT answers")
    parser.add_argument("--runs", type=int, default=200, help="timed runs per query")
    parser.add_argument("--seed", type=int, default=7, help="for the customers looked up")
    parser.add_argument(
        "--cold-runs",
        type=int,
        default=5,
        help="runs of each command as the first since a change (0: none)",
    )
    parser.add_argument(
        "--postgres",
        nargs="?",
        const=DEFAULT_PG_URL,
        metavar="URL",
        help=f"run on PostgreSQL, in a fresh schema (default URL {DEFAULT_PG_URL})",
    )
    parser.add_argument(
        "--keep",
        type=Path,
        metavar="FILE",
        help="keep the SQLite db as FILE; when FILE exists, measure it again without refilling",
    )
    parser.add_argument(
        "--only", action="append", metavar="LABEL", help="only the commands that begin so"
    )
    parser.add_argument(
        "--skip", action="append", metavar="LABEL", help="not the commands that begin so"
    )
    args = parser.parse_args()
    if args.customers < 10 or args.runs < 1:
        parser.error("use at least 10 customers and 1 run")
    if args.postgres and args.keep:
        parser.error("--keep is for the SQLite file; PostgreSQL's schema is always dropped")

    if args.postgres:
        schema, url = postgres_schema(args.postgres)
        try:
            host = make_url(normalise_url(args.postgres)).render_as_string(hide_password=True)
            return bench(url, args, f"postgresql ({host}, schema {schema})")
        finally:
            drop_schema(args.postgres, schema)

    args.reuse = False
    if args.keep:
        path = args.keep.resolve()
        # A file kept by an earlier run with the same sizes is measured again, not refilled.
        args.reuse = path.exists()
        how = "reused" if args.reuse else "kept"
        return bench(f"sqlite:///{path}", args, f"sqlite ({path}, {how})")
    folder = Path(tempfile.mkdtemp(prefix="clmbot-queries-"))
    try:
        path = folder / "bench.db"
        return bench(
            f"sqlite:///{path}", args, f"sqlite (temporary file, {sqlite3.sqlite_version})"
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
