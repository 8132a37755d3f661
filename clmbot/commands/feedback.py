"""`feedback [<customer | segment | filters>] [since <when>] [detractors] [page N]`: the
latest comments, ten at a time."""

from __future__ import annotations

from sqlalchemy import ColumnElement

from clmbot.commands.base import Call, Command, customers_named, period_of, split_words
from clmbot.commands.scores import DEFAULT_PERIOD, split_at_keyword
from clmbot.commands.spec import CommandSpec
from clmbot.feedback.comments import comments
from clmbot.results import FeedbackResult, Result, UsageResult

SPEC = CommandSpec(
    "feedback",
    "feedback [<customer | segment | filters>] [since <when>] [detractors]",
    "feedback plan:pro since 30d detractors",
    "the latest NPS and CSAT comments, with score, customer and date, ten at a time; "
    "`detractors` puts the unhappy ones first",
)
PAGE = 10
_MOST_PAGES = 1000


def handle(spec: CommandSpec, args: list[str], call: Call) -> Result:
    head, tail = split_at_keyword(call.text, ("since", "detractors", "page"))
    try:
        words = split_words(tail)
    except ValueError:
        return UsageResult(spec, 'A quote is not closed: check your " marks.')
    lowered = [w.lower() for w in words]
    detractors = "detractors" in lowered
    words = [w for w in words if w.lower() != "detractors"]
    lowered = [w.lower() for w in words]
    page = 1
    if "page" in lowered:
        at = lowered.index("page")
        number = words[at + 1] if at + 1 < len(words) else ""
        if not number.isdecimal() or not 1 <= int(number) <= _MOST_PAGES:
            return UsageResult(spec, f"Say which page, from 1 to {_MOST_PAGES}: `page 2`.")
        page = int(number)
        words = words[:at] + words[at + 2 :]
    since = period_of(spec, words, call, DEFAULT_PERIOD)
    if isinstance(since, UsageResult):
        return since
    where: ColumnElement[bool] | None = None
    if head:
        found = customers_named(spec, head, call)
        if not isinstance(found, ColumnElement):
            return found
        where = found
    listed = comments(
        call.session,
        since=since,
        now=call.now,
        where=where,
        detractors_first=detractors,
        offset=(page - 1) * PAGE,
        limit=PAGE,
    )
    more = None
    if listed.has_more and page < _MOST_PAGES:
        more = " ".join(
            part
            for part in (
                "feedback",
                head,
                tail_since(tail),
                "detractors" if detractors else "",
                f"page {page + 1}",
            )
            if part
        )
    return FeedbackResult(listed, since, call.now, head or None, detractors, more)


def tail_since(tail: str) -> str:
    """The `since …` part of the words after the filters, as typed, for the next page."""
    _, rest = split_at_keyword(tail, ("since",))
    if not rest:
        return ""
    kept, _ = split_at_keyword(rest[len("since") :], ("detractors", "page"))
    return f"since {kept}".strip()


COMMAND = Command(SPEC, handle)
