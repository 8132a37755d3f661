"""The message catalogue: every text in every language, and the customer's language."""

from __future__ import annotations

import pytest

from clmbot.surveys.texts import CATALOGUE, Texts, language_of, placeholders


def test_every_language_has_every_text_with_the_same_placeholders():
    english = CATALOGUE["en"]
    for language, texts in CATALOGUE.items():
        assert set(texts) == set(english), language
        for key, text in texts.items():
            assert placeholders(text) == placeholders(english[key]), (language, key)


@pytest.mark.parametrize(
    ("locale", "language"),
    [("id", "id"), ("id-ID", "id"), ("in_ID", "id"), ("en-GB", "en"), ("pt-BR", "en"), ("", "en")],
)
def test_the_language_of_a_locale(locale, language):
    assert language_of(locale) == language


def test_customer_texts_never_name_internal_data():
    for texts in CATALOGUE.values():
        for text in texts.values():
            assert not any(word in text.lower() for word in ("risk", "owner", "churn", "mrr"))


def test_an_unknown_language_speaks_english():
    assert Texts().say("fr", "closed") == CATALOGUE["en"]["closed"]
