from datetime import UTC, datetime, timedelta

import pytest

from clmbot.importing.runner import import_file
from tests.helpers import read_rejected, rows, snapshot, write_csv

FEEDBACK = """
customer_external_id,kind,score,comment,responded_at
A1,nps,9,"Great support, fast answers",2024-05-01T10:00:00Z
A1,csat,4,,2024-05-01T10:00:00Z
B2,NPS,3,"Too expensive.
We may leave.",2024-06-01
"""


@pytest.fixture
def customers(engine, settings, now, tmp_path):
    path = write_csv(tmp_path / "customers.csv", "external_id,name\nA1,Acme\nB2,Beta")
    import_file(engine, "customers", path, settings, now=now)


def test_feedback_is_stored_with_comments_intact(engine, settings, now, tmp_path, customers):
    path = tmp_path / "feedback.csv"
    path.write_text(FEEDBACK.lstrip())
    report = import_file(engine, "feedback", path, settings, now=now)
    assert (report.rows, report.inserted, report.rejected) == (3, 3, 0)
    assert rows(engine, "feedback", "kind", "score", "comment", "responded_at", "source") == [
        ("csat", 4, None, datetime(2024, 5, 1, 10, tzinfo=UTC), "import"),
        ("nps", 3, "Too expensive.\nWe may leave.", datetime(2024, 6, 1, tzinfo=UTC), "import"),
        ("nps", 9, "Great support, fast answers", datetime(2024, 5, 1, 10, tzinfo=UTC), "import"),
    ]


def test_importing_the_same_feedback_twice_changes_nothing(
    engine, settings, now, tmp_path, customers
):
    path = tmp_path / "feedback.csv"
    path.write_text(FEEDBACK.lstrip())
    import_file(engine, "feedback", path, settings, now=now)
    before = snapshot(engine)
    again = import_file(engine, "feedback", path, settings, now=now + timedelta(days=2))
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 3)
    assert snapshot(engine) == before


def test_a_corrected_score_or_comment_is_an_update(engine, settings, now, tmp_path, customers):
    path = tmp_path / "feedback.csv"
    path.write_text(FEEDBACK.lstrip())
    import_file(engine, "feedback", path, settings, now=now)
    fixed = write_csv(
        tmp_path / "f2.csv",
        "customer_external_id,kind,score,comment,responded_at\n"
        "A1,nps,10,Great support,2024-05-01T10:00:00Z\nA1,csat,4,,2024-05-01T10:00:00Z",
    )
    report = import_file(engine, "feedback", fixed, settings, now=now)
    assert (report.inserted, report.updated, report.unchanged) == (0, 1, 1)
    assert (10, "Great support") in rows(engine, "feedback", "score", "comment")


@pytest.mark.usefixtures("checking_mode")
def test_bad_feedback_rows_are_rejected(engine, settings, now, tmp_path, customers):
    path = write_csv(
        tmp_path / "feedback.csv",
        """
        customer_external_id,kind,score,comment,responded_at
        A1,nps,11,,2024-05-01
        A1,csat,0,,2024-05-01
        A1,csat,4.5,,2024-05-01
        A1,ces,3,,2024-05-01
        ZZ,nps,8,,2024-05-01
        A1,nps,8,,2024-05-01
        A1,nps,7,,2024-05-01
        """,
    )
    report = import_file(engine, "feedback", path, settings, now=now)
    assert (report.rows, report.inserted, report.rejected) == (7, 1, 6)
    reasons = [r["reason"] for r in read_rejected(tmp_path / "feedback.rejected.csv")]
    assert "line 2: score 11 is out of range; NPS scores are 0 to 10" in reasons
    assert "line 3: score 0 is out of range; CSAT scores are 1 to 5" in reasons
    assert any("'4.5' is not a whole number" in r for r in reasons)
    assert any("kind 'ces' is not nps or csat" in r for r in reasons)
    assert any("no customer has external_id ZZ" in r for r in reasons)
    assert any("line 8: same customer, kind and responded_at as line 7" in r for r in reasons)


@pytest.mark.usefixtures("checking_mode")
def test_strict_checks_unknown_customers_too(engine, settings, now, tmp_path, customers):
    path = write_csv(
        tmp_path / "feedback.csv",
        "customer_external_id,kind,score,responded_at\nA1,nps,99,2024-05-01\nZZ,nps,8,2024-05-02",
    )
    report = import_file(engine, "feedback", path, settings, now=now, strict=True)
    assert report.strict_aborted and report.rejected == 2
    assert rows(engine, "feedback", "id") == []


def test_a_file_without_extra_columns_keeps_the_attributes(
    engine, settings, now, tmp_path, customers
):
    first = write_csv(
        tmp_path / "f1.csv",
        "customer_external_id,kind,score,responded_at,channel\nA1,nps,9,2024-05-01,email",
    )
    import_file(engine, "feedback", first, settings, now=now)
    second = write_csv(
        tmp_path / "f2.csv", "customer_external_id,kind,score,responded_at\nA1,nps,9,2024-05-01"
    )
    report = import_file(engine, "feedback", second, settings, now=now)
    assert (report.updated, report.unchanged) == (0, 1)
    assert rows(engine, "feedback", "attributes") == [({"channel": "email"},)]
