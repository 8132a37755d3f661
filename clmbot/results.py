"""What commands answer: plain typed data, no ORM rows.

Every front door reads these and nothing else: Slack's views (`clmbot/slack/views/`), the
plain-text renderer (`clmbot/plain.py`: the CLI, the console demo, Slack's fallback text).
Services build the read models below from the database, so that no renderer can trigger a
query (or see a column it should not) by touching an attribute.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from clmbot.commands.spec import CommandSpec

# --- customers --------------------------------------------------------------------------


@dataclass(frozen=True)
class CustomerRef:
    """A customer as a list shows one: enough to name them and to open their card."""

    external_id: str
    name: str


@dataclass(frozen=True)
class CustomerInfo:
    """What a card shows about a customer (no internal ids, nothing about other customers)."""

    external_id: str
    name: str
    stage: str
    email: str | None = None
    owner_slack_id: str | None = None
    plan: str | None = None
    region: str | None = None
    mrr: float | None = None
    signup_date: date | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Answer:
    """One NPS or CSAT answer."""

    score: int
    responded_at: datetime
    comment: str | None = None


@dataclass(frozen=True)
class HistoryLine:
    """One row of a customer's stage history, as people read it."""

    from_stage: str | None
    to_stage: str
    at: datetime
    by: str
    reason: str | None


@dataclass(frozen=True)
class Activity:
    kind: str
    at: datetime


@dataclass(frozen=True)
class Profile:
    customer: CustomerInfo
    history: list[HistoryLine]  # newest first, at most `profile.HISTORY_SHOWN`
    history_total: int
    stage_since: datetime | None  # when the customer entered the current stage, if known
    last_activity: Activity | None
    latest_nps: Answer | None
    latest_csat: Answer | None
    events_last_30_days: int
    # When only an import knows the current stage (not when it began): that import's time.
    stage_found_at: datetime | None = None
    # In a terminal stage (churned): their MRR is what it was, not what it is.
    ended: bool = False


# --- the lifecycle ------------------------------------------------------------------------


@dataclass(frozen=True)
class StageMove:
    customer_id: int
    from_stage: str
    to_stage: str
    at: datetime
    by: str
    reason: str | None
    changed: bool


@dataclass(frozen=True)
class StageStats:
    stage: str
    customers: int  # in this stage at `now`
    entered: int  # moves into this stage within the period
    median_days: float | None  # median length of the stays in this stage that ended in the period
    stays: int  # how many such stays the median is of


@dataclass(frozen=True)
class Conversion:
    from_stage: str
    to_stage: str
    base: int  # customers in `from_stage` at some time in the period
    converted: int  # of those, how many went on to `to_stage` or further within the period

    @property
    def rate(self) -> float | None:
        return self.converted / self.base if self.base else None


@dataclass(frozen=True)
class Funnel:
    since: datetime
    now: datetime
    stages: list[StageStats]
    conversions: list[Conversion]

    @property
    def total(self) -> int:
        return sum(s.customers for s in self.stages)


# --- answers to a command -------------------------------------------------------------------


@dataclass(frozen=True)
class HelpResult:
    commands: list[CommandSpec]
    note: str | None = None  # e.g. "I don't know `fnnel`. Did you mean `funnel`?"
    planned: tuple[str, ...] = ()  # in PRODUCT.md, not built yet


@dataclass(frozen=True)
class GreetingResult:
    """A "hi" in a DM: a short hello and how to ask."""

    examples: list[CommandSpec]


@dataclass(frozen=True)
class UsageResult:
    spec: CommandSpec
    problem: str


@dataclass(frozen=True)
class NotYetResult:
    command: str


@dataclass(frozen=True)
class RefusedResult:
    message: str


@dataclass(frozen=True)
class MatchesResult:
    """Several customers match: the person has to be more precise."""

    ref: str
    matches: list[CustomerRef]  # at most `customers.MAX_MATCHES`
    more: bool  # there were more matches than listed
    command: str  # what they typed it for, to show how to be exact
    rest: tuple[str, ...] = ()  # the words after the customer (a stage, a reason)


@dataclass(frozen=True)
class NoMatchResult:
    ref: str
    closest: list[str]


@dataclass(frozen=True)
class ProfileResult:
    profile: Profile


@dataclass(frozen=True)
class StageResult:
    move: StageMove
    customer: CustomerRef


@dataclass(frozen=True)
class FunnelResult:
    funnel: Funnel


@dataclass(frozen=True)
class AuditLine:
    at: datetime
    actor: str
    action: str
    channel: str | None
    customer: str | None
    detail: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class AuditResult:
    entries: list[AuditLine]
    since: datetime
    until: datetime
    limit: int


Result = (
    HelpResult
    | GreetingResult
    | UsageResult
    | NotYetResult
    | RefusedResult
    | MatchesResult
    | NoMatchResult
    | ProfileResult
    | StageResult
    | FunnelResult
    | AuditResult
)
