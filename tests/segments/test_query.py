"""Running a segment: the summary's numbers and sample, and the CSV export."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta

import pytest
from sqlmodel import Session

from clmbot.config import DEFAULT_STAGES, DEFAULT_TERMINAL_STAGES, Settings
from clmbot.segments import resolve
from clmbot.segments.compile import compile_segment
from clmbot.segments.language import parse_segment
from clmbot.segments.query import (
    EXPORT_COLUMNS,
    CustomerRow,
    count,
    iter_rows,
    summarise,
    write_csv,
)
from clmbot.segments.saved import save_segment
from tests.conftest import NOW
from tests.segments.factories import answer, customer

DAY = timedelta(days=1)


@pytest.fixture
def session(engine):
    with Session(engine) as s:
        yield s
        s.rollback()


def _where(session, text: str):
    segment = parse_segment(text, stages=DEFAULT_STAGES)
    return compile_segment(segment, now=NOW, dialect=session.get_bind().dialect.name)


def _summary(session, text: str, **kwargs):
    return summarise(
        session,
        _where(session, text),
        stages=DEFAULT_STAGES,
        terminal=DEFAULT_TERMINAL_STAGES,
        **kwargs,
    )


def test_summary_counts_mrr_by_stage_and_leaves_churned_mrr_out(session):
    customer(session, "a", name="Acme", stage="retention", plan="pro", mrr=900)
    customer(session, "b", name="Beta", stage="advocacy", plan="pro", mrr=100.5)
    customer(session, "c", name="Gone", stage="churned", plan="pro", mrr=5000)
    customer(session, "d", name="Dim", stage="retention", plan="pro", mrr=None)
    customer(session, "e", name="Else", stage="retention", plan="team", mrr=1)
    summary = _summary(session, "plan:pro")
    assert summary.count == 4
    assert summary.mrr == pytest.approx(1000.5)
    assert summary.churned_mrr == pytest.approx(5000)
    assert summary.by_stage == (("retention", 2), ("advocacy", 1), ("churned", 1))
    assert [r.external_id for r in summary.sample] == ["a", "b", "d", "c"]
    assert summary.sample[0] == CustomerRow("a", "Acme", "retention", "pro", 900.0, None)


def test_summary_sample_is_capped_and_ties_go_by_name(session):
    for i, name in enumerate(["Zed", "Amy", "Bob", "Cat"]):
        customer(session, f"x{i}", name=name, mrr=10)
    summary = _summary(session, "mrr:10", sample=3)
    assert summary.count == 4
    assert [r.name for r in summary.sample] == ["Amy", "Bob", "Cat"]
    assert _summary(session, "mrr:10", sample=0).sample == ()


def test_summary_without_materialised_ctes_is_the_same(session, monkeypatch):
    """Older SQLites (before 3.35) compute the CTE once per use: the same summary."""
    import clmbot.segments.query as query

    customer(session, "a", stage="retention", plan="pro", mrr=900)
    customer(session, "c", stage="churned", plan="pro", mrr=5000)
    expected = _summary(session, "plan:pro")
    monkeypatch.setattr(query, "_can_materialise", lambda session: False)
    assert _summary(session, "plan:pro") == expected


def test_summary_of_nothing(session):
    customer(session, "a", plan="pro")
    summary = _summary(session, "plan:nope")
    assert (summary.count, summary.mrr, summary.by_stage, summary.sample) == (0, 0.0, (), ())


def test_summary_keeps_stages_the_lifecycle_no_longer_names(session):
    customer(session, "a", stage="retention", mrr=10)
    customer(session, "b", stage="legacy", mrr=20)
    customer(session, "c", stage="archived", mrr=30)
    summary = _summary(session, "mrr>=0")
    assert summary.count == 3
    assert summary.mrr == pytest.approx(60)
    assert summary.by_stage == (("retention", 1), ("archived", 1), ("legacy", 1))


def test_summary_with_subquery_filters(session):
    low = customer(session, "low", mrr=10)
    high = customer(session, "high", mrr=20)
    answer(session, low, "nps", 3, NOW - DAY)
    answer(session, high, "nps", 10, NOW - DAY)
    summary = _summary(session, "nps<7 inactive>30d")
    assert (summary.count, [r.external_id for r in summary.sample]) == (1, ["low"])
    assert count(session, _where(session, "-nps<7")) == 1


def test_resolve_expands_saved_names_and_fills_in_me(session):
    settings = Settings()
    customer(session, "mine", plan="pro", owner="U0ME")
    customer(session, "other", plan="pro", owner="U0THEM")
    save_segment(session, "my-pro", "plan:pro owner:@me", by="U0ME", now=NOW, settings=settings)
    segment, where = resolve(session, "my-pro", settings=settings, now=NOW, actor_id="U0THEM")
    assert segment.filters[0].saved == "my-pro"
    assert [r.external_id for r in iter_rows(session, where)] == ["other"]


def test_export_streams_every_row_with_formulas_neutralised(session):
    customer(
        session,
        '=HYPERLINK("http://evil","x")',
        name="+1+2",
        email="a@b.co",
        stage="retention",
        owner="U0ME",
        plan="@SUM(A1:A2)",
        region="\tEMEA",
        mrr=1250.5,
        signup=date(2024, 5, 1),
        tags=["vip", "-5", "=1+1"],
    )
    # Plain numbers are no formula: -5 and +1 stay as they are (see clmbot.files.neutralise).
    customer(session, "plain", name="Plain Co", stage="purchase", mrr=-5, plan="-5", region="+1")
    customer(session, "other", name="Other", stage="purchase", mrr=12, region="\rx")
    out = io.StringIO(newline="")
    written = write_csv(iter_rows(session, _where(session, "mrr<=2000")), out)
    assert written == 3
    rows = list(csv.reader(io.StringIO(out.getvalue(), newline="")))
    assert tuple(rows[0]) == EXPORT_COLUMNS
    by_id = {r[0]: dict(zip(EXPORT_COLUMNS, r, strict=True)) for r in rows[1:]}
    evil = by_id['\'=HYPERLINK("http://evil","x")']
    assert evil["name"] == "'+1+2"
    assert evil["plan"] == "'@SUM(A1:A2)"
    assert evil["region"] == "'\tEMEA"
    assert evil["mrr"] == "1250.5"
    assert evil["signup_date"] == "2024-05-01"
    assert evil["tags"] == "vip;-5;=1+1"  # starts with a letter: no formula
    assert evil["owner_slack_id"] == "U0ME"
    plain = by_id["plain"]
    assert (plain["mrr"], plain["plan"], plain["region"]) == ("-5", "-5", "+1")
    assert (plain["email"], plain["tags"], plain["signup_date"]) == ("", "", "")
    assert by_id["other"]["region"] == "'\rx"
    assert [r[1] for r in rows[1:]] == ["'+1+2", "Other", "Plain Co"]  # by name


def test_export_of_a_tag_list_starting_with_a_formula(session):
    customer(session, "t", tags=["=cmd|' /C calc'!A0", "x"])
    out = io.StringIO(newline="")
    write_csv(iter_rows(session, _where(session, "tag:x")), out)
    assert "'=cmd|' /C calc'!A0;x" in out.getvalue()


def test_export_reads_in_batches(session, monkeypatch):
    import clmbot.segments.query as query

    monkeypatch.setattr(query, "_BATCH", 7)
    for i in range(30):
        customer(session, f"c{i:02d}", name=f"N{i:02d}", plan="pro")
    rows = list(iter_rows(session, _where(session, "plan:pro")))
    assert [r.external_id for r in rows] == [f"c{i:02d}" for i in range(30)]
