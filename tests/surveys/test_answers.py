"""How a typed reply is read."""

from __future__ import annotations

import pytest

from clmbot.surveys.answers import is_stop, read_score


@pytest.mark.parametrize(
    ("text", "read"),
    [
        ("8", (8, "")),
        ("8 great support", (8, "great support")),
        ("8, great support", (8, "great support")),
        ("8/10", (8, "")),
        ("10!", (10, "")),
        ("  3 - too slow", (3, "too slow")),
        ("11", (11, "")),  # out of the scale: the caller asks again
        ("great support", None),
        ("80s music", None),
        ("", None),
    ],
)
def test_a_score_at_the_start_of_a_message(text, read):
    assert read_score(text, "nps") == read


@pytest.mark.parametrize("text", ["stop", "STOP", "Stop.", "berhenti", "Berhenti!", "unsubscribe"])
def test_stop_words(text):
    assert is_stop(text)


def test_a_sentence_with_stop_in_it_is_not_a_stop():
    assert not is_stop("please stop the invoices")
