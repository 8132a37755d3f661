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

# Read models the services build, carried by results as they are.
from clmbot.feedback.comments import CommentPage as CommentPage
from clmbot.feedback.reports import FeedbackReport as FeedbackReport
from clmbot.feedback.reports import GroupedReport as GroupedReport
from clmbot.risk.stored import AtRiskPage as AtRiskPage
from clmbot.segments.query import CustomerRow as CustomerRow
from clmbot.segments.query import SegmentSummary as SegmentSummary
from clmbot.surveys.status import RunStatus as RunStatus

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
    # Their churn risk in the latest stored pass (None: not in one), with the reasons.
    risk: int | None = None
    risk_reasons: tuple[str, ...] = ()


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
    # The stages that end the funnel (churned): listed with the others, but no conversion
    # leads into them, and a chart shows them apart.
    terminal: tuple[str, ...] = ()
    # When these counts were worked out, when that was before `now`: a large history that
    # changes faster than the funnel can be worked out is counted again at most so often
    # (clmbot/store/cache.py), and the answer says so. None: counted for `now`.
    counted_at: datetime | None = None

    @property
    def total(self) -> int:
        return sum(s.customers for s in self.stages)


# --- files an answer comes with ---------------------------------------------------------------

ASKER = "asker"  # a DM with the person who asked: personal data (an export)
CHANNEL = "channel"  # where it was asked: aggregates only (a chart)


@dataclass(frozen=True)
class FileOut:
    """A file that goes with an answer: Slack uploads it (to `to`), the CLI writes or prints
    it. Made whole before anything is sent, so a failure sends nothing half-done."""

    filename: str
    content: bytes
    title: str
    to: str  # ASKER or CHANNEL


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
class FunnelChartResult:
    """The funnel as a picture for the channel; `funnel` for the words that go with it."""

    funnel: Funnel
    file: FileOut


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


@dataclass(frozen=True)
class SegmentResult:
    """The customers an expression selects. `expression`: as typed (a saved name, say);
    `canonical`: the filters it stands for."""

    expression: str
    canonical: str
    summary: SegmentSummary


@dataclass(frozen=True)
class SavedSegment:
    name: str
    expression: str
    count: int | None = None  # customers it selects now; None when it no longer parses
    problem: str | None = None  # why it no longer parses (a stage renamed in clmbot.toml)


@dataclass(frozen=True)
class SegmentSavedResult:
    segment: SavedSegment
    replaced: bool


@dataclass(frozen=True)
class SegmentDeletedResult:
    name: str


@dataclass(frozen=True)
class SegmentListResult:
    segments: list[SavedSegment]


@dataclass(frozen=True)
class SegmentExportResult:
    expression: str
    count: int
    file: FileOut


@dataclass(frozen=True)
class ScoreResult:
    """NPS or CSAT (`report.kind`) over a period, for everyone or a segment (`of`)."""

    report: FeedbackReport
    of: str | None = None  # the segment, as typed


@dataclass(frozen=True)
class ScoreByResult:
    report: GroupedReport
    of: str | None = None


@dataclass(frozen=True)
class ChartResult:
    """A score's trend as a picture; `report` for the words that go with it."""

    report: FeedbackReport
    file: FileOut
    of: str | None = None


@dataclass(frozen=True)
class FeedbackResult:
    """A page of comments. `of`: whose (a customer, a segment), as typed; `more`: what to
    type (or press) for the next page, None on the last."""

    page: CommentPage
    since: datetime
    now: datetime
    of: str | None = None
    detractors_first: bool = False
    more: str | None = None


# --- surveys ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SurveyQueuedResult:
    """Surveys queued (`queued` may be 0: everyone was skipped, and no run was made).
    `skipped`: (reason key from `clmbot.surveys.queue.SKIP_REASONS`, count)."""

    kind: str
    target: str
    queued: int
    skipped: tuple[tuple[str, int], ...]
    run_id: int | None
    first_send: datetime | None  # the earliest a survey goes out
    later: int  # surveys waiting for their customer's hours
    window: str  # the hours, as people read them


@dataclass(frozen=True)
class SurveyConfirmResult:
    """Many customers: asked to confirm first. `confirm`: the command that queues them."""

    kind: str
    target: str
    eligible: int
    skipped: tuple[tuple[str, int], ...]
    confirm: str


@dataclass(frozen=True)
class ForgetConfirmResult:
    """Forgetting cannot be undone: what it would erase, and the command that does it."""

    customer: CustomerRef
    confirm: str


@dataclass(frozen=True)
class ForgottenResult:
    """A customer forgotten: `external_id` as it was (only the admin who asked sees it), and
    how much besides their own fields was erased."""

    external_id: str
    comments: int
    survey_replies: int
    stage_reasons: int
    audit_entries: int


@dataclass(frozen=True)
class SurveyStatusResult:
    runs: list[RunStatus]
    total: int  # runs in all (only the latest are listed)


# --- churn risk --------------------------------------------------------------------------------


@dataclass(frozen=True)
class AtRiskResult:
    """A page of the customers at risk. `of`: whose, as typed; `more`: the words for the next
    page, None on the last."""

    page: AtRiskPage
    threshold: int
    of: str | None = None
    page_no: int = 1
    more: str | None = None


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
    | ForgetConfirmResult
    | ForgottenResult
    | FunnelResult
    | FunnelChartResult
    | AuditResult
    | SegmentResult
    | SegmentSavedResult
    | SegmentDeletedResult
    | SegmentListResult
    | SegmentExportResult
    | ScoreResult
    | ScoreByResult
    | ChartResult
    | FeedbackResult
    | SurveyQueuedResult
    | SurveyConfirmResult
    | SurveyStatusResult
    | AtRiskResult
)
