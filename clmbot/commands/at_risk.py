"""`at-risk [<customer | segment | filters>] [page N]`: the customers at or above the risk
threshold in the latest stored pass, highest first, with reasons and MRR, ten at a time."""

from __future__ import annotations

from sqlalchemy import ColumnElement

from clmbot.commands.base import Call, Command, customers_named
from clmbot.commands.spec import CommandSpec
from clmbot.results import AtRiskResult, Result, UsageResult
from clmbot.risk.stored import at_risk

SPEC = CommandSpec(
    "at-risk",
    "at-risk [<segment | filters>] [page N]",
    "at-risk plan:pro",
    "the customers drifting toward churn (risk at or above the threshold in the latest daily "
    "pass), highest first, with the reasons and their MRR, ten at a time",
)
PAGE = 10
_MOST_PAGES = 1000


def handle(spec: CommandSpec, args: list[str], call: Call) -> Result:
    text = call.text.strip()
    page = 1
    words = text.split()
    if len(words) >= 2 and words[-2].lower() == "page":
        if not words[-1].isdecimal() or not 1 <= int(words[-1]) <= _MOST_PAGES:
            return UsageResult(spec, f"Say which page, from 1 to {_MOST_PAGES}: `page 2`.")
        page = int(words[-1])
        text = text[: text.lower().rstrip().rfind("page")].strip()
    where: ColumnElement[bool] | None = None
    if text:
        found = customers_named(spec, text, call)
        if not isinstance(found, ColumnElement):
            return found
        where = found
    threshold = call.settings.risk.threshold
    listed = at_risk(
        call.session,
        now=call.now,
        threshold=threshold,
        where=where,
        offset=(page - 1) * PAGE,
        limit=PAGE,
    )
    more = None
    if listed.has_more and page < _MOST_PAGES:
        more = " ".join(p for p in ("at-risk", text, f"page {page + 1}") if p)
    return AtRiskResult(listed, threshold, text or None, page, more)


COMMAND = Command(SPEC, handle)
