"""What Slack sends as typed text, back to what the person typed.

Slack escapes `&`, `<` and `>` in message and slash-command text, and turns e-mail addresses
and links into `<mailto:a@b.co|a@b.co>` and `<https://…|label>`; the commands expect the plain
words.
"""

from __future__ import annotations

import re

_LINK = re.compile(r"<(?:mailto:)?([^<>|]*)(?:\|([^<>]*))?>")
_USER = re.compile(r"<(@[UW][A-Z0-9]+)(?:\|[^<>]*)?>")
_OPEN, _CLOSE = "\ue000", "\ue001"


def from_slack(text: str) -> str:
    """A mention of a person stays a mention (`<@U123>`, its label dropped): a filter such
    as `owner:<@U123|sari>` means that person, not the word "sari"."""
    # Kept out of the link rule under two private-use characters, which no one types.
    text = text.replace(_OPEN, "").replace(_CLOSE, "")
    kept = _USER.sub(lambda m: f"{_OPEN}{m.group(1)}{_CLOSE}", text)
    plain = _LINK.sub(lambda m: m.group(2) or m.group(1), kept)
    plain = plain.replace(_OPEN, "<").replace(_CLOSE, ">")
    return plain.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
