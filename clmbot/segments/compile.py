"""A segment's tree compiled to one SQLAlchemy boolean expression over `Customer`.

Only expressions and bound parameters: no value typed by a person ever becomes SQL text, and
no comparison is a LIKE, so `%`, `_` and `\\` match themselves. The same tree means the same
customers on SQLite and PostgreSQL; where the two differ (JSON, case folding, casting text
to numbers) each gets its own form of the same question.

What each field means (as of `now`, which may be in the past: later events, answers and
stage moves are not seen):

- `stage`, `owner`: equality (`owner:none`: no owner; `@me`: `actor_id`).
- `plan`, `region`, `tag`, `attr.NAME:`: equality ignoring the case of ASCII letters only
  (`plan:Pro` finds `pro`; `É` and `é` differ). SQLite's `lower()` folds ASCII only, and
  PostgreSQL's folds whatever its locale says; folding ASCII on both (PostgreSQL under the "C"
  collation) makes the two agree.
- `nps`, `csat`: the customer's latest answer of that kind at or before `now`.
- `mrr`: the stored MRR.
- `signup`: with a date, the signup date (`signup>2024-01-01`: after that day); with a
  duration, the customer's age in days on today's date in the team's zone (`signup<30d`:
  signed up less than 30 days ago; `signup>1y`: more than a year ago).
- `inactive`: the time since the latest event at or before `now`. A customer with no event
  yet is as inactive as they are old: since their signup date (counted in days, as `signup`
  does), else since clmbot first knew them (`created_at`).
- `in-stage`: the time since the customer entered their current stage: the latest move (a
  stage-history row into a different stage) at or before `now`, when it is into the stage the
  customer is in. A stage only an import knows about was held at least since that import, so
  `in-stage>30d` holds when the import is older than 30 days, and `in-stage<30d` does not
  (the stage may be older). No such row: unknown, no match.
- `attr.NAME>…`: the attribute read as a number (`-?digits[.digits]`); text that is not a
  number does not match.
- `risk`: the risk in the latest stored pass (`clmbot.risk.stored`).

`nps`, `csat` and `inactive` read the latest value kept on the customer's row while it
holds (`clmbot.store.latest`), in the same statement that checks it does; else they probe
the table for each customer, as they did before the values were kept.

A customer without a value (no plan, no answer, no attribute) matches no positive filter, and
every negated one: `-F` is "does not satisfy F". Forgotten customers never match.
"""

from __future__ import annotations

import operator
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Float,
    String,
    and_,
    case,
    cast,
    exists,
    false,
    func,
    literal,
    not_,
    or_,
    select,
)
from sqlalchemy.orm import aliased

from clmbot.risk.stored import latest_risk
from clmbot.segments.language import ME, NUMBER, Ago, Filter, Segment, SegmentError
from clmbot.store.latest import is_current
from clmbot.store.models import IMPORTED, Customer, Event, Feedback, StageChange

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    ">": operator.gt,
    "<": operator.lt,
    ">=": operator.ge,
    "<=": operator.le,
}
# "Older than": a bigger age is an earlier date. `signup<30d` is a signup date after the day
# 30 days ago.
_REVERSED = {">": "<", "<": ">", ">=": "<=", "<=": ">="}


def fold(text: str) -> str:
    """Lower case for ASCII letters only, as the databases compare (see the module's doc)."""
    return text.translate(_ASCII_LOWER)


@dataclass(frozen=True)
class _Context:
    now: datetime
    today: date  # now's date in the team's zone
    dialect: str
    actor_id: str | None


def compile_segment(
    segment: Segment,
    *,
    now: datetime,
    dialect: str,
    zone: tzinfo = UTC,
    actor_id: str | None = None,
) -> ColumnElement[bool]:
    """The WHERE clause for `select(…).where(…)` over `Customer` that picks the customers in
    `segment` as of `now` (aware). `dialect`: `session.get_bind().dialect.name`; `zone`: the
    team's time zone, for "today" in day counts; `actor_id`: the Slack user asking, for `@me`.

    Raises `SegmentError` for what only shows here: `@me` without a Slack user.
    """
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    if dialect not in ("sqlite", "postgresql"):
        raise ValueError(f"segments run on sqlite and postgresql, not {dialect}")
    ctx = _Context(now, now.astimezone(zone).date(), dialect, actor_id)
    compiled: list[tuple[int, ColumnElement[bool]]] = []
    for item in segment.filters:
        clause = _COMPILERS[item.field](item, ctx)
        if item.negated:
            # NOT of an unknown (NULL) is unknown, which no WHERE keeps: "not on the pro plan"
            # must find the customers without a plan too.
            clause = not_(func.coalesce(clause, false(), type_=Boolean))
        compiled.append((_COST[item.field], clause))
    # Cheap tests first: SQLite evaluates an AND in order and stops at the first false, so
    # the subqueries run only for the customers the columns let through.
    compiled.sort(key=lambda pair: pair[0])
    return and_(Customer.forgotten_at.is_(None), *(clause for _, clause in compiled))


def _fold_sql(expr: Any, ctx: _Context) -> ColumnElement[str]:
    if ctx.dialect == "postgresql":
        return func.lower(expr.collate("C"))
    return func.lower(expr)


def _text_in(expr: Any, item: Filter, ctx: _Context) -> ColumnElement[bool]:
    values = sorted({fold(v) for v in item.values if isinstance(v, str)})
    return _fold_sql(expr, ctx).in_(values)


def _compare(expr: Any, item: Filter) -> ColumnElement[bool]:
    if item.op == ":":
        return expr.in_(list(item.values))
    return _COMPARE[item.op](expr, item.values[0])


# --- the fields --------------------------------------------------------------------------


def _stage(item: Filter, ctx: _Context) -> ColumnElement[bool]:
    return Customer.stage.in_(list(item.values))


def _plan(item: Filter, ctx: _Context) -> ColumnElement[bool]:
    return _text_in(Customer.plan, item, ctx)


def _region(item: Filter, ctx: _Context) -> ColumnElement[bool]:
    return _text_in(Customer.region, item, ctx)


def _owner(item: Filter, ctx: _Context) -> ColumnElement[bool]:
    ids: list[str] = []
    for value in item.values:
        if value == ME:
            if not ctx.actor_id or ctx.actor_id.startswith("cli:"):
                raise SegmentError(
                    f"owner:@me {item.where} means the person asking, and no Slack user is "
                    "asking here; name the owner instead, e.g. owner:U0123ABCD",
                    item.position,
                )
            ids.append(ctx.actor_id)
        elif isinstance(value, str):
            ids.append(value)
    clauses = [Customer.owner_slack_id.in_(sorted(set(ids)))] if ids else []
    if None in item.values:
        clauses.append(Customer.owner_slack_id.is_(None))
    return or_(*clauses)


def _tag(item: Filter, ctx: _Context) -> ColumnElement[bool]:
    if ctx.dialect == "postgresql":
        tags = func.jsonb_array_elements_text(Customer.tags).table_valued("value")
    else:
        tags = func.json_each(Customer.tags).table_valued("value")
    values = sorted({fold(v) for v in item.values if isinstance(v, str)})
    return exists(select(1).select_from(tags).where(_fold_sql(tags.c.value, ctx).in_(values)))


def _latest_score(kind: str) -> Callable[[Filter, _Context], ColumnElement[bool]]:
    def compile_score(item: Filter, ctx: _Context) -> ColumnElement[bool]:
        # One probe per customer of an index that leads with customer and kind and holds the
        # time (uq_feedback_customer_kind_time; with 0005's covering index, the score too).
        asked = (
            select(Feedback.score)
            .where(
                Feedback.customer_id == Customer.id,
                Feedback.kind == kind,
                Feedback.responded_at <= ctx.now,
            )
            .order_by(Feedback.responded_at.desc())
            .limit(1)
            .correlate(Customer)
            .scalar_subquery()
        )
        kept_at = Customer.__table__.c[f"latest_{kind}_at"]
        kept = Customer.__table__.c[f"latest_{kind}"]
        return _compare(_kept_or_asked(kept_at, kept, asked, "feedback", ctx), item)

    return compile_score


def _kept_or_asked(
    kept_at: Any, kept: Any, asked: Any, table: str, ctx: _Context
) -> ColumnElement[Any]:
    """The customer's latest value as of `now`: the one kept on their row
    (`clmbot.store.latest`) while it holds and is not later than `now`, else `asked` of the
    table. While the kept values hold, a customer with none kept has none in the table
    (`kept_at > now` is then unknown, not true, and the kept NULL is given). One CASE with
    the check once: each check is two subqueries of the statement."""
    return case((or_(~is_current(table), kept_at > ctx.now), asked), else_=kept)


def _risk(item: Filter, ctx: _Context) -> ColumnElement[bool]:
    """The customer's risk in the latest stored pass as of `now` (`clmbot alerts run`, or
    the daily job); a customer not in it (no pass yet, or churned then) matches nothing."""
    return _compare(latest_risk(ctx.now), item)


def _mrr(item: Filter, ctx: _Context) -> ColumnElement[bool]:
    return _compare(Customer.mrr, item)


def _signup(item: Filter, ctx: _Context) -> ColumnElement[bool]:
    value = item.values[0]
    if isinstance(value, Ago):
        return _age_in_days(Customer.signup_date, item.op, value.before(ctx.today))
    return _compare(Customer.signup_date, item)


def _age_in_days(column: Any, op: str, cutoff: date) -> ColumnElement[bool]:
    """`age op duration` for a date column, where `cutoff` is today minus the duration."""
    return _COMPARE[_REVERSED[op]](column, cutoff)


def _inactive(item: Filter, ctx: _Context) -> ColumnElement[bool]:
    duration = item.values[0]
    assert isinstance(duration, timedelta)
    start = ctx.now - duration
    # The latest event at or before now: kept on the row, or one probe of
    # uq_events_customer_time_kind_seq.
    asked = (
        select(Event.occurred_at)
        .where(Event.customer_id == Customer.id, Event.occurred_at <= ctx.now)
        .order_by(Event.occurred_at.desc())
        .limit(1)
        .correlate(Customer)
        .scalar_subquery()
    )
    kept = Customer.__table__.c.latest_event_at
    latest = _kept_or_asked(kept, kept, asked, "events", ctx)
    since_event = _COMPARE[_REVERSED[item.op]](latest, start)  # NULL without an event
    no_event = case(
        (
            Customer.signup_date.is_not(None),
            _age_in_days(Customer.signup_date, item.op, ctx.today - timedelta(duration.days)),
        ),
        else_=_COMPARE[_REVERSED[item.op]](Customer.created_at, start),
    )
    return func.coalesce(since_event, no_event, type_=Boolean)


def _in_stage(item: Filter, ctx: _Context) -> ColumnElement[bool]:
    duration = item.values[0]
    assert isinstance(duration, timedelta)
    start = ctx.now - duration
    move, later = aliased(StageChange), aliased(StageChange)
    newer = exists().where(
        later.customer_id == move.customer_id,
        later.at <= ctx.now,
        later.from_stage.is_distinct_from(later.to_stage),
        or_(later.at > move.at, and_(later.at == move.at, later.id > move.id)),
    )
    entered = _COMPARE[_REVERSED[item.op]](move.at, start)
    if item.op in ("<", "<="):  # recently entered: only a known date can say so
        entered = and_(entered, move.basis != IMPORTED)
    return exists().where(
        move.customer_id == Customer.id,
        move.to_stage == Customer.stage,
        move.at <= ctx.now,
        move.from_stage.is_distinct_from(move.to_stage),
        entered,
        ~newer,
    )


def _attr(item: Filter, ctx: _Context) -> ColumnElement[bool]:
    assert item.key is not None
    if ctx.dialect == "postgresql":
        value = Customer.attributes[item.key].as_string()  # ->> with the key bound
        if item.op == ":":
            return _text_in(value, item, ctx)
        return _COMPARE[item.op](_as_number(value, ctx), item.values[0])
    if item.op == ":" and _PATH_SAFE_KEY.fullmatch(item.key):
        # The key in a bound JSON path; `->>` (SQLite 3.38) is faster than json_extract.
        path = literal(f'$."{item.key}"', String)
        text_value = (
            Customer.attributes.op("->>", return_type=String)(path)
            if sqlite3.sqlite_version_info >= (3, 38)
            else func.json_extract(Customer.attributes, path, type_=String)
        )
        return _text_in(text_value, item, ctx)
    # The object's decoded keys: SQLite before 3.45 cannot put a key with a quote in a JSON
    # path, nor one the stored text escapes (non-ASCII: the JSON is written with \u escapes);
    # and a number test reads the value several times, which a path would parse each time.
    pairs = func.json_each(Customer.attributes).table_valued("key", "value")
    if item.op == ":":
        matches = _text_in(pairs.c.value, item, ctx)
    else:
        matches = _COMPARE[item.op](_as_number(pairs.c.value, ctx), item.values[0])
    return exists(select(1).select_from(pairs).where(pairs.c.key == item.key, matches))


# Keys a SQLite JSON path reaches as they are: printable ASCII without quote or backslash.
_PATH_SAFE_KEY = re.compile(r"[ !#-\[\]-~]+")


def _as_number(value: Any, ctx: _Context) -> ColumnElement[float]:
    """`value` as a number when it is written as one (`NUMBER`), else NULL. The test comes
    first in a CASE: PostgreSQL refuses to cast "abc", and may evaluate an AND either way."""
    if ctx.dialect == "postgresql":
        is_number = value.regexp_match(f"^{NUMBER.pattern}$")
    else:
        # SQLite has no regular expressions without a Python callback; GLOBs say the same:
        # a digit first (after an optional minus), then only digits and dots, at most one
        # dot, and not last.
        is_number = and_(
            or_(value.op("GLOB")("[0-9]*"), value.op("GLOB")("-[0-9]*")),
            value.op("NOT GLOB")("?*[^0-9.]*"),
            value.op("NOT GLOB")("*.*.*"),
            value.op("NOT GLOB")("*."),
        )
    return case((is_number, cast(value, Float)), else_=None)


# Columns of the row, then JSON inside the row, then an index probe per customer.
_COST = {
    "stage": 0, "plan": 0, "region": 0, "owner": 0, "mrr": 0, "signup": 0, "risk": 0,
    "tag": 1, "attr": 1, "nps": 2, "csat": 2, "in-stage": 2, "inactive": 3,
}  # fmt: skip

_COMPILERS: dict[str, Callable[[Filter, _Context], ColumnElement[bool]]] = {
    "stage": _stage,
    "plan": _plan,
    "region": _region,
    "tag": _tag,
    "owner": _owner,
    "nps": _latest_score("nps"),
    "csat": _latest_score("csat"),
    "risk": _risk,
    "mrr": _mrr,
    "inactive": _inactive,
    "in-stage": _in_stage,
    "signup": _signup,
    "attr": _attr,
}
