"""Finding a customer from what a person types: an external id, an e-mail, or a name."""

from __future__ import annotations

import difflib
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from sqlalchemy import ColumnElement, and_, func, literal_column, select, union_all
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.visitors import InternalTraversal
from sqlmodel import Session

from clmbot.results import CustomerInfo, CustomerRef
from clmbot.store.models import Customer

MAX_MATCHES = 10
# Prefix matches read to put in natural order before the first MAX_MATCHES are shown: SQL
# sorts "Shop 10" before "Shop 2", people do not.
_CANDIDATES = 500
_DIGITS = re.compile(r"(\d+)")
_LONGEST_REF = 320  # an e-mail; external ids are at most 200, names 300
# "Closest names": the neighbours of what was typed read on each side in the name index, the
# names read at each anchor, and the first letters a typo is looked for in (see `_anchors`).
_NEIGHBOURS = 50
_PER_ANCHOR = 3
_TYPO_POSITIONS = 10
# Letters outside ASCII looked up in both cases (2**n forms of a name; see `key_forms`).
_CASED_LETTERS = 3


def natural_key(name: str) -> tuple[tuple[int, int | str], ...]:
    """Sorts "Shop 2" before "Shop 10", and ignores case."""
    return tuple(
        (0, int(part)) if part.isdecimal() else (1, part)
        for part in _DIGITS.split(name.casefold())
        if part
    )


@dataclass(frozen=True)
class Lookup:
    ref: str
    matches: list[Customer]  # at most MAX_MATCHES
    more: bool  # there were more matches than listed

    @property
    def unique(self) -> Customer | None:
        return self.matches[0] if len(self.matches) == 1 else None


def key_forms(text: str) -> list[str]:
    """The forms lower(name) may take in the database for the names equal to `text` in any
    case, full lower case first.

    PostgreSQL lowers every letter (in a UTF-8 database); SQLite, and PostgreSQL with a "C"
    ctype, only A-Z: there "Ölmez" stays "Ölmez" and "ölmez" stays "ölmez". So a letter
    outside ASCII is looked up in both its cases (the first few such letters; the rest in
    lower case), A-Z always in lower case.
    """
    lowered = text.lower()
    forms = [lowered]
    cased = [i for i, c in enumerate(text) if not c.isascii() and c.lower() != c.upper()]
    cased = cased[:_CASED_LETTERS]
    if not cased:
        return forms
    for mask in range(1 << len(cased)):
        upper = {i for bit, i in enumerate(cased) if mask >> bit & 1}
        form = "".join(c.upper() if i in upper else c.lower() for i, c in enumerate(text))
        form = "".join(c.lower() if c.isascii() else c for c in form)
        if form not in forms:
            forms.append(form)
    return forms


def _after(prefix: str) -> str | None:
    """The least string greater than every string that begins with `prefix` (in code point
    order), or None when there is none."""
    for i in range(len(prefix) - 1, -1, -1):
        if ord(prefix[i]) < sys.maxunicode:
            return prefix[:i] + chr(ord(prefix[i]) + 1)
    return None


class _OrderUsing(ColumnElement[str]):
    """`expr USING op` in an ORDER BY: PostgreSQL walks an index in the order of its
    operator class only when the ORDER BY names that class's operator."""

    inherit_cache = True
    _traverse_internals: ClassVar[list[tuple[str, Any]]] = [
        ("expr", InternalTraversal.dp_clauseelement),
        ("operator", InternalTraversal.dp_string),
    ]

    def __init__(self, expr: ColumnElement[str], operator: str) -> None:
        self.expr = expr
        self.operator = operator


@compiles(_OrderUsing)
def _order_using(element: _OrderUsing, compiler: Any, **kw: Any) -> str:
    return f"{compiler.process(element.expr, **kw)} USING {element.operator}"


@dataclass(frozen=True)
class NameKey:
    """lower(name), compared as ix_customers_name_key orders it: by code point. SQLite
    always compares so; on PostgreSQL the index has the operator class text_pattern_ops
    (migration 0009), whose operators are ~<~, ~>=~ …, whatever the database's collation."""

    pattern_ops: bool
    key: ColumnElement[str] = field(default_factory=lambda: func.lower(Customer.name))

    @classmethod
    def of(cls, session: Session) -> NameKey:
        return cls(session.get_bind().dialect.name == "postgresql")

    @classmethod
    def tail_of(cls, session: Session) -> NameKey:
        """lower(name) without its first letter, as ix_customers_name_tail orders it
        (migration 0013)."""
        return cls(
            session.get_bind().dialect.name == "postgresql",
            # The 2 written into the statement, not bound: an index on an expression
            # serves only the very same expression.
            func.substr(func.lower(Customer.name), literal_column("2")),
        )

    def ge(self, value: str) -> ColumnElement[bool]:
        return self.key.op("~>=~")(value) if self.pattern_ops else self.key >= value

    def lt(self, value: str) -> ColumnElement[bool]:
        return self.key.op("~<~")(value) if self.pattern_ops else self.key < value

    def begins(self, prefix: str) -> ColumnElement[bool]:
        """Names that begin with `prefix`, as a range of the index: SQLite cannot use an
        index on an expression for LIKE."""
        upper = _after(prefix)
        return self.ge(prefix) if upper is None else and_(self.ge(prefix), self.lt(upper))

    def ascending(self) -> Any:
        return _OrderUsing(self.key, "~<~") if self.pattern_ops else self.key.asc()

    def descending(self) -> Any:
        return _OrderUsing(self.key, "~>~") if self.pattern_ops else self.key.desc()


def find_customers(session: Session, ref: str, *, limit: int = MAX_MATCHES) -> Lookup:
    """External id (exact), then e-mail (any case), then name: an exact name wins over
    prefixes, so "Acme" finds "Acme" even when "Acme Labs" exists too.

    Each step reads one index (migration 0009): e-mails and names by lower(...), names in
    the byte order of `lower_bytes`, so that a prefix is a range and its first candidates
    are the first entries of the range, however many customers share it."""
    ref = ref.strip()
    if not ref or len(ref) > _LONGEST_REF:
        # Longer than any id, e-mail or name can be: nothing matches.
        return Lookup(ref, [], False)
    by_id = session.scalars(select(Customer).where(Customer.external_id == ref)).first()
    if by_id is not None:
        return Lookup(ref, [by_id], False)
    active = Customer.forgotten_at.is_(None)
    forms = key_forms(ref)
    if "@" in ref:
        found = session.scalars(
            select(Customer)
            .where(active, func.lower(Customer.email).in_(forms))
            .order_by(Customer.id)
            .limit(limit + 1)
        ).all()
        if found:
            return _ordered(ref, found, limit, len(found) > limit)
    name = NameKey.of(session)
    exact = session.scalars(select(Customer).where(active, name.key.in_(forms)).limit(2)).all()
    if len(exact) == 1:
        return Lookup(ref, list(exact), False)
    cap = max(_CANDIDATES, limit + 1)
    found_by_id: dict[int | None, Customer] = {}
    capped = False
    for form in forms:
        rows = session.scalars(
            select(Customer).where(active, name.begins(form)).order_by(name.ascending()).limit(cap)
        ).all()
        capped = capped or len(rows) == cap
        found_by_id.update((c.id, c) for c in rows)
    found = list(found_by_id.values())
    return _ordered(ref, found, limit, capped or len(found) > limit)


def _ordered(ref: str, found: Sequence[Customer], limit: int, more: bool) -> Lookup:
    ordered = sorted(found, key=lambda c: (natural_key(c.name), natural_key(c.external_id)))
    return Lookup(ref, ordered[:limit], more)


def _anchors(lowered: str) -> list[str]:
    """Where in the name index a typo of `lowered` may have come from, besides next to the
    typo itself (where a wrong letter late in a name lands): the text with each of its
    first letters dropped, swapped with the next, or a space put before it (an extra letter,
    two letters crossed, a space left out), which is the name itself or its beginning."""
    anchors = []
    for i in range(1, _TYPO_POSITIONS + 1):
        anchors.append(lowered[:i] + lowered[i + 1 :])
        spaced = lowered[i - 1 : i + 1].strip() == lowered[i - 1 : i + 1]
        anchors.append(f"{lowered[:i]} {lowered[i:]}" if spaced else lowered)
        anchors.append(lowered[:i] + lowered[i + 1 : i + 2] + lowered[i : i + 1] + lowered[i + 2 :])
    # Always as many (the same statement each time, compiled once), however long `lowered`.
    return anchors


def closest_names(session: Session, ref: str, *, count: int = 3) -> list[str]:
    """Names that look like `ref`, for "no customer matches …; did you mean …".

    The database narrows the names to those a typo could have come from, so that a customer
    base of any size is never read into Python: among the names that begin with `ref`'s
    first letter, the neighbours of `ref` in the name index, and the first names at or after
    each of `_anchors(ref)`. Each is a short range of the index (one statement, a handful of
    index seeks), so the cost does not grow with the customers. A typo in the first letter
    itself (mistyped, left out, one put before it, or crossed with the second) is looked for
    in the same way, among the names without their first letter (`ix_customers_name_tail`)
    and at the text without its first letter or with the first two crossed.
    """
    lowered = " ".join(ref.strip().lower().split())
    if not lowered or len(lowered) > _LONGEST_REF:
        return []
    name = NameKey.of(session)
    tail = NameKey.tail_of(session)
    active = Customer.forgotten_at.is_(None)
    parts = []
    for form in key_forms(lowered):
        rest = form[1:] or form  # always as many parts: one statement, compiled once
        crossed = form[1:2] + form[:1] + form[2:]
        for key, start in ((tail, rest), (tail, form), (name, rest), (name, crossed)):
            # The first letter mistyped ("ecme") or left out ("cme"), the names without
            # their first letter from there; one put before it ("xacme"), or the first two
            # crossed ("caem"), the names from there. Bounded by the letter they start with.
            upper = _after(start[0])
            parts.append(
                select(Customer.name)
                .where(active, key.ge(start), *([] if upper is None else [key.lt(upper)]))
                .order_by(key.ascending())
                .limit(_PER_ANCHOR)
            )
        # One lower and one upper bound each: SQLite uses one of each for the range, and
        # would walk the whole letter checking another.
        after = _after(form[0])
        end = [] if after is None else [name.lt(after)]
        parts.append(
            select(Customer.name)
            .where(active, name.ge(form[0]), name.lt(form))
            .order_by(name.descending())
            .limit(_NEIGHBOURS)
        )
        parts.extend(
            select(Customer.name)
            .where(active, name.ge(anchor), *end)
            .order_by(name.ascending())
            .limit(limit)
            for anchor, limit in [(form, _NEIGHBOURS)] + [(a, _PER_ANCHOR) for a in _anchors(form)]
        )
    subqueries = [part.subquery() for part in parts]
    names = session.scalars(union_all(*(select(sub.c.name) for sub in subqueries))).all()
    by_lower = {name.lower(): name for name in names}
    close = difflib.get_close_matches(lowered, list(by_lower), n=count, cutoff=0.5)
    if len(close) < count:  # a typo in the first word of a longer name
        heads = {n.split()[0]: n for n in by_lower if n.split()}
        close += [
            heads[h]
            for h in difflib.get_close_matches(lowered, list(heads), n=count, cutoff=0.6)
            if heads[h] not in close
        ]
    return [by_lower[c] for c in close[:count]]


def customer_ref(customer: Customer) -> CustomerRef:
    return CustomerRef(customer.external_id, customer.name)


def customer_info(customer: Customer) -> CustomerInfo:
    """The plain copy of a customer row that results carry."""
    return CustomerInfo(
        external_id=customer.external_id,
        name=customer.name,
        stage=customer.stage,
        email=customer.email,
        owner_slack_id=customer.owner_slack_id,
        plan=customer.plan,
        region=customer.region,
        mrr=customer.mrr,
        signup_date=customer.signup_date,
        tags=tuple(customer.tags or ()),
    )
