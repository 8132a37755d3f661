"""Properties of the segment language, with Hypothesis.

(a) Whatever is typed, parsing (and compiling, and running what parses) raises nothing but
    `SegmentError`.
(b) On random customers, events, answers and stage histories, a random segment selects in
    SQL exactly the customers the plain-Python reference (`evaluate.py`) selects, on SQLite
    and on PostgreSQL.

Examples: CLMBOT_FUZZ_EXAMPLES (default 1000) for the text-only property; the properties that
reach the database run a tenth as many (each example builds its own small world, in a
transaction that is rolled back).
"""

from __future__ import annotations

import contextlib
import os
from datetime import UTC, date, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, Phase, given, note
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import Engine, insert, select
from sqlmodel import Session

from clmbot.config import DEFAULT_STAGES
from clmbot.segments.compile import compile_segment
from clmbot.segments.language import (
    ME,
    Ago,
    Filter,
    SegmentError,
    parse_segment,
)
from clmbot.store import latest
from clmbot.store.models import EXACT, IMPORTED, SIGNUP, Customer, Event, Feedback, StageChange
from tests.conftest import NOW
from tests.segments.evaluate import Evaluator, Move, Person

EXAMPLES = int(os.environ.get("CLMBOT_FUZZ_EXAMPLES") or 1000)
_BASE = hsettings(
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
    print_blob=True,
    phases=[Phase.explicit, Phase.generate, Phase.target, Phase.shrink],
)
TEXT_ONLY = hsettings(_BASE, max_examples=EXAMPLES)
WITH_DB = hsettings(_BASE, max_examples=max(EXAMPLES // 10, 1))

TODAY = NOW.date()
DAY = timedelta(days=1)
ZONES = [UTC, ZoneInfo("Pacific/Auckland"), ZoneInfo("America/Los_Angeles")]

# Pools small enough that filters and data meet, with the awkward cases in them: case, non-
# ASCII letters, LIKE's wildcards, quotes, spaces, keys a JSON path would trip on.
TEXTS = ["pro", "Pro", "PRO", "team", "a_c", "abc", "100%", "1000", "é", "É", "x y", 'q"t', "a\\c"]
TAGS = ["vip", "VIP", "trial", "v_p", "é", "É", "a b", "50%"]
KEYS = ["industry", "seats", "account manager", 'say "hi"', "é.x", "a\\b", "K"]
ATTR_VALUES = ["retail", "Retail", "RETAIL", "12", "3.5", "-4", "many", "10", "0.5", "1e3", "Ü"]
ATTR_NUMBERS = [-5.0, -4.0, 0.0, 0.5, 3.5, 10.0, 12.0, 1000.0]
OWNERS = ["U0ME", "U0THEM"]
MRRS = [0.0, 20.0, 500.0, 500.5, 1200.0]
DAYS = [0, 1, 6, 7, 8, 29, 30, 31, 89, 90, 91, 365, 366, 800]
DURATIONS = [0, 1, 7, 30, 31, 45, 90]


# --- (a) text --------------------------------------------------------------------------------

TOKENS = [
    "stage", "plan", "region", "tag", "owner", "nps", "csat", "risk", "mrr", "inactive",
    "in-stage", "signup", "attr.", "attr.seats", "-", ":", ">", "<", ">=", "<=", "=", ",", '"',
    "\u201c", "\u201d", '""', " ", "  ", "\t", "\x00", "\n", "retention", "@me", "<@U0ME|x>",
    "none", "30d", "12w", "3mo", "1y", "2024-05-01", "2024-02-30", "7", "-1", "11", "1.5",
    "abc", "%", "_", "\\", "vip", "VIP", "or", "!", "é", "\ud800", "99999w", "1e400", "$5",
]  # fmt: skip
typed = st.one_of(
    st.text(),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=60),
    st.lists(st.sampled_from(TOKENS), max_size=14).map("".join),
    st.lists(st.one_of(st.sampled_from(TOKENS), st.text(max_size=3)), max_size=10).map("".join),
)
SAVED = {"vip": "plan:pro mrr>500", "Broken": "stage:gone", "mine": "owner:@me"}


@TEXT_ONLY
@given(text=typed)
def test_any_text_parses_or_says_why(text):
    try:
        segment = parse_segment(text, stages=DEFAULT_STAGES, saved=SAVED)
    except SegmentError as exc:
        assert 1 <= exc.position <= len(text) + 1
        assert str(exc)
        return
    # What parses writes back to text that parses to the same filters.
    again = parse_segment(segment.canonical, stages=DEFAULT_STAGES)
    assert [_plain(f) for f in again.filters] == [_plain(f) for f in segment.filters]
    for dialect in ("sqlite", "postgresql"):
        with contextlib.suppress(SegmentError):
            compile_segment(segment, now=NOW, dialect=dialect, actor_id="U0ME")


def _plain(f: Filter) -> tuple:
    return (f.field, f.op, f.values, f.negated, f.key)


@pytest.fixture
def world(engine: Engine):
    """A connection whose work each example rolls back."""
    with engine.connect() as conn:
        yield conn


@WITH_DB
@given(text=typed)
def test_whatever_parses_also_runs(world, text):
    try:
        segment = parse_segment(text, stages=DEFAULT_STAGES, saved=SAVED)
        where = compile_segment(segment, now=NOW, dialect=world.dialect.name, actor_id="U0ME")
    except SegmentError:
        return
    with world.begin() as trans:
        world.execute(select(Customer.id).where(where)).all()
        trans.rollback()


# --- (b) SQL against the reference ---------------------------------------------------------


@st.composite
def people(draw: st.DrawFn) -> list[Person]:
    out = []
    for i in range(draw(st.integers(1, 7))):
        stage = draw(st.sampled_from(DEFAULT_STAGES))
        person = Person(
            external_id=f"c{i}",
            stage=stage,
            created_at=NOW - draw(st.sampled_from(DAYS)) * DAY,
            plan=draw(st.none() | st.sampled_from(TEXTS)),
            region=draw(st.none() | st.sampled_from(TEXTS)),
            owner=draw(st.none() | st.sampled_from(OWNERS)),
            mrr=draw(st.none() | st.sampled_from(MRRS)),
            signup=draw(st.none() | st.sampled_from(DAYS).map(lambda d: TODAY - d * DAY)),
            tags=draw(st.lists(st.sampled_from(TAGS), max_size=3, unique=True)),
            attributes=draw(
                st.dictionaries(st.sampled_from(KEYS), st.sampled_from(ATTR_VALUES), max_size=3)
            ),
            forgotten=draw(st.integers(0, 9)) == 0,
        )
        moments = st.sampled_from([-2, *DAYS]).map(lambda d: NOW - d * DAY)
        person.events = draw(st.lists(moments, max_size=4, unique=True))
        for kind, scores in (("nps", st.integers(0, 10)), ("csat", st.integers(1, 5))):
            times = draw(st.lists(moments, max_size=3, unique=True))
            person.answers += [(kind, draw(scores), at) for at in times]
        times = sorted(draw(st.lists(moments, max_size=3, unique=True)))
        previous = None
        for n, at in enumerate(times):
            # The last move usually leads to the stored stage, sometimes not (stale data),
            # and sometimes repeats the stage it came from.
            to = stage if n == len(times) - 1 and draw(st.booleans()) else None
            to = to or draw(st.sampled_from(DEFAULT_STAGES))
            basis = draw(st.sampled_from([EXACT, EXACT, IMPORTED, SIGNUP]))
            person.moves.append(Move(len(out) * 10 + n + 1, previous, to, at, basis))
            previous = to
        out.append(person)
    return out


def _values(draw: st.DrawFn, pool: list, size: int = 3) -> list:
    return draw(st.lists(st.sampled_from(pool), min_size=1, max_size=size))


@st.composite
def filters(draw: st.DrawFn) -> Filter:
    field = draw(
        st.sampled_from(
            [
                *("stage", "plan", "region", "tag", "owner", "nps", "csat", "mrr"),
                *("inactive", "in-stage", "signup", "attr"),
            ]
        )
    )
    negated = draw(st.booleans())
    comparison = st.sampled_from([">", "<", ">=", "<="])
    key = None
    if field == "stage":
        op, values = ":", _values(draw, list(DEFAULT_STAGES))
    elif field in ("plan", "region"):
        op, values = ":", _values(draw, TEXTS)
    elif field == "tag":
        op, values = ":", _values(draw, TAGS)
    elif field == "owner":
        op, values = ":", _values(draw, [ME, None, *OWNERS])
    elif field in ("nps", "csat", "mrr"):
        pool = {"nps": list(range(11)), "csat": list(range(1, 6)), "mrr": MRRS}[field]
        op = draw(st.sampled_from([":", ">", "<", ">=", "<="]))
        values = _values(draw, pool) if op == ":" else [draw(st.sampled_from(pool))]
    elif field in ("inactive", "in-stage"):
        op, values = draw(comparison), [timedelta(days=draw(st.sampled_from(DURATIONS)))]
    elif field == "signup":
        op = draw(st.sampled_from([":", ">", "<", ">=", "<="]))
        dates = [TODAY - d * DAY for d in DAYS] + [date(2024, 1, 1)]
        if op == ":":
            values = _values(draw, dates)
        else:
            ago = st.builds(
                Ago, st.sampled_from([0, 1, 3, 4, 30]), st.sampled_from(["d", "w", "mo", "y"])
            )
            values = [draw(st.one_of(st.sampled_from(dates), ago))]
    else:
        key = draw(st.sampled_from([*KEYS, "missing"]))
        op = draw(st.sampled_from([":", ">", "<", ">=", "<="]))
        values = _values(draw, ATTR_VALUES) if op == ":" else [draw(st.sampled_from(ATTR_NUMBERS))]
    return Filter(field, op, tuple(values), negated, key=key)


def _store(conn, world: list[Person]) -> None:
    customers, events, answers, moves = [], [], [], []
    for cid, p in enumerate(world, start=1):
        customers.append(
            {
                "id": cid,
                "external_id": p.external_id,
                "name": p.external_id,
                "stage": p.stage,
                "plan": p.plan,
                "region": p.region,
                "owner_slack_id": p.owner,
                "mrr": p.mrr,
                "signup_date": p.signup,
                "tags": p.tags,
                "attributes": p.attributes,
                "locale": "en",
                "created_at": p.created_at,
                "updated_at": p.created_at,
                "forgotten_at": NOW - DAY if p.forgotten else None,
            }
        )
        events += [
            {"customer_id": cid, "kind": "login", "occurred_at": at, "seq": 0} for at in p.events
        ]
        answers += [
            {"customer_id": cid, "kind": k, "score": s, "responded_at": at, "source": "import"}
            for k, s, at in p.answers
        ]
        moves += [
            {
                "id": m.id,
                "customer_id": cid,
                "from_stage": m.from_stage,
                "to_stage": m.to_stage,
                "at": m.at,
                "by": "import",
                "basis": m.basis,
            }
            for m in p.moves
        ]
    for model, rows in ((Customer, customers), (Event, events), (Feedback, answers)):
        if rows:
            conn.execute(insert(model.__table__), rows)
    if moves:
        conn.execute(insert(StageChange.__table__), moves)


@WITH_DB
@given(
    world_people=people(),
    segments=st.lists(st.lists(filters(), min_size=1, max_size=3), min_size=1, max_size=6),
    zone=st.sampled_from(ZONES),
    actor=st.sampled_from(["U0ME", "U0THEM"]),
    kept=st.sampled_from([(), ("events",), ("feedback",), latest.TABLES]),
)
def test_sql_selects_what_the_reference_selects(world, world_people, segments, zone, actor, kept):
    """`kept`: the tables whose latest values are kept on the customers' rows and hold
    (`clmbot.store.latest`); the others are asked of the table."""
    with world.begin() as trans:
        _store(world, world_people)
        for table in kept:
            latest.refresh_table(world, table)
        session = Session(bind=world)
        reference = Evaluator(NOW, zone, actor)
        for chosen in segments:
            text = " ".join(str(f) for f in chosen)
            segment = parse_segment(text, stages=DEFAULT_STAGES)
            assert [_plain(f) for f in segment.filters] == [_plain(f) for f in chosen]
            note(f"segment: {text}")
            where = compile_segment(
                segment, now=NOW, dialect=world.dialect.name, zone=zone, actor_id=actor
            )
            got = set(session.scalars(select(Customer.external_id).where(where)))
            assert got == reference.select(segment, world_people), text
        trans.rollback()


def test_the_reference_and_the_sql_agree_on_a_known_case(world):
    """A fixed example, so that a broken generator cannot make the property vacuous."""
    person = Person("c0", "retention", NOW - 400 * DAY, plan="Pro", events=[NOW - 40 * DAY])
    segment = parse_segment("plan:pro inactive>30d", stages=DEFAULT_STAGES)
    with world.begin() as trans:
        _store(world, [person])
        where = compile_segment(segment, now=NOW, dialect=world.dialect.name)
        got = set(Session(bind=world).scalars(select(Customer.external_id).where(where)))
        assert got == Evaluator(NOW, UTC, None).select(segment, [person]) == {"c0"}
        trans.rollback()
