"""The latest comments: order, pages, detractors first, and never a forgotten customer's."""

from datetime import UTC, datetime, timedelta

import pytest

from clmbot.feedback import comments as comments_module
from clmbot.feedback.comments import comments
from clmbot.store.db import session_scope
from clmbot.store.models import Customer
from tests.feedback.factories import answer, customer

NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)
SINCE = NOW - timedelta(days=365)


def day(n: int) -> datetime:
    """n days before now."""
    return NOW - timedelta(days=n)


@pytest.fixture
def filled(engine):
    """Eight comments (and answers that are not listed) from four customers."""
    with session_scope(engine) as s:
        ann = customer(s, "ANN", name="Ann", plan="pro", owner="U1")
        bob = customer(s, "BOB", name="Bob", plan="free")
        cat = customer(s, "CAT", name="Cat", plan="pro")
        gone = customer(s, "GONE", name="Gone", plan="pro", forgotten=True)
        answer(s, ann, "nps", 10, day(1), "love it")
        answer(s, bob, "nps", 3, day(2), "too slow")
        answer(s, cat, "csat", 2, day(3), "support never answered")
        answer(s, ann, "csat", 5, day(4), "  quick fix  ")
        answer(s, bob, "csat", 3, day(5), "ok")
        answer(s, cat, "nps", 6, day(6), "pricey")
        answer(s, ann, "nps", 8, day(7), "fine")
        answer(s, bob, "nps", 0, day(8), "broken")
        # not listed:
        answer(
            s,
            gone,
            "nps",
            0,
            day(
                1,
            ),
            "my secret complaint",
        )
        answer(s, ann, "nps", 9, day(9), None)  # no comment
        answer(s, bob, "csat", 4, day(9), "   ")  # a blank comment
        answer(s, cat, "nps", 1, day(400), "too old")  # before the period
        answer(s, cat, "csat", 1, NOW + timedelta(hours=1), "from the future")
    return engine


def test_newest_first_with_who_said_it(filled):
    with session_scope(filled) as s:
        page = comments(s, since=SINCE, now=NOW)
    assert [c.comment for c in page.items] == [
        "love it",
        "too slow",
        "support never answered",
        "quick fix",
        "ok",
        "pricey",
        "fine",
        "broken",
    ]
    first = page.items[0]
    assert (first.kind, first.score, first.external_id, first.name, first.owner_slack_id) == (
        "nps",
        10,
        "ANN",
        "Ann",
        "U1",
    )
    assert first.responded_at == day(1)
    assert [c.is_detractor for c in page.items] == [
        False,
        True,
        True,
        False,
        False,
        True,
        False,
        True,
    ]
    assert (page.offset, page.total, page.has_more, page.total_capped) == (0, 8, False, False)


def test_pages(filled):
    with session_scope(filled) as s:
        first = comments(s, since=SINCE, now=NOW, limit=3)
        second = comments(s, since=SINCE, now=NOW, offset=3, limit=3)
        last = comments(s, since=SINCE, now=NOW, offset=6, limit=3)
        beyond = comments(s, since=SINCE, now=NOW, offset=8, limit=3)
    assert [c.comment for c in first.items] == ["love it", "too slow", "support never answered"]
    assert (first.total, first.has_more) == (8, True)
    assert [c.comment for c in second.items] == ["quick fix", "ok", "pricey"]
    assert (second.offset, second.has_more) == (3, True)
    assert [c.comment for c in last.items] == ["fine", "broken"]
    assert last.has_more is False
    assert (beyond.items, beyond.has_more, beyond.total) == ((), False, 8)


def test_detractors_first(filled):
    with session_scope(filled) as s:
        page = comments(s, since=SINCE, now=NOW, detractors_first=True)
        second = comments(s, since=SINCE, now=NOW, detractors_first=True, offset=3, limit=3)
    assert [c.comment for c in page.items] == [
        "too slow",
        "support never answered",
        "pricey",
        "broken",
        "love it",
        "quick fix",
        "ok",
        "fine",
    ]
    assert [c.comment for c in second.items] == ["broken", "love it", "quick fix"]
    assert second.has_more is True


def test_one_kind_and_a_segment(filled):
    with session_scope(filled) as s:
        csat = comments(s, since=SINCE, now=NOW, kind="csat")
        pro = comments(s, since=SINCE, now=NOW, where=Customer.plan == "pro")
        pro_nps = comments(
            s, since=SINCE, now=NOW, where=Customer.plan == "pro", kind="nps", detractors_first=True
        )
    assert [c.comment for c in csat.items] == ["support never answered", "quick fix", "ok"]
    assert csat.total == 3
    # the forgotten customer is on the pro plan too, and still not shown
    assert [c.external_id for c in pro.items] == ["ANN", "CAT", "ANN", "CAT", "ANN"]
    assert [c.comment for c in pro_nps.items] == ["pricey", "love it", "fine"]


def test_forgotten_customers_never_show(filled):
    with session_scope(filled) as s:
        everything = comments(s, since=SINCE, now=NOW, limit=100)
        theirs = comments(s, since=SINCE, now=NOW, where=Customer.external_id == "GONE")
    assert "GONE" not in {c.external_id for c in everything.items}
    assert (theirs.items, theirs.total) == ((), 0)


def test_the_count_stops_at_the_cap(filled, monkeypatch):
    monkeypatch.setattr(comments_module, "COUNT_CAP", 5)
    with session_scope(filled) as s:
        page = comments(s, since=SINCE, now=NOW, limit=2)
        deep = comments(s, since=SINCE, now=NOW, offset=6, limit=2)
        few = comments(s, since=SINCE, now=NOW, kind="csat")
    assert (page.total, page.total_capped, page.has_more) == (5, True, True)
    assert (deep.total, deep.total_capped, deep.has_more) == (8, True, False)
    assert (few.total, few.total_capped) == (3, False)


def test_bad_pages_are_refused(engine):
    with session_scope(engine) as s:
        for kwargs in ({"offset": -1}, {"limit": 0}, {"limit": 101}):
            with pytest.raises(ValueError, match="offset"):
                comments(s, since=SINCE, now=NOW, **kwargs)
        with pytest.raises(ValueError, match="nps or csat"):
            comments(s, since=SINCE, now=NOW, kind="ces")
