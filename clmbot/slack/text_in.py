"""What Slack sends as typed text, back to what the person typed.

Slack escapes `&`, `<` and `>` in message and slash-command text, and turns e-mail addresses
and links into `<mailto:a@b.co|a@b.co>` and `<https://…|label>`; the commands expect the plain
words.
"""

from __future__ import annotations

import re

_LINK = re.compile(r"<(?:mailto:)?([^<>|]*)(?:\|([^<>]*))?>")


def from_slack(text: str) -> str:
    plain = _LINK.sub(lambda m: m.group(2) or m.group(1), text)
    return plain.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
