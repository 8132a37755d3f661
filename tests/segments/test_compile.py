"""Each field of the segment language against a real database, SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from clmbot.config import DEFAULT_STAGES
from clmbot.segments.compile import compile_segment
from clmbot.segments.language import SegmentError, parse_segment
from clmbot.store.models import IMPORTED, SIGNUP, Customer, RiskRun, RiskScore
from tests.conftest import NOW
from tests.segments.factories import answer, customer, event, matching, move

DAY = timedelta(days=1)
TODAY = NOW.date()


@pytest.fixture
def session(engine):
    with Session(engine) as s:
        yield s
        s.rollback()


def test_stage_plan_region_ignore_the_case_of_ascii_letters(session):
    customer(session, "a", stage="retention", plan="pro", region="EMEA")
    customer(session, "b", stage="advocacy", plan="Pro", region="apac")
    customer(session, "c", stage="purchase", plan="team", region=None)
    customer(session, "d", stage="retention", plan=None, region="emea")
    assert matching(session, "stage:retention,advocacy") == {"a", "b", "d"}
    assert matching(session, "Stage:RETENTION") == {"a", "d"}
    assert matching(session, "plan:PRO") == {"a", "b"}
    assert matching(session, "plan:pro region:emea") == {"a"}
    assert matching(session, "region:Emea,APAC") == {"a", "b", "d"}


def test_non_ascii_letters_match_only_in_their_own_case_on_both_databases(session):
    customer(session, "lower", plan="élite")
    customer(session, "upper", plan="Élite")
    customer(session, "mixed", plan="ÉLITE")
    assert matching(session, "plan:élite") == {"lower"}
    assert matching(session, "plan:Élite") == {"upper", "mixed"}


def test_negation_keeps_customers_without_a_value(session):
    customer(session, "pro", plan="pro", region="emea")
    customer(session, "free", plan="free")
    customer(session, "none", plan=None)
    assert matching(session, "-plan:pro") == {"free", "none"}
    assert matching(session, "-region:emea") == {"free", "none"}
    assert matching(session, "-plan:pro,free") == {"none"}


def test_percent_underscore_backslash_and_quotes_are_literal(session):
    customer(session, "under", plan="a_c")
    customer(session, "abc", plan="abc")
    customer(session, "pct", plan="100%")
    customer(session, "pct2", plan="1000")
    customer(session, "slash", plan="a\\c")
    customer(session, "quote", plan='say "hi"')
    customer(session, "spaced", plan="pro plus")
    assert matching(session, "plan:a_c") == {"under"}
    assert matching(session, "plan:100%") == {"pct"}
    assert matching(session, "plan:a\\c") == {"slash"}
    assert matching(session, 'plan:"say ""hi"""') == {"quote"}
    assert matching(session, 'plan:"pro plus"') == {"spaced"}
    assert matching(session, "plan:%") == set()
    assert matching(session, "plan:a%") == set()


def test_tags_any_of_in_any_ascii_case(session):
    customer(session, "a", tags=["vip", "Enterprise"])
    customer(session, "b", tags=["trial"])
    customer(session, "c", tags=[])
    customer(session, "d", tags=["v_p", "50%"])
    assert matching(session, "tag:enterprise") == {"a"}
    assert matching(session, "tag:VIP,trial") == {"a", "b"}
    assert matching(session, "-tag:vip") == {"b", "c", "d"}
    assert matching(session, "tag:v_p") == {"d"}
    assert matching(session, "tag:vip tag:trial") == set()
    assert matching(session, "tag:50%") == {"d"}


def test_owner_me_mentions_ids_and_none(session):
    customer(session, "mine", owner="U0ME")
    customer(session, "theirs", owner="U0THEM")
    customer(session, "nobody", owner=None)
    assert matching(session, "owner:@me", actor_id="U0ME") == {"mine"}
    assert matching(session, "owner:<@U0THEM|dana>") == {"theirs"}
    assert matching(session, "owner:<@U0THEM>,@me", actor_id="U0ME") == {"mine", "theirs"}
    assert matching(session, "owner:U0THEM") == {"theirs"}
    assert matching(session, "owner:none") == {"nobody"}
    assert matching(session, "-owner:@me", actor_id="U0ME") == {"theirs", "nobody"}
    assert matching(session, "owner:none,@me", actor_id="U0ME") == {"mine", "nobody"}


@pytest.mark.parametrize("actor", [None, "cli:dana"])
def test_owner_me_without_a_slack_user_says_so(session, actor):
    with pytest.raises(SegmentError, match=r"owner:@me at position 8 means the person asking"):
        matching(session, "plan:x owner:@me", actor_id=actor)


def test_nps_and_csat_use_the_latest_answer_as_of_now(session):
    fell = customer(session, "fell")
    rose = customer(session, "rose")
    future = customer(session, "future")
    customer(session, "silent")
    answer(session, fell, "nps", 9, NOW - 40 * DAY)
    answer(session, fell, "nps", 4, NOW - 2 * DAY)
    answer(session, rose, "nps", 3, NOW - 40 * DAY)
    answer(session, rose, "nps", 10, NOW - 2 * DAY)
    answer(session, rose, "csat", 2, NOW - 2 * DAY)
    answer(session, future, "nps", 2, NOW - 2 * DAY)
    answer(session, future, "nps", 10, NOW + DAY)  # after now: not seen
    assert matching(session, "nps<7") == {"fell", "future"}
    assert matching(session, "nps>=0") == {"fell", "rose", "future"}
    assert matching(session, "nps:9,10") == {"rose"}
    assert matching(session, "-nps<7") == {"rose", "silent"}
    assert matching(session, "csat<=2") == {"rose"}
    assert matching(session, "-csat<=2") == {"fell", "future", "silent"}
    assert matching(session, "nps<7", now=NOW - 10 * DAY) == {"rose"}


def test_mrr_compares_numbers_and_null_is_no_value(session):
    customer(session, "big", mrr=1200.5)
    customer(session, "edge", mrr=500)
    customer(session, "small", mrr=20)
    customer(session, "unknown", mrr=None)
    assert matching(session, "mrr>500") == {"big"}
    assert matching(session, "mrr>=500") == {"big", "edge"}
    assert matching(session, "mrr<500") == {"small"}
    assert matching(session, "mrr:500,20") == {"edge", "small"}
    assert matching(session, "-mrr>=500") == {"small", "unknown"}
    assert matching(session, "mrr>1200.25") == {"big"}


def test_signup_with_dates_and_with_ages(session):
    customer(session, "new", signup=TODAY - 10 * DAY)
    customer(session, "edge", signup=TODAY - 30 * DAY)
    customer(session, "old", signup=date(2024, 1, 1))
    customer(session, "undated", signup=None)
    assert matching(session, "signup<30d") == {"new"}
    assert matching(session, "signup<=30d") == {"new", "edge"}
    assert matching(session, "signup>30d") == {"old"}
    assert matching(session, "signup>=30d") == {"edge", "old"}
    assert matching(session, "signup>1y") == {"old"}
    assert matching(session, "signup>2024-01-01") == {"new", "edge"}
    assert matching(session, "signup>=2024-01-01") == {"new", "edge", "old"}
    assert matching(session, "signup:2024-01-01") == {"old"}
    assert matching(session, "-signup<30d") == {"edge", "old", "undated"}


def test_signup_age_counts_days_in_the_team_zone(session):
    # 12:00 UTC on the 24th is already the 25th in Auckland (UTC+13).
    customer(session, "day", signup=TODAY - 29 * DAY)
    assert matching(session, "signup<30d") == {"day"}
    assert matching(session, "signup<30d", zone=ZoneInfo("Pacific/Auckland")) == set()


def test_signup_months_and_years_are_calendar_ones(session):
    customer(session, "a", signup=date(2026, 8, 24))
    customer(session, "b", signup=date(2026, 8, 25))
    assert matching(session, "signup>=3mo") == {"a"}
    assert matching(session, "signup<3mo") == {"b"}


def test_inactive_counts_from_the_latest_event_up_to_now(session):
    active = customer(session, "active")
    lapsed = customer(session, "lapsed")
    edge = customer(session, "edge")
    later = customer(session, "later")
    event(session, active, NOW - 3 * DAY)
    event(session, active, NOW - 90 * DAY)
    event(session, lapsed, NOW - 45 * DAY)
    event(session, edge, NOW - 30 * DAY)
    event(session, later, NOW - 60 * DAY)
    event(session, later, NOW + 2 * DAY)  # after now: not seen
    assert matching(session, "inactive>30d") == {"lapsed", "later"}
    assert matching(session, "inactive>=30d") == {"lapsed", "later", "edge"}
    assert matching(session, "inactive:30d") == {"lapsed", "later", "edge"}
    assert matching(session, "inactive<7d") == {"active"}
    assert matching(session, "-inactive>30d") == {"active", "edge"}
    assert matching(session, "inactive>4w") == {"lapsed", "later", "edge"}


def test_inactive_without_events_counts_from_signup_else_from_creation(session):
    customer(session, "new-signup", signup=TODAY - 5 * DAY)
    customer(session, "old-signup", signup=TODAY - 100 * DAY, created_at=NOW - DAY)
    customer(session, "new-record", signup=None, created_at=NOW - 2 * DAY)
    customer(session, "old-record", signup=None, created_at=NOW - 200 * DAY)
    assert matching(session, "inactive>30d") == {"old-signup", "old-record"}
    assert matching(session, "inactive<7d") == {"new-signup", "new-record"}


def test_in_stage_from_the_latest_move_into_the_current_stage(session):
    long = customer(session, "long", stage="retention")
    fresh = customer(session, "fresh", stage="retention")
    imported_old = customer(session, "imported-old", stage="retention")
    imported_new = customer(session, "imported-new", stage="retention")
    signup = customer(session, "signup", stage="purchase")
    repeat = customer(session, "repeat", stage="advocacy")
    stale = customer(session, "stale", stage="advocacy")
    customer(session, "no-history", stage="retention")
    move(session, long, "purchase", NOW - 200 * DAY)
    move(session, long, "retention", NOW - 90 * DAY, from_stage="purchase")
    move(session, fresh, "purchase", NOW - 200 * DAY)
    move(session, fresh, "retention", NOW - 5 * DAY, from_stage="purchase")
    move(session, imported_old, "retention", NOW - 60 * DAY, basis=IMPORTED)
    move(session, imported_new, "retention", NOW - 5 * DAY, basis=IMPORTED)
    move(session, signup, "purchase", NOW - 10 * DAY, basis=SIGNUP)
    # A CRM repeating the stage the customer was already in changes nothing.
    move(session, repeat, "advocacy", NOW - 100 * DAY)
    move(session, repeat, "advocacy", NOW - 2 * DAY, from_stage="advocacy")
    # The latest move is into another stage than the one stored: unknown.
    move(session, stale, "advocacy", NOW - 100 * DAY)
    move(session, stale, "retention", NOW - 50 * DAY, from_stage="advocacy")
    assert matching(session, "in-stage>30d") == {"long", "imported-old", "repeat"}
    assert matching(session, "in-stage<30d") == {"fresh", "signup"}
    assert matching(session, "in-stage<=90d") == {"long", "fresh", "signup"}
    assert matching(session, "-in-stage>30d") == {
        "fresh", "imported-new", "signup", "stale", "no-history"
    }  # fmt: skip
    # As of an earlier day, a later move is not seen.
    assert "fresh" not in matching(session, "in-stage<30d", now=NOW - 10 * DAY)


def test_attributes_text_and_numbers_with_awkward_keys(session):
    customer(session, "a", attributes={"account manager": "Dana", 'say "hi"': "yes", "seats": "12"})
    customer(session, "b", attributes={"account manager": "dana", "seats": "3.5", "é.x": "Ü"})
    customer(session, "c", attributes={"seats": "many", "a\\b": "1"})
    customer(session, "d", attributes={"seats": "-4"})
    customer(session, "e", attributes={})
    assert matching(session, 'attr."account manager":DANA') == {"a", "b"}
    assert matching(session, 'attr."say ""hi""":yes') == {"a"}
    assert matching(session, "attr.seats>10") == {"a"}
    assert matching(session, "attr.seats<=3.5") == {"b", "d"}
    assert matching(session, "attr.seats>-10") == {"a", "b", "d"}
    assert matching(session, "attr.seats:many") == {"c"}
    assert matching(session, "-attr.seats>10") == {"b", "c", "d", "e"}
    assert matching(session, "attr.é.x:Ü") == {"b"}
    assert matching(session, "attr.a\\b:1") == {"c"}
    assert matching(session, "-attr.seats:many") == {"a", "b", "d", "e"}


def test_forgotten_customers_never_match(session):
    customer(session, "kept", plan="pro")
    customer(session, "gone", plan="pro", forgotten_at=NOW - DAY)
    assert matching(session, "plan:pro") == {"kept"}
    assert matching(session, "-plan:free") == {"kept"}


def test_saved_names_expand_and_combine(session):
    customer(session, "a", plan="pro", mrr=900)
    customer(session, "b", plan="pro", mrr=100)
    customer(session, "c", plan="team", mrr=900)
    saved = {"big-pro": "plan:pro mrr>500"}
    assert matching(session, "BIG-PRO", saved=saved) == {"a"}
    assert matching(session, "mrr>50 big-pro", saved=saved) == {"a"}


def test_risk_reads_the_latest_pass_stored_by_then(session):
    a, b = customer(session, "a", plan="pro"), customer(session, "b", plan="pro")
    assert matching(session, "risk>70") == set()  # no pass yet: no one is known at risk

    def stored(day: date, at, scores: list) -> None:
        run = RiskRun(day=day, as_of=at, by="test", started_at=at, finished_at=at)
        session.add(run)
        session.flush()
        for c, risk in scores:
            session.add(RiskScore(run_id=run.id, customer_id=c.id, risk=risk, reasons=[]))
        session.flush()

    stored(TODAY - timedelta(days=2), NOW - timedelta(days=2), [(a, 90), (b, 40)])
    stored(TODAY - timedelta(days=1), NOW - timedelta(days=1), [(a, 30), (b, 80)])
    assert matching(session, "plan:pro risk>70") == {"b"}
    assert matching(session, "risk<=30") == {"a"}
    # As of a day before the latest pass, the pass of that day.
    assert matching(session, "risk>70", now=NOW - timedelta(days=2)) == {"a"}


def test_only_bound_parameters_reach_the_sql():
    """Whatever is typed is a parameter: the SQL text holds none of it."""
    typed = 'plan:"x\' OR 1=1 --" tag:evil%_ attr."k\'); DROP TABLE customers; --":v'
    segment = parse_segment(typed, stages=DEFAULT_STAGES)
    for name, dialect in (("sqlite", sqlite.dialect()), ("postgresql", postgresql.dialect())):
        where = compile_segment(segment, now=NOW, dialect=name)
        sql = str(select(Customer.id).where(where).compile(dialect=dialect))
        for fragment in ("OR 1=1", "evil", "DROP", "k'"):
            assert fragment not in sql


def test_now_must_be_aware():
    segment = parse_segment("plan:x", stages=DEFAULT_STAGES)
    with pytest.raises(ValueError, match="aware"):
        compile_segment(segment, now=NOW.replace(tzinfo=None), dialect="sqlite")
    assert compile_segment(segment, now=NOW.astimezone(UTC), dialect="sqlite") is not None


def test_older_sqlite_reads_attributes_with_json_extract(session, monkeypatch):
    """SQLite before 3.38 has no `->>`: the same answers through json_extract."""
    import types

    import clmbot.segments.compile as compile_module

    monkeypatch.setattr(
        compile_module, "sqlite3", types.SimpleNamespace(sqlite_version_info=(3, 37, 2))
    )
    customer(session, "a", attributes={"seats": "12", "account manager": "Dana"})
    customer(session, "b", attributes={"seats": "x"})
    assert matching(session, "attr.seats>10") == {"a"}
    assert matching(session, 'attr."account manager":dana') == {"a"}
    assert matching(session, "-attr.seats>10") == {"b"}
