"""A sample business, made up from a seed: customers, the history of their stages, what they
bought and did, and what they answered to NPS and CSAT surveys.

Its dates are counted back from `today`, so that "the last 30 days" always holds something:
the sample is generated when it is used (`clmbot sample DIR`), never shipped with dates
that fade. The same seed and day give the same business, row for row.

The shape is a small B2B/retail mix: people hear of the product (awareness), try it
(consideration), buy (purchase), keep buying (retention), recommend it (advocacy), or go
(churned). Each buyer has a rhythm of their own (every 2 to 8 weeks); some have stopped
buying lately without anyone noticing, which is what a retention team is for.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from clmbot.files import PrivateFile, neutralise

OWNERS = ("U0SARI001", "U0BUDI002", "U0MAYA003", "U0TOM0004")
_FIRST = (
    "Acme", "Beta", "Cahaya", "Delta", "Eko", "Fajar", "Garuda", "Harbor", "Indah", "Jaya",
    "Kopi", "Lumen", "Mitra", "Nusa", "Orbit", "Pelangi", "Quill", "Rimba", "Sinar", "Tirta",
    "Umbra", "Vega", "Warung", "Xeno", "Yasa", "Zenith",
)  # fmt: skip
_SECOND = (
    "Corp", "Logistics", "Retail", "Foods", "Analytics", "Studio", "Labs", "Trading",
    "Kitchen", "Travel", "Health", "Media", "Supply", "Coffee", "Motors", "Books",
)  # fmt: skip
_PLANS = (("starter", 49), ("team", 180), ("pro", 450), ("enterprise", 2400))
_REGIONS = (
    ("APAC", "Asia/Jakarta", "id"),
    ("APAC", "Asia/Singapore", "en"),
    ("EMEA", "Europe/Berlin", "en"),
    ("AMER", "America/New_York", "en"),
)
_TAGS = ("vip", "beta-tester", "reseller", "onboarding", "multi-site", "annual")
_PRAISE = {
    "en": (
        "Support answered within the hour",
        "Love the reporting",
        "Great onboarding call",
        "Easy to set up for the whole team",
    ),
    "id": (
        "Dukungannya cepat sekali",
        "Laporannya sangat membantu",
        "Mudah dipakai oleh seluruh tim",
        "Onboarding-nya jelas",
    ),
}
_NEUTRAL = {
    "en": ("Does the job", "Fine, a bit pricey", "OK but the app is slow on Mondays"),
    "id": ("Cukup baik", "Lumayan, tapi agak mahal", "Aplikasinya kadang lambat"),
}
_COMPLAINT = {
    "en": (
        "Too expensive for what we use",
        "We are evaluating alternatives",
        "Invoices were wrong twice",
        "Nobody called back about our ticket",
    ),
    "id": (
        "Terlalu mahal untuk kebutuhan kami",
        "Kami sedang mencari alternatif",
        "Tagihan salah dua kali",
        "Tiket kami tidak ditanggapi",
    ),
}


@dataclass
class SampleCustomer:
    external_id: str
    name: str
    email: str
    slack_user_id: str
    owner: str
    plan: str
    mrr: float
    region: str
    timezone: str
    locale: str
    signup: date
    tags: list[str]
    moves: list[tuple[datetime, str, str]] = field(default_factory=list)  # at, stage, by
    events: list[tuple[datetime, str, float | None]] = field(default_factory=list)
    answers: list[tuple[datetime, str, int, str]] = field(default_factory=list)

    @property
    def stage(self) -> str:
        return self.moves[-1][1]


@dataclass
class SampleBusiness:
    today: date
    customers: list[SampleCustomer]

    def write(self, folder: Path) -> list[Path]:
        """customers.csv, stages.csv, events.csv and feedback.csv in `folder`, private."""
        folder.mkdir(parents=True, exist_ok=True)
        tables = {
            "customers.csv": (
                [
                    "external_id",
                    "name",
                    "email",
                    "slack_user_id",
                    "stage",
                    "owner_slack_id",
                    "plan",
                    "region",
                    "mrr",
                    "signup_date",
                    "tags",
                    "locale",
                    "timezone",
                ],
                (
                    [
                        c.external_id,
                        c.name,
                        c.email,
                        c.slack_user_id,
                        c.stage,
                        c.owner,
                        c.plan,
                        c.region,
                        f"{c.mrr:.2f}" if c.mrr else "",
                        c.signup.isoformat(),
                        ";".join(c.tags),
                        c.locale,
                        c.timezone,
                    ]
                    for c in self.customers
                ),
            ),
            "stages.csv": (
                ["customer_external_id", "stage", "moved_at", "by", "reason"],
                (
                    [c.external_id, stage, _iso(at), by, _REASONS.get(stage, "")]
                    for c in self.customers
                    for at, stage, by in c.moves
                ),
            ),
            "events.csv": (
                ["customer_external_id", "kind", "occurred_at", "value"],
                sorted(
                    (
                        [c.external_id, kind, _iso(at), "" if value is None else f"{value:.2f}"]
                        for c in self.customers
                        for at, kind, value in c.events
                    ),
                    key=lambda row: row[2],
                ),
            ),
            "feedback.csv": (
                ["customer_external_id", "kind", "score", "comment", "responded_at"],
                (
                    [c.external_id, kind, str(score), comment, _iso(at)]
                    for c in self.customers
                    for at, kind, score, comment in c.answers
                ),
            ),
        }
        written = []
        for name, (header, rows) in tables.items():
            out = PrivateFile(folder / name)
            writer = csv.writer(out.file)
            writer.writerow(header)
            writer.writerows([neutralise(cell) for cell in row] for row in rows)
            out.commit()
            written.append(folder / name)
        return written


_REASONS = {
    "consideration": "started a trial",
    "purchase": "first order",
    "retention": "second order within the quarter",
    "advocacy": "referred another customer",
    "churned": "no order for months",
}


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def generate(
    today: date, *, seed: int = 7, customers: int = 120, months: int = 12
) -> SampleBusiness:
    """A business of `customers` customers who signed up over the last `months` months."""
    rng = random.Random(seed)
    # The start of today (UTC): whatever the hour, the whole business lies in the past.
    end = datetime.combine(today, time(0, 0), tzinfo=UTC)
    span = timedelta(days=30 * months)
    names: set[str] = set()
    made = []
    for n in range(1, customers + 1):
        name = _company(rng, names)
        plan, price = rng.choices(_PLANS, weights=(4, 4, 2, 1))[0]
        region, zone, locale = rng.choice(_REGIONS)
        signup_at = end - span + timedelta(days=rng.uniform(0, span.days - 3))
        signup_at = _office_hours(signup_at, ZoneInfo(zone), rng)
        slug = name.lower().replace(" ", "")
        customer = SampleCustomer(
            external_id=f"C{n:04d}",
            name=name,
            email=f"hello@{slug}.example",
            slack_user_id=f"UC{n:07d}" if rng.random() < 0.6 else "",
            owner=rng.choice(OWNERS),
            plan=plan,
            mrr=float(price * rng.choice((1, 1, 1, 2, 3))),
            region=region,
            timezone=zone,
            locale=locale,
            signup=signup_at.astimezone(ZoneInfo(zone)).date(),
            tags=sorted(rng.sample(_TAGS, rng.choice((0, 0, 1, 2)))),
        )
        _live(customer, rng, signup_at, end)
        made.append(customer)
    return SampleBusiness(today, made)


def _company(rng: random.Random, taken: set[str]) -> str:
    while True:
        name = f"{rng.choice(_FIRST)} {rng.choice(_SECOND)}"
        if name in taken:
            name += f" {rng.randint(2, 12)}"
        if name not in taken:
            taken.add(name)
            return name


def _office_hours(at: datetime, zone: ZoneInfo, rng: random.Random) -> datetime:
    local = at.astimezone(zone)
    hour = rng.randint(9, 17)
    return local.replace(hour=hour, minute=rng.randint(0, 59), second=0, microsecond=0)


def _live(c: SampleCustomer, rng: random.Random, start: datetime, end: datetime) -> None:
    """Walk one customer through the lifecycle until `end`: their moves, their purchases
    and logins at a rhythm of their own, and their answers."""
    at = start
    c.moves.append((at, "awareness", ""))  # no one moved them: they came
    # Awareness -> consideration -> purchase, each step taken by fewer.
    for stage, keep, days in (("consideration", 0.75, 9), ("purchase", 0.7, 16)):
        at = at + timedelta(days=rng.expovariate(1 / days) + 1)
        if rng.random() > keep or at >= end:
            last = start
            for _ in range(rng.randint(0, 4)):  # they looked around before going quiet
                seen = start + timedelta(days=rng.uniform(0, max((min(at, end) - start).days, 1)))
                if seen < end:
                    c.events.append((seen, "page_view", None))
                    last = max(last, seen)
            # A lead gone quiet is closed as lost after a few months, as a CRM's owner does.
            lost = last + timedelta(days=rng.uniform(60, 120))
            if lost < end:
                c.moves.append((lost, "churned", c.owner))
            c.mrr = 0.0  # never bought: no revenue to lose
            return
        c.moves.append((at, stage, c.owner))
    _buy(c, rng, at, end)


def _buy(c: SampleCustomer, rng: random.Random, first: datetime, end: datetime) -> None:
    rhythm = rng.choice((14, 21, 30, 45, 60))
    basket = c.mrr / 2 + rng.uniform(10, 60)
    # Some customers stop: a date after which they buy no more. Those who stopped long ago
    # have churned; those who stopped lately are drifting, still "in retention".
    stops = rng.random() < 0.4
    stop = first + timedelta(days=rng.uniform(20, 300)) if stops else end
    at, orders, moved_on = first, 0, False
    while at < min(stop, end):
        c.events.append((at, "purchase", round(basket * rng.uniform(0.7, 1.4), 2)))
        for _ in range(rng.randint(1, 4)):
            login = at + timedelta(days=rng.uniform(0, rhythm))
            if login < min(stop, end):
                c.events.append((login, "login", None))
        if rng.random() < 0.08:
            ticket = at + timedelta(days=rng.uniform(0, rhythm))
            if ticket < end:
                c.events.append((ticket, "ticket", None))
                if rng.random() < 0.7:
                    _answer(c, rng, ticket + timedelta(days=1), "csat", end, unhappy=stops)
        orders += 1
        if orders == 2 and not moved_on:
            c.moves.append((at, "retention", c.owner))
            moved_on = True
        elif orders == 6 and rng.random() < 0.3 and c.stage == "retention":
            c.moves.append((at + timedelta(hours=2), "advocacy", c.owner))
        if orders in (1, 4, 9) and rng.random() < 0.6:
            _answer(c, rng, at + timedelta(days=rng.uniform(3, 10)), "nps", end, unhappy=stops)
        at += timedelta(days=rhythm * rng.uniform(0.7, 1.3))
    if stops and stop < end:
        gone = stop + timedelta(days=rng.uniform(45, 90))
        if gone < end:
            c.moves.append((gone, "churned", c.owner))
        elif rng.random() < 0.5:
            _answer(c, rng, stop + timedelta(days=rng.uniform(5, 40)), "nps", end, unhappy=True)


def _answer(
    c: SampleCustomer, rng: random.Random, at: datetime, kind: str, end: datetime, *, unhappy: bool
) -> None:
    if at >= end:
        return
    if kind == "nps":
        score = rng.choice((2, 4, 5, 6, 6, 7)) if unhappy else rng.choice((7, 8, 9, 9, 10, 10, 6))
        words = _COMPLAINT if score <= 6 else _NEUTRAL if score <= 8 else _PRAISE
    else:
        score = rng.choice((1, 2, 3)) if unhappy else rng.choice((3, 4, 4, 5, 5))
        words = _COMPLAINT if score <= 2 else _NEUTRAL if score == 3 else _PRAISE
    comment = rng.choice(words[c.locale]) if rng.random() < 0.7 else ""
    c.answers.append((at, kind, score, comment))
