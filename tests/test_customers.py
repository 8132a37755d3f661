from datetime import UTC, datetime

from clmbot.customers import closest_names, find_customers, key_forms
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


def test_email_in_any_case_and_names_with_wildcard_letters(engine):
    add(
        engine,
        ("P1", "100% Pure", "Sales@Pure.io"),
        ("P2", "100 Percent", None),
        ("U1", "a_b", None),
        ("U2", "axb", None),
    )
    with session_scope(engine) as s:
        assert find_customers(s, "sales@PURE.IO").unique.external_id == "P1"
        assert [c.external_id for c in find_customers(s, "100%").matches] == ["P1"]
        assert [c.external_id for c in find_customers(s, "a_").matches] == ["U1"]
        assert [c.name for c in find_customers(s, "100").matches] == ["100 Percent", "100% Pure"]


def test_letters_outside_ascii_in_any_case(engine):
    """SQLite's lower() leaves Ö as it is: the look-up asks for both cases."""
    add(engine, ("T1", "Ölmez Gida", None), ("T2", "özgür", None), ("T3", "Émile", None))
    with session_scope(engine) as s:
        for typed in ("Ölmez Gida", "ölmez gida", "ÖLMEZ G", "öl", "Öl"):
            assert [c.external_id for c in find_customers(s, typed).matches] == ["T1"], typed
        for typed in ("Özgür", "ÖZGÜR", "öz"):
            assert [c.external_id for c in find_customers(s, typed).matches] == ["T2"], typed
        assert find_customers(s, "émile").unique.external_id == "T3"


def test_key_forms_cover_both_cases_of_letters_outside_ascii():
    assert key_forms("ACME") == ["acme"]
    assert set(key_forms("Ölmez")) == {"ölmez", "Ölmez"}
    assert len(key_forms("ÇÖÜĞŞ")) == 8  # the first three such letters, in both cases


def test_a_prefix_shared_by_many_still_lists_the_first_in_natural_order(engine):
    add(engine, *[(f"S{i:03d}", f"Shop {i}", None) for i in range(1, 600)])
    with session_scope(engine) as s:
        found = find_customers(s, "shop")
    assert found.more
    assert [c.name for c in found.matches][:3] == ["Shop 1", "Shop 2", "Shop 3"]


def test_closest_names_find_common_typos_among_many(engine):
    names = [
        f"{w} {k}" for w in ("Tokamu", "Tokyo", "Toledo", "Tomato", "Acme") for k in range(300)
    ]
    add(engine, *[(f"N{i:05d}", n, None) for i, n in enumerate(names)], ("X1", "Ölmez", None))
    with session_scope(engine) as s:
        assert "Tokamu 7" in closest_names(s, "Tkoamu 7")  # letters crossed
        assert "Tokamu 7" in closest_names(s, "Tokamuu 7")  # a letter too many
        assert "Tomato 250" in closest_names(s, "Tomtao 250")  # letters crossed later
        assert "Acme 12" in closest_names(s, "acme12")  # the space left out
        assert closest_names(s, "Ölmes") == ["Ölmez"]
        assert closest_names(s, "Zzzz") == []
        assert closest_names(s, "x" * 400) == []


def test_closest_names_find_a_typo_in_the_first_letter(engine):
    """A first letter mistyped, left out, put before, or crossed with the second: each was
    never found, since every range read began with the letter typed first."""
    names = [f"{w} {k}" for w in ("Acme", "Beta", "Kopi", "Lumen", "Zeta") for k in range(300)]
    add(
        engine,
        *[(f"N{i:05d}", n, None) for i, n in enumerate(names)],
        ("X1", "Ölmez Gida", None),
        ("X2", "Rotterdam Freight", None),
    )
    with session_scope(engine) as s:
        assert "Acme 12" in closest_names(s, "Ecme 12")  # mistyped
        assert "Kopi 250" in closest_names(s, "opi 250")  # left out
        assert "Lumen 7" in closest_names(s, "Llumen 7")  # one put before it
        assert "Beta 99" in closest_names(s, "eBta 99")  # crossed with the second
        assert closest_names(s, "Olmez Gida") == ["Ölmez Gida"]  # the letter's accent
        assert closest_names(s, "Potterdam Freight") == ["Rotterdam Freight"]
        assert closest_names(s, "Qqqq") == []
