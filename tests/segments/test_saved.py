"""Saved segments: names, replacing, deleting, listing, and what a saved expression may hold."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlmodel import Session

from clmbot.config import LifecycleConfig, Settings
from clmbot.segments.language import SegmentError, parse_segment
from clmbot.segments.saved import (
    SavedSegmentInfo,
    check_name,
    delete_segment,
    list_segments,
    save_segment,
    saved_map,
)
from clmbot.store.models import SavedSegment
from tests.conftest import NOW

LATER = NOW + timedelta(hours=1)


@pytest.fixture
def session(engine):
    with Session(engine) as s:
        yield s
        s.rollback()


def _save(session, name, expression, *, by="U0ADMIN", now=NOW, settings=None):
    return save_segment(session, name, expression, by=by, now=now, settings=settings or Settings())


def test_save_then_replace_keeps_the_creator_and_the_first_date(session):
    info, replaced = _save(session, "VIP", "  plan:pro mrr>500 ")
    assert not replaced
    assert info == SavedSegmentInfo("vip", "plan:pro mrr>500", "U0ADMIN", NOW, NOW)
    info, replaced = _save(session, "vip", "plan:team", by="U0OTHER", now=LATER)
    assert replaced
    assert info == SavedSegmentInfo("vip", "plan:team", "U0ADMIN", NOW, LATER)
    assert session.scalars(select(SavedSegment.name)).all() == ["vip"]


def test_list_map_and_delete(session):
    _save(session, "zeta", "plan:pro")
    _save(session, "alpha", "stage:retention")
    assert [s.name for s in list_segments(session)] == ["alpha", "zeta"]
    assert saved_map(session) == {"alpha": "stage:retention", "zeta": "plan:pro"}
    assert delete_segment(session, "ZETA")
    assert not delete_segment(session, "zeta")
    assert saved_map(session) == {"alpha": "stage:retention"}


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "cannot name a segment"),
        ("9lives", "cannot name a segment"),
        ("two words", "cannot name a segment"),
        ("emoji-😀", "cannot name a segment"),
        ("a" * 41, "the most is 40"),
        ("plan", "a word clmbot reads"),
        ("In-Stage", "a word clmbot reads"),
        ("export", "a word clmbot reads"),
        ("since", "a word clmbot reads"),
        ("detractors", "a word clmbot reads"),
    ],
)
def test_names_that_cannot_be_used(name, message):
    with pytest.raises(SegmentError, match=message):
        check_name(name)


def test_saving_under_a_bad_name_saves_nothing(session):
    with pytest.raises(SegmentError, match="a word clmbot reads"):
        _save(session, "export", "plan:pro")
    assert saved_map(session) == {}


def test_good_names():
    assert check_name("At-Risk_Pro2") == "at-risk_pro2"
    assert check_name("a" * 40) == "a" * 40


def test_the_expression_is_checked_against_the_lifecycle(session):
    with pytest.raises(SegmentError, match="unknown stage 'onboarding'") as info:
        _save(session, "new", "plan:pro stage:onboarding")
    assert info.value.position == 16
    settings = Settings(lifecycle=LifecycleConfig(stages=("onboarding", "live", "gone")))
    _save(session, "new", "plan:pro stage:onboarding", settings=settings)


def test_a_saved_expression_cannot_use_another_name(session):
    _save(session, "vip", "plan:pro")
    with pytest.raises(SegmentError, match="'VIP' at position 13 is a saved segment") as info:
        _save(session, "vip-emea", "region:emea VIP")
    assert info.value.position == 13
    with pytest.raises(SegmentError, match="is not a filter"):
        _save(session, "other", "nonesuch")


def test_a_saved_expression_may_hold_me_and_risk_for_later(session):
    _save(session, "mine", "owner:@me")
    _save(session, "risky", "risk>70")
    assert set(saved_map(session)) == {"mine", "risky"}


def test_a_saved_segment_broken_by_a_new_lifecycle_says_so(session):
    _save(session, "old", "stage:advocacy")
    saved = saved_map(session)
    with pytest.raises(SegmentError, match=r"the saved segment 'old' at position 10 no longer"):
        parse_segment("plan:pro old", stages=("live", "gone"), saved=saved)
