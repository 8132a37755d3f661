from datetime import UTC, datetime

from clmbot.customers import find_customers
from clmbot.store.db import session_scope
from clmbot.store.models import Customer

T = datetime(2026, 1, 1, tzinfo=UTC)


def add(engine, *customers: tuple[str, str, str | None]) -> None:
    with session_scope(engine) as s:
        for ext, name, email in customers:
            s.add(
                Customer(
                    external_id=ext,
                    name=name,
                    email=email,
                    stage="purchase",
                    created_at=T,
                    updated_at=T,
                )
            )


def test_by_external_id_email_exact_name_and_prefix(engine):
    add(
        engine,
        ("A1", "Acme", "ops@acme.io"),
        ("A2", "Acme Labs", None),
        ("B1", "Beta_1", None),
        ("B2", "Beta2", None),
    )
    with session_scope(engine) as s:
        assert find_customers(s, "A2").unique.name == "Acme Labs"
        assert find_customers(s, "OPS@acme.io").unique.external_id == "A1"
        assert find_customers(s, "acme").unique.external_id == "A1"  # exact name beats prefix
        assert [c.name for c in find_customers(s, "Ac").matches] == ["Acme", "Acme Labs"]
        # _ and % are letters here, not wildcards
        assert [c.name for c in find_customers(s, "beta_").matches] == ["Beta_1"]
        assert find_customers(s, "Zed").matches == []


def test_many_matches_are_capped_and_flagged(engine):
    add(engine, *[(f"C{i:02d}", f"Corp {i:02d}", None) for i in range(12)])
    with session_scope(engine) as s:
        found = find_customers(s, "corp")
    assert len(found.matches) == 10 and found.more and found.unique is None


def test_forgotten_customers_are_found_by_id_only(engine):
    with session_scope(engine) as s:
        s.add(
            Customer(
                external_id="F1",
                name="Gone",
                email="g@x.io",
                stage="churned",
                created_at=T,
                updated_at=T,
                forgotten_at=T,
            )
        )
    with session_scope(engine) as s:
        assert find_customers(s, "Gone").matches == []
        assert find_customers(s, "g@x.io").matches == []
        assert find_customers(s, "F1").unique is not None
