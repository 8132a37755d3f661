"""Property tests of the `/clm` parser on arbitrary text, against a real database.

Whatever a person types (or a button carries), `run_command` answers with one of the
results in `clmbot.commands.Result` and never raises; the answer renders as Block Kit within
Slack's caps and as plain text; and only an admin's words ever write to the stage history or
the audit log.

Examples per property: CLMBOT_FUZZ_EXAMPLES (default 1000), e.g.
`CLMBOT_FUZZ_EXAMPLES=20000 pytest tests/test_commands_fuzz.py`. Every example runs in a
session of its own that is rolled back, so that an admin's stage move in one example is not
seen by the next.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import re
import typing
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, Phase, event, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from clmbot import plain
from clmbot.commands.registry import COMMANDS
from clmbot.commands.run import run_command
from clmbot.commands.spec import Actor
from clmbot.config import DisplayConfig, Settings
from clmbot.importing.runner import import_file
from clmbot.results import (
    FunnelResult,
    HelpResult,
    MatchesResult,
    NoMatchResult,
    ProfileResult,
    Result,
    StageResult,
)
from clmbot.slack.views import render
from clmbot.slack.views.base import IN_CHANNEL, IN_DM, OPEN_PROFILE, RUN_WORDS, Message
from clmbot.store.models import AuditEntry, StageChange

EXAMPLES = int(os.environ.get("CLMBOT_FUZZ_EXAMPLES") or 1000)
hsettings.register_profile(
    "clmbot-fuzz-commands",
    max_examples=EXAMPLES,
    deadline=None,
    # The database fixtures are set up once per test, not per example: on purpose, every
    # example rolls its own session back.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    # No example database in the working tree: a failure prints what reproduces it.
    database=None,
    print_blob=True,
    # Explaining a failure re-runs it hundreds of times: minutes, against a database.
    phases=[Phase.explicit, Phase.generate, Phase.target, Phase.shrink],
)
# Applied to each test rather than with `load_profile`, which is global: it would also set
# the count of every other Hypothesis test collected in the same run.
FUZZ = hsettings(hsettings.get_profile("clmbot-fuzz-commands"))
# Narrower cases of the typed text, with fewer examples: word lists and commands as meant
# (half as many: they reach the database more), and the member-only property (a quarter:
# the others check members too, for 3 actors of 4).
FUZZ_HALF = hsettings(FUZZ, max_examples=max(EXAMPLES // 2, 1))
FUZZ_QUARTER = hsettings(FUZZ, max_examples=max(EXAMPLES // 4, 1))

RESULT_TYPES = typing.get_args(Result)
ADMIN = Actor("U0ADMIN", is_admin=True, channel="C0CS", admins=("U0ADMIN",))
MEMBER = Actor("U0MEMBER", is_admin=False, channel="C0CS", admins=("U0ADMIN",))
MEMBER_MANY_ADMINS = Actor(
    "U0MEMBER2", is_admin=False, channel=None, admins=tuple(f"U0ADM{i}" for i in range(7))
)
NOBODY_ADMIN = Actor("cli:someone", is_admin=False, channel=None, admins=())
ACTORS = (ADMIN, MEMBER, MEMBER_MANY_ADMINS, NOBODY_ADMIN)

# --- the customers every example is run against ------------------------------------------

LONG_ID = "L" + "x" * 199  # the longest external id a customer may have
CUSTOMERS: list[dict[str, str]] = [
    {"external_id": "A1", "name": "Acme Corp", "email": "ops@acme.io", "stage": "purchase"},
    {"external_id": "A2", "name": "Acme Labs", "email": "ops@acme.io", "stage": "retention"},
    {"external_id": "A3", "name": "acme", "stage": "awareness"},
    {"external_id": "R1", "name": "Retention Partners", "stage": "purchase"},
    {"external_id": "R2", "name": "Retention Partners Asia", "stage": "advocacy"},
    *(
        {"external_id": f"S{i:02}", "name": f"Shop {i}", "stage": "consideration"}
        for i in range(1, 14)
    ),
    {"external_id": "X1", "name": "<!channel> & <@U0123> *bold* `code` _it_", "stage": ""},
    {"external_id": "X2", "name": "&" * 300, "email": "amp@example.com", "stage": "churned"},
    {"external_id": "X3", "name": 'O\'Brien "Quoted" “Curly” \u2018it\u2019', "stage": "purchase"},
    {"external_id": "X4", "name": "Multi\nline\r\nname", "stage": "retention"},
    {"external_id": "X5", "name": "Ünïcödé 日本語 🎉 ﷽", "email": "u@example.com", "stage": ""},
    {"external_id": "Z 1", "name": "Spaced Id", "stage": "consideration"},
    {"external_id": "=1+2", "name": '=HYPERLINK("x")', "stage": "awareness"},
    {"external_id": LONG_ID, "name": "N" * 300, "email": "long@example.com", "stage": "purchase"},
    {
        "external_id": "H1",
        "name": "History & Co <b>",
        "stage": "retention",
        "owner_slack_id": "U0OWNER",
        "plan": "pro & <more>",
        "mrr": "1250.50",
        "signup_date": "2024-01-15",
        "tags": "; ".join(f"tag & {i} " + "<" * 40 for i in range(14)),
    },
]
EVENTS = [
    ("H1", "purchase", "2026-11-20T10:00:00Z", "99.5"),
    ("H1", "login & <x>", "2026-11-23", ""),
    ("A1", "login", "2026-10-01", ""),
    ("X2", "ticket", "2025-01-01", "1"),
]
FEEDBACK = [
    ("H1", "nps", "3", "too expensive & <slow> " * 60, "2026-11-01"),
    ("H1", "csat", "5", "*great* `support`", "2026-11-02"),
    ("X2", "nps", "10", "", "2026-10-01"),
]
STAGE_MOVES = [
    # H1 has a long history, more than a card shows, with reasons longer than a card shows
    ("H1", stage, f"2025-{month:02}-01", by, reason)
    for month, (stage, by, reason) in enumerate(
        [
            ("awareness", "U0SALES", ""),
            ("consideration", "Sari & <team>", "demo & <call> " * 30),
            ("purchase", "", "&" * 250),
            ("retention", "U0CS", "renewed"),
            ("advocacy", "W0ENT", "<!here> " * 40),
            ("retention", "import", "import of old.csv"),
            ("churned", "", "left"),
            ("retention", "U0CS", "&<>" * 100),
            ("advocacy", "", ""),
            ("retention", "", "back"),
        ],
        start=1,
    )
]

STAGES = ("awareness", "consideration", "purchase", "retention", "advocacy", "churned")


def _write(path: Path, header: list[str], rows: list[typing.Sequence[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@dataclasses.dataclass(frozen=True)
class World:
    engine: Engine
    settings: Settings
    history_rows: int
    audit_rows: int


@pytest.fixture
def world(engine, settings, now, tmp_path) -> World:
    """The customers above, imported as a team would, with events, answers and history."""
    columns = ["external_id", "name", "email", "stage", "owner_slack_id", "plan", "mrr"]
    columns += ["signup_date", "tags"]
    files = [
        ("customers", columns, [[c.get(k, "") for k in columns] for c in CUSTOMERS]),
        ("events", ["customer_external_id", "kind", "occurred_at", "value"], EVENTS),
        (
            "feedback",
            ["customer_external_id", "kind", "score", "comment", "responded_at"],
            FEEDBACK,
        ),
        ("stages", ["customer_external_id", "stage", "moved_at", "by", "reason"], STAGE_MOVES),
    ]
    for kind, header, data in files:
        path = _write(tmp_path / f"{kind}.csv", header, data)
        report = import_file(engine, kind, path, settings, now=now)
        assert report.rejected == 0, (kind, report.summary())
    with Session(engine) as s:
        history = s.scalar(select(func.count()).select_from(StageChange))
        audit = s.scalar(select(func.count()).select_from(AuditEntry))
    assert history and history > len(STAGE_MOVES)
    return World(engine, settings, history or 0, audit or 0)


# --- what is typed ---------------------------------------------------------------------------

VOCABULARY = [
    "help", "HELP", "customer", "Customer", "CUSTOMER", "stage", "Stage", "funnel", "since",
    "Since", "nps", "segment", "at-risk", "forget", "hi", "Hello!", "thanks", "clm", "/clm",
    "fnnel", "custmer", "stge", "xyzzy", *STAGES, "Retention", "ADVOCACY", "vip",
    "today", "yesterday", "0d", "30d", "12w", "3mo", "1y", "99999y", "99999d", "this month",
    "last quarter", "this", "last", "week", "2024-05-01", "2099-01-01", "0001-01-01",
    "9999-12-31", *(c["external_id"] for c in CUSTOMERS), "Acme", "acme", "ACME CORP",
    "Acme Corp", "Shop", "Shop 1", "Shop 1", "Retention Partners", "History", "ops@acme.io",
    "OPS@ACME.IO", "u@example.com", "nobody@example.com", "Spaced Id", "<!channel>", "&amp;",
    "&", "<", ">", "`", "*", "_", "~", "%", "\\", "'", '"', "“", "”", "\u2018", "\u2019", "«", "»",
    "…", "\u200b", "\u00a0", "🎉", "日本語", "O'Brien",
]  # fmt: skip
SEPARATORS = [" ", " ", " ", "  ", "\t", "\n", "\r\n", "\u00a0", "\u3000", '"', "“", "”",
              " \"", "\" ", " “", "” ", "'", "\u2019", "", "\x00", "\x0b"]  # fmt: skip

COMMAND_WORDS = [
    "customer", "stage", "funnel", "funnel since", "help", "Customer", "STAGE", "FUNNEL Since",
    "clm customer", "/clm stage", "clm funnel since", "hi", "nps", "fnnel", "",
]  # fmt: skip
# What follows a command: mostly words that mean something here (customers, stages, periods).
REFS = [
    *(c["external_id"] for c in CUSTOMERS), *(c["name"] for c in CUSTOMERS), *STAGES,
    "Acme", "acme", "Shop", "Shop 1", "Retention", "Retention Partners", "ops@acme.io",
    "u@example.com", "30d", "this month", "2024-05-01", "today",
]  # fmt: skip

words = st.one_of(st.sampled_from(VOCABULARY), st.text(max_size=12))
separators = st.sampled_from(SEPARATORS)
spaces = st.sampled_from([" ", " ", "  ", "\t", "\n", " \r\n"])
refs = st.sampled_from(REFS)
quoted = st.builds(
    lambda ref, quotes: quotes[0] + ref + quotes[1],
    refs,
    st.sampled_from(['""', "“”", "””", '“"', "\u2018\u2019"]),
)
arguments = st.lists(
    st.tuples(
        st.one_of(refs, refs, refs, quoted, words),
        st.one_of(spaces, spaces, spaces, separators),
    ),
    max_size=8,
).map(lambda pairs: "".join(w + s for w, s in pairs))
commands = st.builds(
    lambda command, sep, args: command + sep + args,
    st.sampled_from(COMMAND_WORDS),
    spaces,
    arguments,
)
# And commands as people mean them: a command, then customers, stages, periods and reasons.
plain_quoted = st.builds(lambda ref, q: q[0] + ref + q[1], refs, st.sampled_from(['""', "“”"]))
meant = st.one_of(
    st.builds(
        lambda command, args: " ".join([command, *args]),
        st.sampled_from(["customer", "stage", "funnel", "funnel since", "stage Shop", "help"]),
        st.lists(st.one_of(refs, refs, plain_quoted, st.sampled_from(VOCABULARY)), max_size=5),
    ),
    st.builds(
        lambda ref, stage, reason: " ".join(["stage", ref, stage, *reason]),
        st.one_of(refs, plain_quoted),
        st.sampled_from([*STAGES, "Retention", "ADVOCACY", "vip"]),
        st.lists(st.one_of(st.sampled_from(VOCABULARY), st.text(max_size=30)), max_size=4),
    ),
)
phrases = st.lists(st.tuples(words, separators), max_size=12).map(
    lambda pairs: "".join(w + s for w, s in pairs)
)
# Long text, cheaply: a short piece repeated; at most 15,000 characters, five times a
# section's cap (test_a_very_long_name_on_sqlite goes further).
LONGEST = 15_000
long_text = st.builds(
    lambda head, piece, times: (head + piece * times)[:LONGEST],
    st.sampled_from(["", "customer ", "stage A1 retention ", "stage ", "funnel since ", "hi "]),
    st.text(min_size=1, max_size=8),
    st.integers(min_value=200, max_value=4000),
)
# Text of the characters that escaping is for, long enough to be cut.
markup = st.builds(
    lambda head, body: head + body,
    st.sampled_from(["", "customer ", "stage H1 retention ", "stage Acme advocacy "]),
    st.text(alphabet='&<>"“” a', max_size=1500),  # escaped, up to 7,500 characters
)
typed = st.one_of(st.text(), commands, phrases, long_text, markup)
# run_command also takes words already split (a button's value): any words, and commands.
word_lists = st.one_of(
    st.lists(st.one_of(words, st.text()), max_size=12),
    st.builds(
        lambda command, args: [*command.split(), *args],
        st.sampled_from(COMMAND_WORDS),
        st.lists(st.one_of(refs, refs, words), max_size=8),
    ),
)

ZONES = [ZoneInfo("UTC"), ZoneInfo("Asia/Jakarta"), ZoneInfo("Pacific/Kiritimati")]
ZONES += [ZoneInfo("America/St_Johns")]
DISPLAYS = [DisplayConfig(), DisplayConfig(currency="€"), DisplayConfig(currency="Rp")]

# --- Block Kit caps --------------------------------------------------------------------------


# In mrkdwn, data is escaped: every & starts an entity, and no <!channel>, <!here> or
# <!subteam…> reaches Slack from a name, a reason or what was typed.
BROKEN_ENTITY = re.compile(r"&(?!amp;|lt;|gt;)")


def check_mrkdwn(text: str, cap: int | None = None) -> None:
    assert not BROKEN_ENTITY.search(text), text
    assert "<!" not in text, text


def check_message(message: Message) -> None:
    """A message Slack accepts: within Block Kit's caps, no empty text, data escaped, JSON."""
    assert isinstance(message.text, str) and message.text
    check_mrkdwn(message.as_kwargs()["text"])
    blocks = message.blocks
    assert 1 <= len(blocks) <= 50
    for block in blocks:
        kind = block["type"]
        if kind == "section":
            assert "text" in block or "fields" in block
            if "text" in block:
                assert 1 <= len(block["text"]["text"]) <= 3000
                check_mrkdwn(block["text"]["text"], 3000)
            fields = block.get("fields", [])
            assert len(fields) <= 10
            assert all(1 <= len(f["text"]) <= 2000 for f in fields)
            for f in fields:
                check_mrkdwn(f["text"], 2000)
        elif kind == "header":
            assert block["text"]["type"] == "plain_text"
            assert 1 <= len(block["text"]["text"]) <= 150
        elif kind == "context":
            assert 1 <= len(block["elements"]) <= 10
            assert all(1 <= len(e["text"]) <= 3000 for e in block["elements"])
            for e in block["elements"]:
                check_mrkdwn(e["text"], 3000)
        elif kind == "actions":
            buttons = block["elements"]
            assert 1 <= len(buttons) <= 25
            assert len({b["action_id"] for b in buttons}) == len(buttons)
            for b in buttons:
                assert b["type"] == "button"
                assert 1 <= len(b["text"]["text"]) <= 75
                assert len(b["value"]) <= 2000
                assert len(b["action_id"]) <= 255
        else:
            raise AssertionError(f"unexpected block type {kind}")
    json.dumps(message.as_kwargs())


def render_all(result: Result, zone: ZoneInfo, now, display: DisplayConfig) -> list[Message]:
    """The result as Slack shows it (in a channel and in a DM) and as the terminal does."""
    messages = [render(result, zone, now, prefix=p, display=display) for p in (IN_CHANNEL, IN_DM)]
    for message in messages:
        check_message(message)
    match result:
        case ProfileResult():
            for full in (False, True):
                assert plain.profile_text(result.profile, zone, display, full=full)
        case StageResult():
            assert plain.move_text(result.move, result.customer.name)
        case FunnelResult():
            assert plain.funnel_text(result.funnel, zone)
    return messages


# --- the properties --------------------------------------------------------------------------


def _counts(session: Session) -> tuple[int, int]:
    """Rows in the stage history and in the audit log, in one query."""
    history = select(func.count()).select_from(StageChange).scalar_subquery()
    audit = select(func.count()).select_from(AuditEntry).scalar_subquery()
    row = session.execute(select(history, audit)).one()
    return int(row[0]), int(row[1])


def _buttons(message: Message) -> list[dict[str, typing.Any]]:
    return [e for b in message.blocks if b["type"] == "actions" for e in b["elements"]]


def check_command(
    world: World,
    text: str | list[str],
    actor: Actor,
    in_dm: bool,
    zone: ZoneInfo,
    display: DisplayConfig,
    now,
) -> None:
    settings = dataclasses.replace(world.settings, timezone=zone, display=display)
    with Session(world.engine) as s:
        try:
            result = run_command(
                text, session=s, settings=settings, now=now, actor=actor, in_dm=in_dm
            )
            assert isinstance(result, RESULT_TYPES), type(result)
            event(type(result).__name__)
            messages = render_all(result, zone, now, display)
            s.flush()
            history, audit = _counts(s)
            if not actor.is_admin or not isinstance(result, StageResult):
                # Only an admin's stage move writes: everything else reads.
                assert (history, audit) == (world.history_rows, world.audit_rows), result
            else:
                # A move is one history row and its audit entry; a move to the current stage
                # writes nothing.
                wrote = int(result.move.changed)
                assert (history, audit) == (world.history_rows + wrote, world.audit_rows + wrote)
            # Every button finishes what was asked, for the customer it names, run as the
            # action listeners run it (a run button's words; a card's external id).
            for button in _buttons(messages[0]):
                if button["action_id"].startswith(RUN_WORDS):
                    again_words = json.loads(button["value"])[:50]
                else:
                    assert button["action_id"].startswith(OPEN_PROFILE)
                    again_words = ["customer", button["value"]]
                again = run_command(again_words, session=s, settings=settings, now=now, actor=actor)
                assert isinstance(again, RESULT_TYPES)
                assert not isinstance(again, (MatchesResult, NoMatchResult)), (
                    again_words,
                    again,
                )
                render_all(again, zone, now, display)
        finally:
            s.rollback()
        if history != world.history_rows:
            # Rolled back: the next example starts from the same database.
            assert _counts(s) == (world.history_rows, world.audit_rows)


examples = dict(
    actor=st.sampled_from(ACTORS),
    in_dm=st.booleans(),
    zone=st.sampled_from(ZONES),
    display=st.sampled_from(DISPLAYS),
    days=st.integers(min_value=-400, max_value=400),
)


@FUZZ
@given(text=typed, **examples)
def test_typed_text_always_gets_an_answer_that_renders(
    world, now, text, actor, in_dm, zone, display, days
):
    check_command(world, text, actor, in_dm, zone, display, now + timedelta(days=days))


@FUZZ_HALF
@given(word_list=word_lists, **examples)
def test_words_already_split_always_get_an_answer_that_renders(
    world, now, word_list, actor, in_dm, zone, display, days
):
    check_command(world, word_list, actor, in_dm, zone, display, now + timedelta(days=days))


@FUZZ_HALF
@given(
    text=st.one_of(
        meant,
        st.builds(lambda t: t.split(), meant),  # as a button's words
    ),
    **examples,
)
def test_commands_as_meant_get_an_answer_that_renders(
    world, now, text, actor, in_dm, zone, display, days
):
    """Commands as people mean them, which reach the customers: profiles, stage moves,
    several matches and their buttons, the funnel over any period."""
    check_command(world, text, actor, in_dm, zone, display, now + timedelta(days=days))


@FUZZ_QUARTER
@given(
    prefix=st.sampled_from(["stage ", "STAGE ", "clm stage ", "/clm Stage\t", ""]),
    text=st.one_of(typed, meant),
    actor=st.sampled_from([MEMBER, MEMBER_MANY_ADMINS, NOBODY_ADMIN]),
)
def test_a_member_never_writes(world, now, prefix, text, actor):
    """The refusal comes before any look-up: a member's `stage` never writes, whatever
    follows it (check_command counts the rows of the history and the audit log)."""
    check_command(world, prefix + text, actor, True, ZONES[0], DISPLAYS[0], now)


# --- known bugs, kept as they are found (strict: a fix makes these fail, to be un-marked) ---


def _run_alone(world: World, now, text: str, actor: Actor = MEMBER) -> Result:
    with Session(world.engine) as s:
        try:
            return run_command(text, session=s, settings=world.settings, now=now, actor=actor)
        finally:
            s.rollback()


def test_a_very_long_name_on_sqlite(world, now):
    """12,500 emoji (50,000 bytes) are well within a Slack message (40,000 characters); as a
    LIKE pattern SQLite would refuse them (over SQLITE_MAX_LIKE_PATTERN_LENGTH), but no id,
    e-mail or name is that long, so nothing is asked of the database."""
    assert isinstance(_run_alone(world, now, "customer " + "🎉" * 12_500), NoMatchResult)


def test_a_nul_character_on_postgresql(world, now):
    """A NUL character in what is typed never reaches PostgreSQL (whose text cannot hold
    one): it is dropped as the words are read."""
    assert isinstance(_run_alone(world, now, "customer a\x00b"), NoMatchResult)
    result = _run_alone(world, now, "stage A1 retention why\x00", ADMIN)
    assert isinstance(result, StageResult)


def test_clipping_escaped_text_never_cuts_an_entity_in_half(now):
    """A long unknown word, customer reference or reason full of < or &, clipped to fit a
    section, must not end in `&l…` or `&am…`, which Slack would show as it is."""
    result = HelpResult(list(COMMANDS.values()), "I don't know `" + "<" * 1000 + "`.")
    message = render(result, ZONES[0], now)
    check_mrkdwn(message.blocks[0]["text"]["text"])
