"""The segment semantics written again, plainly, in Python: the reference the SQL is checked
against (test_properties.py). Written from the documented meaning of each field, not from
`clmbot.segments.compile`; it shares only the parsed tree and `Ago`'s calendar arithmetic."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo

from clmbot.segments.language import ME, Ago, Filter, Segment
from clmbot.store.models import IMPORTED

_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")


@dataclass
class Move:
    id: int
    from_stage: str | None
    to_stage: str
    at: datetime
    basis: str


@dataclass
class Person:
    """A customer and everything about them a segment can ask."""

    external_id: str
    stage: str
    created_at: datetime
    plan: str | None = None
    region: str | None = None
    owner: str | None = None
    mrr: float | None = None
    signup: date | None = None
    tags: list[str] = field(default_factory=list)
    attributes: dict[str, str] = field(default_factory=dict)
    forgotten: bool = False
    events: list[datetime] = field(default_factory=list)
    answers: list[tuple[str, int, datetime]] = field(default_factory=list)  # kind, score, at
    moves: list[Move] = field(default_factory=list)


def ascii_lower(text: str) -> str:
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in text)


def _holds(op: str, left: object, right: object) -> bool:
    if op in (":", "="):
        return left == right
    return {
        ">": lambda a, b: a > b,
        "<": lambda a, b: a < b,
        ">=": lambda a, b: a >= b,
        "<=": lambda a, b: a <= b,
    }[op](left, right)


def _any_or_compare(op: str, value: object, values: tuple) -> bool:
    if value is None:
        return False
    if op == ":":
        return value in values
    return _holds(op, value, values[0])


class Evaluator:
    def __init__(self, now: datetime, zone: tzinfo, actor: str | None) -> None:
        self.now = now
        self.today = now.astimezone(zone).date()
        self.actor = actor

    def select(self, segment: Segment, people: list[Person]) -> set[str]:
        return {
            p.external_id
            for p in people
            if not p.forgotten and all(self.matches(f, p) for f in segment.filters)
        }

    def matches(self, f: Filter, p: Person) -> bool:
        positive = getattr(self, "_" + f.field.replace("-", "_"))(f, p)
        return not positive if f.negated else positive

    def _stage(self, f: Filter, p: Person) -> bool:
        return p.stage in f.values

    def _text(self, value: str | None, f: Filter) -> bool:
        return value is not None and ascii_lower(value) in {ascii_lower(v) for v in f.values}

    def _plan(self, f: Filter, p: Person) -> bool:
        return self._text(p.plan, f)

    def _region(self, f: Filter, p: Person) -> bool:
        return self._text(p.region, f)

    def _tag(self, f: Filter, p: Person) -> bool:
        return any(self._text(t, f) for t in p.tags)

    def _owner(self, f: Filter, p: Person) -> bool:
        for value in f.values:
            if value is None and p.owner is None:
                return True
            if value == ME and p.owner is not None and p.owner == self.actor:
                return True
            if value not in (None, ME) and p.owner == value:
                return True
        return False

    def _latest(self, p: Person, kind: str) -> int | None:
        seen = [(at, score) for k, score, at in p.answers if k == kind and at <= self.now]
        return max(seen)[1] if seen else None

    def _nps(self, f: Filter, p: Person) -> bool:
        return _any_or_compare(f.op, self._latest(p, "nps"), f.values)

    def _csat(self, f: Filter, p: Person) -> bool:
        return _any_or_compare(f.op, self._latest(p, "csat"), f.values)

    def _mrr(self, f: Filter, p: Person) -> bool:
        return _any_or_compare(f.op, p.mrr, f.values)

    def _signup(self, f: Filter, p: Person) -> bool:
        if p.signup is None:
            return False
        value = f.values[0]
        if isinstance(value, Ago):
            if value.unit in ("d", "w"):
                age = (self.today - p.signup).days
                return _holds(f.op, age, value.count * (7 if value.unit == "w" else 1))
            # "Signed up more than 3 months ago": before the day 3 calendar months back.
            cutoff = value.before(self.today)
            return _holds({">": "<", "<": ">", ">=": "<=", "<=": ">="}[f.op], p.signup, cutoff)
        return _any_or_compare(f.op, p.signup, f.values)

    def _inactive(self, f: Filter, p: Person) -> bool:
        duration = f.values[0]
        assert isinstance(duration, timedelta)
        past = [at for at in p.events if at <= self.now]
        if past:
            idle = self.now - max(past)
        elif p.signup is not None:
            idle = timedelta(days=(self.today - p.signup).days)
        else:
            idle = self.now - p.created_at
        return _holds(f.op, idle, duration)

    def _in_stage(self, f: Filter, p: Person) -> bool:
        duration = f.values[0]
        assert isinstance(duration, timedelta)
        moves = [m for m in p.moves if m.at <= self.now and m.from_stage != m.to_stage]
        if not moves:
            return False
        latest = max(moves, key=lambda m: (m.at, m.id))
        if latest.to_stage != p.stage:
            return False
        held = self.now - latest.at  # at least this long; exactly, unless only an import knows
        if f.op in ("<", "<=") and latest.basis == IMPORTED:
            return False
        return _holds(f.op, held, duration)

    def _attr(self, f: Filter, p: Person) -> bool:
        value = p.attributes.get(f.key or "")
        if value is None:
            return False
        if f.op == ":":
            return self._text(value, f)
        if not _NUMBER.fullmatch(value):
            return False
        return _holds(f.op, float(value), f.values[0])

    def _risk(self, f: Filter, p: Person) -> bool:
        return False  # the properties' people have no stored risk pass
