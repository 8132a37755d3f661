"""Finding a customer from what a person types: an external id, an e-mail, or a name."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from sqlalchemy import and_, func, or_, select
from sqlmodel import Session

from clmbot.results import CustomerInfo, CustomerRef
from clmbot.store.models import Customer

MAX_MATCHES = 10
# Prefix matches read to put in natural order before the first MAX_MATCHES are shown: SQL
# sorts "Shop 10" before "Shop 2", people do not.
_CANDIDATES = 500
_DIGITS = re.compile(r"(\d+)")
_LONGEST_REF = 320  # an e-mail; external ids are at most 200, names 300
# Names compared in Python for "closest names", at most.
_CLOSE_CANDIDATES = 4000


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


def _like_prefix(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def find_customers(session: Session, ref: str, *, limit: int = MAX_MATCHES) -> Lookup:
    """External id (exact), then e-mail (any case), then name: an exact name wins over
    prefixes, so "Acme" finds "Acme" even when "Acme Labs" exists too."""
    ref = ref.strip()
    if not ref or len(ref) > _LONGEST_REF:
        # Longer than any id, e-mail or name can be: nothing matches (and SQLite refuses a
        # LIKE pattern over 50,000 bytes).
        return Lookup(ref, [], False)
    by_id = session.scalars(select(Customer).where(Customer.external_id == ref)).first()
    if by_id is not None:
        return Lookup(ref, [by_id], False)
    active = Customer.forgotten_at.is_(None)
    if "@" in ref:
        found = session.scalars(
            select(Customer)
            .where(active, func.lower(Customer.email) == ref.lower())
            .order_by(func.lower(Customer.name), Customer.external_id)  # no walk of the name index
            .limit(limit + 1)
        ).all()
        if found:
            ordered = sorted(found, key=lambda c: (natural_key(c.name), natural_key(c.external_id)))
            return Lookup(ref, ordered[:limit], len(found) > limit)
    exact = session.scalars(
        select(Customer).where(active, func.lower(Customer.name) == ref.lower()).limit(2)
    ).all()
    if len(exact) == 1:
        return Lookup(ref, list(exact), False)
    found = session.scalars(
        select(Customer)
        .where(active, func.lower(Customer.name).like(_like_prefix(ref.lower()), escape="\\"))
        .order_by(Customer.name, Customer.external_id)
        .limit(max(_CANDIDATES, limit + 1))
    ).all()
    ordered = sorted(found, key=lambda c: (natural_key(c.name), natural_key(c.external_id)))
    return Lookup(ref, ordered[:limit], len(found) > limit)


def closest_names(session: Session, ref: str, *, count: int = 3) -> list[str]:
    """Names that look like `ref`, for "no customer matches …; did you mean …".

    The database narrows the names to those a typo could have come from, so that a customer
    base of any size is never read into Python: names that begin like `ref` (its first two
    letters), names of about its length that share its first letter, and names whose first
    word begins like `ref`'s. A typo in the very first letter is not found; the external id
    and the e-mail still are.
    """
    lowered = " ".join(ref.strip().lower().split())
    if not lowered or len(lowered) > _LONGEST_REF:
        return []
    low = func.lower(Customer.name)
    active = Customer.forgotten_at.is_(None)
    near_length = func.length(Customer.name).between(len(lowered) - 3, len(lowered) + 3)
    shapes = [
        low.like(_like_prefix(lowered[:2]), escape="\\"),
        and_(low.like(_like_prefix(lowered[:1]), escape="\\"), near_length),
    ]
    names = session.scalars(
        select(Customer.name).where(active, or_(*shapes)).limit(_CLOSE_CANDIDATES)
    ).all()
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
