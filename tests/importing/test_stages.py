from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from clmbot.config import Settings
from clmbot.importing.runner import import_file
from clmbot.lifecycle import funnel
from clmbot.profile import customer_profile
from clmbot.store.db import session_scope
from clmbot.store.models import Customer
from tests.helpers import read_rejected, rows, snapshot, write_csv

STAGES = """
customer_external_id,stage,moved_at,by,reason,source
A1,awareness,2026-01-05,,webinar,hubspot
A1,consideration,2026-02-01,U0SALES1,asked for a demo,
A1,purchase,2026-03-15T09:30:00Z,Sari,signed,hubspot
B2,awareness,2026-02-10,,,
B2,Consideration,2026-04-01,,,
"""


@pytest.fixture
def customers(engine, settings, now, tmp_path):
    path = write_csv(
        tmp_path / "customers.csv",
        "external_id,name,stage,signup_date\nA1,Acme,purchase,2026-01-05\nB2,Beta,consideration,",
    )
    import_file(engine, "customers", path, settings, now=now - timedelta(days=2))


def test_a_crm_history_becomes_the_stage_history(engine, settings, now, tmp_path, customers):
    path = write_csv(tmp_path / "stages.csv", STAGES)
    report = import_file(engine, "stages", path, settings, now=now)
    assert (report.rows, report.inserted, report.rejected) == (5, 5, 0)
    history = rows(
        engine, "stage_history", "customer_id", "at", "from_stage", "to_stage", "by", "reason"
    )
    a1 = [h[1:] for h in history if h[0] == history[0][0]]
    assert a1 == [
        # the guess "in purchase since the signup" gave way to the real history
        (datetime(2026, 1, 5, tzinfo=UTC), None, "awareness", "import", "webinar"),
        (
            datetime(2026, 2, 1, tzinfo=UTC),
            "awareness",
            "consideration",
            "U0SALES1",
            "asked for a demo",
        ),
        (datetime(2026, 3, 15, 9, 30, tzinfo=UTC), "consideration", "purchase", "Sari", "signed"),
    ]
    # B2 was in consideration since the import (undated): now dated, since April
    assert rows(engine, "customers", "external_id", "stage") == [
        ("A1", "purchase"),
        ("B2", "consideration"),
    ]
    # extra columns are kept with the move they came with
    kept = rows(engine, "stage_history", "reason", "attributes")
    assert ("webinar", {"source": "hubspot"}) in kept and ("asked for a demo", None) in kept
    assert any(n.startswith("2 first stages that earlier imports") for n in report.notes)
    b2 = [h[1:4] for h in history if h[0] != history[0][0]]
    assert b2 == [
        (datetime(2026, 2, 10, tzinfo=UTC), None, "awareness"),
        (datetime(2026, 4, 1, tzinfo=UTC), "awareness", "consideration"),
    ]


def test_importing_the_same_history_twice_changes_nothing(
    engine, settings, now, tmp_path, customers
):
    path = write_csv(tmp_path / "stages.csv", STAGES)
    import_file(engine, "stages", path, settings, now=now)
    before = snapshot(engine)
    again = import_file(engine, "stages", path, settings, now=now + timedelta(days=1))
    assert (again.inserted, again.unchanged, again.rejected) == (0, 5, 0)
    assert snapshot(engine) == before


def test_the_funnel_and_the_card_show_the_imported_history(
    engine, settings, now, tmp_path, customers
):
    import_file(engine, "stages", write_csv(tmp_path / "stages.csv", STAGES), settings, now=now)
    with session_scope(engine) as s:
        result = funnel(
            s, since=datetime(2026, 1, 1, tzinfo=UTC), now=now, lifecycle=settings.lifecycle
        )
        a1 = s.exec(select(Customer).where(Customer.external_id == "A1")).one()
        card = customer_profile(s, a1, now=now)
    stats = {st.stage: st for st in result.stages}
    assert stats["awareness"].entered == 2 and stats["consideration"].entered == 2
    assert stats["awareness"].median_days == pytest.approx((27 + 50) / 2)
    conversions = {(c.from_stage, c.to_stage): (c.converted, c.base) for c in result.conversions}
    assert conversions[("awareness", "consideration")] == (2, 2)
    assert conversions[("consideration", "purchase")] == (1, 2)
    assert card.stage_since == datetime(2026, 3, 15, 9, 30, tzinfo=UTC)
    assert card.history_total == 3


def test_bad_rows_are_rejected_with_their_reason(engine, settings, now, tmp_path, customers):
    path = write_csv(
        tmp_path / "stages.csv",
        """
        customer_external_id,stage,moved_at,reason
        A1,vip,2026-01-05,
        A1,awareness,2031-01-05,
        ZZ,awareness,2026-01-05,
        A1,awareness,2026-01-05,first
        A1,awareness,2026-01-05T00:00:00Z,again
        """,
    )
    report = import_file(engine, "stages", path, settings, now=now)
    assert (report.inserted, report.rejected) == (1, 4)
    rejected = sorted(
        read_rejected(tmp_path / "stages.rejected.csv"),
        key=lambda r: int(r["rejected_reason"].split()[1].rstrip(":")),
    )
    # the file's own reason column is kept; the rejection has a column of its own
    assert [r["reason"] for r in rejected] == ["", "", "", "again"]
    why = [r["rejected_reason"] for r in rejected]
    assert why[0].startswith("line 2: stage 'vip' is not a stage; use one of: awareness")
    assert "moved_at 2031-01-05 is in the future" in why[1]
    assert "no customer has external_id ZZ; import them with customers.csv first" in why[2]
    assert "line 6: same customer, stage and moved_at as line 5" in why[3]


def test_an_import_found_stage_is_not_entered_in_the_funnel(engine, db_url, now, tmp_path):
    """The first import of a CRM's customers must not look like everyone entering their
    stage on the day of the import."""
    settings = Settings(database_url=db_url)
    path = write_csv(
        tmp_path / "c.csv",
        "external_id,name,stage\nA1,Acme,retention\nB2,Beta,purchase\nC3,Gamma,retention",
    )
    import_file(engine, "customers", path, settings, now=now - timedelta(days=1))
    with session_scope(engine) as s:
        result = funnel(s, since=now - timedelta(days=30), now=now, lifecycle=settings.lifecycle)
        a1 = s.exec(select(Customer).where(Customer.external_id == "A1")).one()
        card = customer_profile(s, a1, now=now)
    assert {st.stage: st.customers for st in result.stages if st.customers} == {
        "purchase": 1,
        "retention": 2,
    }
    assert all(st.entered == 0 for st in result.stages)
    assert card.stage_since is None and card.stage_found_at == now - timedelta(days=1)


def test_a_crm_row_that_is_an_imports_guess_makes_it_true(engine, settings, now, tmp_path):
    """The events import guessed "in purchase since the first purchase"; the CRM says the
    same move: the row becomes the CRM's, and importing the history again changes nothing."""
    events = write_csv(
        tmp_path / "e.csv",
        "customer_external_id,kind,occurred_at,value\nP1,purchase,2026-03-01T10:00:00Z,99",
    )
    import_file(engine, "events", events, settings, now=now)
    stages = write_csv(
        tmp_path / "s.csv",
        "customer_external_id,stage,moved_at,by\n"
        "P1,awareness,2026-02-20T10:00:00Z,\nP1,purchase,2026-03-01T10:00:00Z,U0SALES1",
    )
    import_file(engine, "stages", stages, settings, now=now)
    assert rows(engine, "stage_history", "at", "from_stage", "to_stage", "by", "basis") == [
        (datetime(2026, 2, 20, 10, tzinfo=UTC), None, "awareness", "import", "exact"),
        (datetime(2026, 3, 1, 10, tzinfo=UTC), "awareness", "purchase", "U0SALES1", "exact"),
    ]
    assert rows(engine, "customers", "stage") == [("purchase",)]
    before = snapshot(engine)
    import_file(engine, "stages", stages, settings, now=now + timedelta(hours=1))
    assert snapshot(engine) == before


def test_a_signup_guess_the_history_contradicts_is_replaced(engine, settings, now, tmp_path):
    customers = write_csv(
        tmp_path / "c.csv",
        "external_id,name,stage,signup_date\nA2,Beta,retention,2026-01-01\nA3,Gamma,retention,2023-01-01",
    )
    import_file(engine, "customers", customers, settings, now=now)
    stages = write_csv(
        tmp_path / "s.csv",
        "customer_external_id,stage,moved_at\n"
        "A2,consideration,2026-01-05\nA2,purchase,2026-02-01\nA2,retention,2026-03-01\n"
        "A3,advocacy,2026-06-01",
    )
    import_file(engine, "stages", stages, settings, now=now)
    history = rows(engine, "stage_history", "customer_id", "at", "from_stage", "to_stage")
    by_customer: dict = {}
    for cid, at, frm, to in history:
        by_customer.setdefault(cid, []).append((at.date().isoformat(), frm, to))
    a2, a3 = by_customer.values()
    # consideration after "retention since the signup": the guess was wrong, and goes
    assert a2 == [
        ("2026-01-05", None, "consideration"),
        ("2026-02-01", "consideration", "purchase"),
        ("2026-03-01", "purchase", "retention"),
    ]
    # a later step forward is no contradiction: the guess stays the start
    assert a3 == [("2023-01-01", None, "retention"), ("2026-06-01", "retention", "advocacy")]


def test_an_undated_stage_the_history_does_not_reach_stays_and_peoples_moves_keep_theirs(
    engine, settings, now, tmp_path
):
    """B1 was in retention at the import (the customers file said so), then an admin moved
    them; a CRM history that ends in purchase before that does not erase either."""
    from clmbot.commands.spec import Actor
    from clmbot.lifecycle import move_customer
    from clmbot.store.db import session_scope

    customers = write_csv(tmp_path / "c.csv", "external_id,name,stage\nB1,Bravo,retention")
    imported_at = now - timedelta(days=2)
    import_file(engine, "customers", customers, settings, now=imported_at)
    with session_scope(engine) as s:
        b1 = s.exec(select(Customer)).one()
        actor = Actor("U0ADMIN", is_admin=True, channel="C0CS")
        move_customer(
            s,
            b1,
            "advocacy",
            actor=actor,
            ref="B1",
            reason="loves us",
            now=now,
            lifecycle=settings.lifecycle,
        )
    stages = write_csv(
        tmp_path / "s.csv",
        "customer_external_id,stage,moved_at\nB1,awareness,2026-01-01\nB1,purchase,2026-02-01",
    )
    import_file(engine, "stages", stages, settings, now=now)
    assert rows(engine, "stage_history", "at", "from_stage", "to_stage", "by") == [
        (datetime(2026, 1, 1, tzinfo=UTC), None, "awareness", "import"),
        (datetime(2026, 2, 1, tzinfo=UTC), "awareness", "purchase", "import"),
        (imported_at, "purchase", "retention", "import"),
        (now, "retention", "advocacy", "U0ADMIN"),
    ]
    assert rows(engine, "customers", "stage") == [("advocacy",)]


def test_a_move_after_the_import_is_refused(engine, settings, now, tmp_path, customers):
    path = write_csv(
        tmp_path / "s.csv",
        "customer_external_id,stage,moved_at\nA1,retention,"
        + (now + timedelta(hours=12)).isoformat(),
    )
    report = import_file(engine, "stages", path, settings, now=now)
    assert report.rejected == 1
    (bad,) = read_rejected(tmp_path / "s.rejected.csv")
    assert "is after the import: a history is of what has happened" in bad["rejected_reason"]
