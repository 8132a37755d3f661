from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from sqlalchemy.exc import StatementError
from sqlmodel import select

from clmbot.store.db import session_scope
from clmbot.store.models import Customer


def test_times_come_back_aware_utc_whatever_went_in(engine):
    jakarta = timezone(timedelta(hours=7))
    with session_scope(engine) as s:
        s.add(
            Customer(
                external_id="A1",
                name="Acme",
                stage="purchase",
                created_at=datetime(2024, 5, 1, 7, 0, tzinfo=jakarta),
                updated_at=datetime(2024, 5, 1, tzinfo=UTC),
                signup_date=date(2024, 1, 1),
            )
        )
    with session_scope(engine) as s:
        c = s.exec(select(Customer)).one()
        assert c.created_at == datetime(2024, 5, 1, 0, 0, tzinfo=UTC)
        assert c.created_at.tzinfo is not None and c.created_at.utcoffset() == timedelta(0)
        assert c.tags == [] and c.attributes == {}


def test_naive_times_are_refused(engine):
    with pytest.raises(StatementError, match="naive datetime"), session_scope(engine) as s:
        s.add(
            Customer(
                external_id="A1",
                name="Acme",
                stage="purchase",
                created_at=datetime(2024, 5, 1),
                updated_at=datetime(2024, 5, 1),
            )
        )
