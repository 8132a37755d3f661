"""The reports on both databases: current scores from each customer's latest answer, trends
from every answer, months in the team's zone, segment filters, groups."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from clmbot.feedback import queries, trend
from clmbot.feedback.reports import SMALL_GROUP, report, report_by
from clmbot.store.db import session_scope
from clmbot.store.models import Customer, Feedback
from tests.feedback.factories import answer, customer

NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)
SINCE = datetime(2026, 1, 1, tzinfo=UTC)
JAKARTA = ZoneInfo("Asia/Jakarta")


def at(month: int, day: int = 15, hour: int = 12) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


def test_current_uses_each_latest_answer_and_the_trend_every_answer(engine):
    with session_scope(engine) as s:
        a, b, c, d, e = (customer(s) for _ in range(5))
        answer(s, a, "nps", 0, datetime(2025, 12, 20, tzinfo=UTC))  # before the period
        answer(s, a, "nps", 3, at(2))
        answer(s, a, "nps", 10, at(6))  # a's latest: a promoter
        answer(s, a, "nps", 1, NOW + timedelta(minutes=1))  # after now: not yet said
        answer(s, b, "nps", 9, at(3))
        answer(s, b, "nps", 2, at(10))  # b's latest: a detractor
        answer(s, c, "nps", 8, at(5))  # a passive
        answer(s, d, "nps", 10, datetime(2025, 6, 1, tzinfo=UTC))  # only before the period
        answer(s, e, "csat", 1, at(4))  # another kind
        answer(s, e, "nps", 7, NOW)  # exactly now counts
        r = report(s, "nps", since=SINCE, now=NOW, zone=UTC)

    assert (r.current.promoters, r.current.passives, r.current.detractors) == (1, 2, 1)
    assert r.current.score == 0.0 and r.respondents == 4
    assert r.responses == 6
    assert [m.month for m in r.trend] == [date(2026, m, 1) for m in range(1, 12)]
    by_month = {m.month.month: (m.n, m.score) for m in r.trend}
    assert by_month == {
        1: (0, None),
        2: (1, -100.0),
        3: (1, 100.0),
        4: (0, None),
        5: (1, 0.0),
        6: (1, 100.0),
        7: (0, None),
        8: (0, None),
        9: (0, None),
        10: (1, -100.0),
        11: (1, 0.0),
    }
    assert r.trend[0].start == SINCE and r.trend[-1].end == NOW
    assert r.trend[3].result.low is None  # a month without answers has no interval


def test_csat_current_and_trend(engine):
    with session_scope(engine) as s:
        a, b = customer(s), customer(s)
        answer(s, a, "csat", 2, at(3))
        answer(s, a, "csat", 5, at(4))
        answer(s, b, "csat", 3, at(4, 20))
        answer(s, b, "nps", 10, at(4))
        r = report(s, "csat", since=SINCE, now=NOW, zone=UTC)
    assert (r.current.satisfied, r.current.unsatisfied, r.current.score) == (1, 1, 50.0)
    assert r.responses == 3
    april = r.trend[3]
    assert (april.month, april.n, april.score) == (date(2026, 4, 1), 2, 50.0)


def test_months_are_the_teams_months(engine):
    """31 October 18:00 UTC is 1 November 01:00 in Jakarta (UTC+7)."""
    since = datetime(2026, 10, 1, tzinfo=JAKARTA).astimezone(UTC)  # 30 Sep 17:00 UTC
    with session_scope(engine) as s:
        a, b, c = customer(s), customer(s), customer(s)
        answer(s, a, "nps", 10, datetime(2026, 10, 31, 18, tzinfo=UTC))
        answer(s, b, "nps", 0, datetime(2026, 9, 30, 17, 30, tzinfo=UTC))  # 1 Oct, 00:30
        answer(s, c, "nps", 5, datetime(2026, 9, 30, 16, 59, tzinfo=UTC))  # before since
        jakarta = report(s, "nps", since=since, now=NOW, zone=JAKARTA)
        utc = report(s, "nps", since=since, now=NOW, zone=UTC)

    assert [(m.month, m.n, m.score) for m in jakarta.trend] == [
        (date(2026, 10, 1), 1, -100.0),
        (date(2026, 11, 1), 1, 100.0),
    ]
    assert jakarta.trend[1].start == datetime(2026, 10, 31, 17, tzinfo=UTC)
    # The same answers counted in UTC months.
    assert [(m.month, m.n) for m in utc.trend] == [
        (date(2026, 9, 1), 1),
        (date(2026, 10, 1), 1),
        (date(2026, 11, 1), 0),
    ]
    assert jakarta.respondents == utc.respondents == 2


def test_where_restricts_to_some_customers(engine):
    with session_scope(engine) as s:
        pro1, pro2 = customer(s, plan="pro"), customer(s, plan="pro")
        free = customer(s, plan="free")
        answer(s, pro1, "nps", 10, at(3))
        answer(s, pro2, "nps", 0, at(3))
        answer(s, pro2, "nps", 9, at(5))
        answer(s, free, "nps", 0, at(3))
        r = report(s, "nps", since=SINCE, now=NOW, zone=UTC, where=Customer.plan == "pro")
        # A filter like the segments' nps<7: a subquery on feedback, correlated to the
        # customer, inside queries that read feedback themselves.
        latest_nps = (
            select(Feedback.score)
            .where(Feedback.customer_id == Customer.id, Feedback.kind == "nps")
            .where(Feedback.responded_at <= NOW)
            .order_by(Feedback.responded_at.desc())
            .limit(1)
            .correlate(Customer)
            .scalar_subquery()
        )
        unhappy = report(s, "nps", since=SINCE, now=NOW, zone=UTC, where=latest_nps < 7)
        grouped = report_by(s, "nps", "plan", since=SINCE, now=NOW, where=latest_nps >= 7)

    assert (r.current.promoters, r.current.detractors, r.current.n) == (2, 0, 2)
    assert r.responses == 3
    assert [m.n for m in r.trend][2:5] == [2, 0, 1]
    assert (unhappy.current.n, unhappy.current.detractors, unhappy.responses) == (1, 1, 1)
    assert [(line.value, line.n) for line in grouped.lines] == [("pro", 2)]


def test_forgotten_customers_still_count(engine):
    with session_scope(engine) as s:
        gone = customer(s, forgotten=True)
        answer(s, gone, "nps", 10, at(3))
        r = report(s, "nps", since=SINCE, now=NOW, zone=UTC)
    assert (r.current.n, r.current.promoters, r.responses) == (1, 1, 1)


def test_nothing_answered(engine):
    with session_scope(engine) as s:
        r = report(s, "csat", since=SINCE, now=NOW, zone=UTC)
        g = report_by(s, "csat", "region", since=SINCE, now=NOW)
    assert (r.current.n, r.current.score, r.responses, r.respondents) == (0, None, 0, 0)
    assert len(r.trend) == 11 and all(m.n == 0 and m.score is None for m in r.trend)
    assert g.lines == () and g.overall.score is None


def _answers(s, plan, scores, month=3):
    for score in scores:
        answer(s, customer(s, plan=plan, owner=f"U{plan or 'none'}"), "nps", score, at(month))


def test_groups_small_flags_and_order(engine):
    with session_scope(engine) as s:
        # team: 18 promoters, 12 passives, 0 detractors of 30: +60, not small
        _answers(s, "team", [10] * 18 + [8] * 12)
        # pro: 21 promoters, 7 passives, 7 detractors of 35: +40
        _answers(s, "pro", [9] * 21 + [7] * 7 + [3] * 7)
        _answers(s, "free", [10, 10])  # +100, but only 2 answers
        _answers(s, None, [0, 10, 8])  # no plan: -0 of 3
        _answers(s, "starter", [1])  # -100, 1 answer
        # an earlier answer of a team customer does not count twice
        first_team = s.scalars(select(Customer).where(Customer.plan == "team")).first()
        answer(s, first_team, "nps", 0, at(2))
        g = report_by(s, "nps", "plan", since=SINCE, now=NOW)
        owners = report_by(s, "nps", "owner", since=SINCE, now=NOW)
        stages = report_by(s, "nps", "stage", since=SINCE, now=NOW)

    assert [(x.value, x.n, x.score, x.small) for x in g.lines] == [
        ("team", 30, 60.0, False),
        ("pro", 35, 40.0, False),
        ("free", 2, 100.0, True),
        (None, 3, 0.0, True),
        ("starter", 1, -100.0, True),
    ]
    assert SMALL_GROUP == 30
    assert g.overall.n == 71
    assert g.overall.promoters == 18 + 21 + 2 + 1
    assert g.lines[0].result.low is not None
    assert [x.value for x in owners.lines] == ["Uteam", "Upro", "Ufree", "Unone", "Ustarter"]
    assert [(x.value, x.n) for x in stages.lines] == [("retention", 71)]


def test_bad_arguments_are_refused(engine):
    with session_scope(engine) as s:
        with pytest.raises(ValueError, match="nps or csat"):
            report(s, "ces", since=SINCE, now=NOW, zone=UTC)
        with pytest.raises(ValueError, match="group by"):
            report_by(s, "nps", "colour", since=SINCE, now=NOW)
        with pytest.raises(ValueError, match="after now"):
            report(s, "nps", since=NOW, now=SINCE, zone=UTC)
        with pytest.raises(ValueError, match="aware"):
            report(s, "nps", since=SINCE.replace(tzinfo=None), now=NOW, zone=UTC)


def test_a_long_trend_is_asked_in_batches(engine, monkeypatch):
    monkeypatch.setattr(trend, "MONTHS_PER_QUERY", 4)
    with session_scope(engine) as s:
        a = customer(s)
        for month in range(1, 12):
            answer(s, a, "nps", month - 1, at(month))
        r = report(s, "nps", since=SINCE, now=NOW, zone=UTC)
    assert [m.n for m in r.trend] == [1] * 11
    assert [m.result.detractors for m in r.trend] == [1] * 7 + [0] * 4
    assert r.current.promoters == 1


def test_a_period_within_one_month(engine):
    since = datetime(2026, 11, 10, tzinfo=UTC)
    with session_scope(engine) as s:
        a = customer(s)
        answer(s, a, "nps", 9, datetime(2026, 11, 9, tzinfo=UTC))  # before since
        answer(s, a, "nps", 3, datetime(2026, 11, 20, tzinfo=UTC))
        r = report(s, "nps", since=since, now=NOW, zone=JAKARTA)
    assert [(m.month, m.n, m.score) for m in r.trend] == [(date(2026, 11, 1), 1, -100.0)]
    assert (r.current.detractors, r.responses) == (1, 1)


def test_an_answer_at_midnight_on_the_first_is_the_new_months(engine):
    november = datetime(2026, 11, 1, tzinfo=JAKARTA).astimezone(UTC)  # 31 Oct 17:00 UTC
    since = datetime(2026, 10, 1, tzinfo=JAKARTA).astimezone(UTC)
    with session_scope(engine) as s:
        a, b = customer(s), customer(s)
        answer(s, a, "csat", 5, november)
        answer(s, b, "csat", 1, november - timedelta(microseconds=1))
        r = report(s, "csat", since=since, now=NOW, zone=JAKARTA)
    assert [(m.month.month, m.n, m.score) for m in r.trend] == [(10, 1, 0.0), (11, 1, 100.0)]


@pytest.mark.parametrize("share", [0.0, 1.01], ids=["customer-order", "sorted-period"])
def test_both_ways_to_the_latest_answers_agree(engine, monkeypatch, share):
    """SQLite reads the latest answers one of two ways, by the share of answers in the
    period; both must give the same report (on PostgreSQL the share is not used)."""
    monkeypatch.setattr(queries, "_SQLITE_ORDERED_SHARE", share)
    with session_scope(engine) as s:
        for i in range(12):
            who = customer(s, plan=("pro", "free", None)[i % 3])
            for month, score in ((1, 10 - i % 4), (4, i % 11), (9, (3 * i) % 11)):
                if (i + month) % 5:
                    answer(s, who, "nps", score, at(month, day=1 + i))
            answer(s, who, "nps", 10, datetime(2025, 3, 1, tzinfo=UTC))  # before the period
        r = report(s, "nps", since=SINCE, now=NOW, zone=UTC)
        pro = report(s, "nps", since=SINCE, now=NOW, zone=UTC, where=Customer.plan == "pro")
        g = report_by(s, "nps", "plan", since=SINCE, now=NOW)
    # Worked out from the loop: each customer's last answer among months 1, 4 and 9.
    latest = {}
    for i in range(12):
        for month, score in ((1, 10 - i % 4), (4, i % 11), (9, (3 * i) % 11)):
            if (i + month) % 5:
                latest[i] = score
    promoters = sum(v >= 9 for v in latest.values())
    detractors = sum(v <= 6 for v in latest.values())
    assert (r.current.n, r.current.promoters, r.current.detractors) == (
        len(latest),
        promoters,
        detractors,
    )
    assert pro.current.n == len([i for i in latest if i % 3 == 0])
    assert sorted((x.value or "", x.n) for x in g.lines) == sorted(
        (("pro", "free", "")[k], len([i for i in latest if i % 3 == k])) for k in range(3)
    )
