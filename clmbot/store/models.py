"""The tables. Times are aware UTC (`UTCDateTime`); keys make re-imports idempotent.

Indexes follow the questions PRODUCT.md asks: look a customer up by external id, e-mail,
Slack user or name; filter segments by stage, plan, region, owner; walk one customer's
history, events and feedback in time order; score feedback by kind over a period.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    func,
    text,
)
from sqlmodel import Field, SQLModel

from clmbot.store.types import JSONDict, JSONOrNull, UTCDateTime

# Named constraints: Alembic's SQLite batch mode can only alter what it can name.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# 64-bit ids on PostgreSQL; on SQLite only the exact type INTEGER aliases the rowid.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def _customer_fk() -> Column[int]:
    return Column(
        Integer, ForeignKey("customers.id", ondelete="CASCADE"), nullable=False, index=False
    )


class Customer(SQLModel, table=True):
    __tablename__ = "customers"

    id: int | None = Field(default=None, primary_key=True)
    external_id: str = Field(sa_column=Column(String(200), nullable=False, unique=True))
    name: str = Field(sa_column=Column(String(300), nullable=False, index=True))
    email: str | None = Field(default=None, sa_column=Column(String(320), index=True))
    slack_user_id: str | None = Field(default=None, sa_column=Column(String(32), index=True))
    stage: str = Field(sa_column=Column(String(40), nullable=False, index=True))
    owner_slack_id: str | None = Field(default=None, sa_column=Column(String(32), index=True))
    plan: str | None = Field(default=None, sa_column=Column(String(100), index=True))
    region: str | None = Field(default=None, sa_column=Column(String(100), index=True))
    # Money for analytics (sums, thresholds), not accounting: a double is exact enough.
    mrr: float | None = Field(default=None, sa_column=Column(Float))
    signup_date: date | None = Field(default=None)
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSONDict, nullable=False))
    attributes: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSONDict, nullable=False)
    )
    # A language code from the import ("id", "pt-BR"); "" when not given: Slack's is asked.
    locale: str = Field(default="", sa_column=Column(String(16), nullable=False))
    timezone: str | None = Field(default=None, sa_column=Column(String(64)))
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    updated_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    forgotten_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    # The latest event and the latest NPS and CSAT answer (time and score), kept from the
    # tables by `clmbot.store.latest.refresh` and used by segments only while nothing was
    # written to those tables since: a copy for speed, never the record.
    latest_event_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    latest_nps: int | None = Field(default=None, sa_column=Column(Integer))
    latest_nps_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    latest_csat: int | None = Field(default=None, sa_column=Column(Integer))
    latest_csat_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))


# Look-ups in any case (clmbot/customers.py, migration 0009): an e-mail by equality, a name by
# equality or by a prefix range. On PostgreSQL the name's operator class compares code points
# whatever the database's collation, so that a prefix is one range of the index.
Index("ix_customers_email_key", func.lower(Customer.__table__.c.email))
Index(
    "ix_customers_name_key",
    func.lower(Customer.__table__.c.name).label("name_key"),
    postgresql_ops={"name_key": "text_pattern_ops"},
)
# The forgotten, a handful among every customer: an import asks whether there are any at all
# before it hashes each external id it does not know (clmbot.forget.forgotten_ids).
Index(
    "ix_customers_forgotten",
    Customer.__table__.c.id,
    sqlite_where=text("forgotten_at IS NOT NULL"),
    postgresql_where=text("forgotten_at IS NOT NULL"),
)
# The same name without its first letter: "did you mean" finds a name whose first letter was
# mistyped or left out by a range of this one (clmbot.customers.closest_names).
Index(
    "ix_customers_name_tail",
    func.substr(func.lower(Customer.__table__.c.name), 2).label("name_tail"),
    postgresql_ops={"name_tail": "text_pattern_ops"},
)


# How the time of a stage change is known (`StageChange.basis`).
EXACT = "exact"  # it happened then: a person, a rule, a CRM's history, `stage_since`
SIGNUP = "signup"  # a customer's first stage, dated from their signup (or first event)
IMPORTED = "import"  # only known to have happened by the import that found it


class StageChange(SQLModel, table=True):
    """One move between stages. Never rewritten by a person: a wrong move is undone by another.

    An import may learn a customer's stage without learning when they entered it. Such a row
    is dated at the import and marked `basis = "import"`, so that the funnel does not count an
    import as customers entering a stage, and a card does not claim a date it does not know.
    A later import that does know (a `stage_since` column, a CRM's stage history) replaces
    that guess; `from_stage` follows the order of the rows.
    """

    __tablename__ = "stage_history"
    __table_args__ = (
        # A move is a customer entering a stage at a time: importing a CRM's history twice
        # finds every row already there. The key also serves "this customer's history".
        UniqueConstraint(
            "customer_id", "at", "to_stage", name="uq_stage_history_customer_at_stage"
        ),
    )

    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True))
    customer_id: int = Field(sa_column=_customer_fk())
    from_stage: str | None = Field(default=None, sa_column=Column(String(40)))
    to_stage: str = Field(sa_column=Column(String(40), nullable=False, index=True))
    at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False, index=True))
    # A Slack user id, "cli:<login>", "import", "rule:<name>", or who a CRM export names.
    by: str = Field(sa_column=Column(String(100), nullable=False))
    reason: str | None = Field(default=None, sa_column=Column(Text))
    basis: str = Field(
        default=EXACT, sa_column=Column(String(10), nullable=False, server_default=EXACT)
    )
    # Extra columns of an imported stage history, kept as given; NULL when there were none.
    attributes: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONOrNull))


class Event(SQLModel, table=True):
    """Something a customer did.

    Real logs hold several events of one kind at one moment (two orders on one day), so an
    event is not identified by customer, time and kind alone. A file's `event_id` is the
    identity when it has one; otherwise `seq` numbers the rows with the same customer, time
    and kind in file order (0, 1, …), which makes re-importing the same file a no-op. Rows
    with an `event_id` have no `seq` (NULL, and NULLs never collide in a unique key).

    The key (customer, time, kind, seq) also serves "this customer's events in time order"
    without a second index, which would slow every bulk import; the `event_id` index is
    partial and costs nothing for files without one.
    """

    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint(
            "customer_id", "occurred_at", "kind", "seq", name="uq_events_customer_time_kind_seq"
        ),
        Index(
            "uq_events_kind_event_id",
            "kind",
            "event_id",
            unique=True,
            sqlite_where=text("event_id IS NOT NULL"),
            postgresql_where=text("event_id IS NOT NULL"),
        ),
    )

    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True))
    customer_id: int = Field(sa_column=_customer_fk())
    kind: str = Field(sa_column=Column(String(60), nullable=False))
    occurred_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    value: float | None = Field(default=None, sa_column=Column(Float))
    seq: int | None = Field(default=0, sa_column=Column(Integer, nullable=True))
    event_id: str | None = Field(default=None, sa_column=Column(String(200)))
    # Extra CSV columns, kept as given; NULL when the file had none.
    attributes: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONOrNull))


class Feedback(SQLModel, table=True):
    """An NPS (0-10) or CSAT (1-5) answer, from an import or a survey."""

    __tablename__ = "feedback"
    __table_args__ = (
        UniqueConstraint(
            "customer_id", "kind", "responded_at", name="uq_feedback_customer_kind_time"
        ),
        # The reports read only these columns: a period's answers of one kind in time order
        # (trends, comments), and each customer's in turn (their latest answer), without
        # touching the table (migration 0005, see clmbot/feedback/queries.py).
        Index("ix_feedback_kind_time_score", "kind", "responded_at", "score", "customer_id"),
        Index("ix_feedback_kind_customer_time", "kind", "customer_id", "responded_at", "score"),
    )

    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True))
    customer_id: int = Field(sa_column=_customer_fk())
    kind: str = Field(sa_column=Column(String(8), nullable=False))
    score: int = Field(sa_column=Column(Integer, nullable=False))
    comment: str | None = Field(default=None, sa_column=Column(Text))
    responded_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    source: str = Field(sa_column=Column(String(20), nullable=False))
    attributes: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONOrNull))


FEEDBACK_SCALES: dict[str, tuple[int, int]] = {"nps": (0, 10), "csat": (1, 5)}


class AuditEntry(SQLModel, table=True):
    """Every change made through a front door (Slack, CLI): who, what, when, from where.
    Imports are not here; their changes carry `by = "import"` in the stage history."""

    __tablename__ = "audit_log"

    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True))
    at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False, index=True))
    # A Slack user id, or "cli:<login>".
    actor: str = Field(sa_column=Column(String(100), nullable=False, index=True))
    action: str = Field(sa_column=Column(String(40), nullable=False))
    customer_id: int | None = Field(
        default=None,
        sa_column=Column(
            Integer, ForeignKey("customers.id", ondelete="SET NULL"), nullable=True, index=True
        ),
    )
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONDict, nullable=False))
    # Slack channel id the command came from, "cli", or the DM channel.
    channel: str | None = Field(default=None, sa_column=Column(String(40)))


class ProcessedEvent(SQLModel, table=True):
    """Slack events already handled, by their event id: Slack re-sends an event it thinks was
    missed (X-Slack-Retry-Num), and Bolt does not filter those out."""

    __tablename__ = "slack_events"

    event_id: str = Field(sa_column=Column(String(64), primary_key=True))
    received_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False, index=True))


class SeenRequest(SQLModel, table=True):
    """Signed Slack requests already taken, by a hash of their signature: a request replayed
    within the five minutes its timestamp is valid for is refused, by whichever copy of the
    bot it reaches."""

    __tablename__ = "slack_requests"

    signature_hash: str = Field(sa_column=Column(String(64), primary_key=True))
    received_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False, index=True))


class DataVersion(SQLModel, table=True):
    """How many commits have changed a table: the reports kept per version (the funnel, NPS,
    segments) are worked out again once a table they read has a new count. Written by
    `clmbot.store.versions`, at commit; one more row, `risk.kept-events`, is a random mark
    of this database, which the risk pass's kept events are checked against."""

    __tablename__ = "data_versions"

    name: str = Field(sa_column=Column(String(40), primary_key=True))
    version: int = Field(
        default=0, sa_column=Column(BigInteger, nullable=False, server_default="0")
    )


class SavedSegment(SQLModel, table=True):
    """A segment expression kept under a name (`/clm segment save vip plan:pro mrr>500`), so
    that the team says `vip` instead of retyping the filters.

    `name` is stored lower-cased, so that `VIP` and `vip` are one name. The expression is kept
    as typed and parsed again each time it is used: the stages it names may have changed in
    `clmbot.toml` since, and the saved text is what a person recognises.
    """

    __tablename__ = "saved_segments"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_column=Column(String(60), nullable=False, unique=True))
    expression: str = Field(sa_column=Column(Text, nullable=False))
    # A Slack user id or "cli:<login>": who saved it first.
    created_by: str = Field(sa_column=Column(String(100), nullable=False))
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    updated_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))


# What a survey is doing (`Survey.status`). Queued → sending (claimed by one sender) → sent →
# answered, or expired; cancelled when the customer opted out or left before it went;
# failed when Slack refused it for good (no such user, a DM that cannot be opened).
QUEUED, SENDING, SENT, ANSWERED, EXPIRED, CANCELLED, FAILED = (
    "queued",
    "sending",
    "sent",
    "answered",
    "expired",
    "cancelled",
    "failed",
)
# A customer has at most one of these at a time (a partial unique index).
PENDING = (QUEUED, SENDING, SENT)


class SurveyRun(SQLModel, table=True):
    """One `/clm survey nps <who>`: what was asked for, by whom, and what was skipped and why.
    `survey status` counts its surveys by status."""

    __tablename__ = "survey_runs"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(sa_column=Column(String(8), nullable=False))
    # Who was meant, as typed (a segment, filters, a customer).
    target: str = Field(sa_column=Column(Text, nullable=False))
    created_by: str = Field(sa_column=Column(String(100), nullable=False))
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False, index=True))
    queued: int = Field(sa_column=Column(Integer, nullable=False))
    # {"cooldown": 12, "no_slack_user": 3, …}
    skipped: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSONDict, nullable=False)
    )


class Survey(SQLModel, table=True):
    """One question to one customer, from queued to answered: every step is a column here, so
    that a sender that dies anywhere leaves a row that says what is left to do.

    The sender claims (`sending`, `claimed_at`), sends, then marks `sent`. A claim older than
    the lease was left by a sender that died: before sending again, the next one looks in the
    customer's DM for a message whose metadata carries this survey's id.
    """

    __tablename__ = "surveys"
    __table_args__ = (
        Index(
            "uq_surveys_pending_customer",
            "customer_id",
            unique=True,
            sqlite_where=text("status IN ('queued', 'sending', 'sent')"),
            postgresql_where=text("status IN ('queued', 'sending', 'sent')"),
        ),
        Index("ix_surveys_status_not_before", "status", "not_before"),
        Index("ix_surveys_customer_queued", "customer_id", "queued_at"),
        Index("ix_surveys_run_status", "run_id", "status"),
        # Answers the team has not seen yet: a handful among every survey ever sent.
        Index(
            "ix_surveys_team_post_due",
            "team_post_due",
            sqlite_where=text("team_post_due"),
            postgresql_where=text("team_post_due"),
        ),
        # Posts for the team taken by a sender and not yet known to be in the channel.
        Index(
            "ix_surveys_team_post_taken",
            "team_post_taken_at",
            sqlite_where=text("team_post_taken_at IS NOT NULL"),
            postgresql_where=text("team_post_taken_at IS NOT NULL"),
        ),
    )

    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True))
    run_id: int = Field(
        sa_column=Column(Integer, ForeignKey("survey_runs.id", ondelete="CASCADE"), nullable=False)
    )
    customer_id: int = Field(sa_column=_customer_fk())
    kind: str = Field(sa_column=Column(String(8), nullable=False))
    status: str = Field(sa_column=Column(String(12), nullable=False))
    queued_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    # The first moment the customer's window is open (their zone, else found at send time).
    not_before: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    claimed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    claimed_by: str | None = Field(default=None, sa_column=Column(String(80)))
    attempts: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    error: str | None = Field(default=None, sa_column=Column(String(200)))
    # The language the customer was asked in: every later text uses it.
    language: str | None = Field(default=None, sa_column=Column(String(8)))
    sent_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, index=True))
    channel_id: str | None = Field(default=None, sa_column=Column(String(40)))
    message_ts: str | None = Field(default=None, sa_column=Column(String(40)))
    reminded_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    # Where the reminder landed. `reminder_tries` > 0 with no `reminder_ts`: taken at
    # `reminded_at` and not known to be in the DM (a 5xx, a sender killed): taken again after
    # the lease, and looked for in the DM before it is posted again. 0: done, or given up.
    reminder_ts: str | None = Field(default=None, sa_column=Column(String(40)))
    reminder_tries: int = Field(
        default=0, sa_column=Column(Integer, nullable=False, server_default="0")
    )
    closed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    score: int | None = Field(default=None, sa_column=Column(Integer))
    answered_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    comment: str | None = Field(default=None, sa_column=Column(Text))
    feedback_id: int | None = Field(
        default=None,
        sa_column=Column(BigId, ForeignKey("feedback.id", ondelete="SET NULL"), nullable=True),
    )
    # The answer's post in CLMBOT_FEEDBACK_CHANNEL: due when the answer or comment changed.
    team_post_due: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default=false())
    )
    team_post_ts: str | None = Field(default=None, sa_column=Column(String(40)))
    # Taken by a sender and not yet known to be posted: taken again after the lease, and
    # looked for in the channel before it is posted again (`team_post_tries` so far).
    team_post_taken_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    team_post_tries: int = Field(
        default=0, sa_column=Column(Integer, nullable=False, server_default="0")
    )


class SurveyOptOut(SQLModel, table=True):
    """A customer who said `stop`: never surveyed again (until they are removed from here)."""

    __tablename__ = "survey_opt_outs"

    customer_id: int = Field(
        sa_column=Column(Integer, ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True)
    )
    at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))


class RiskRun(SQLModel, table=True):
    """One day's risk pass. The day is unique: whichever copy of the bot inserts it first
    runs it, and the others find it taken."""

    __tablename__ = "risk_runs"

    id: int | None = Field(default=None, primary_key=True)
    day: date = Field(sa_column=Column(Date, nullable=False, unique=True))
    as_of: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    by: str = Field(sa_column=Column(String(100), nullable=False))
    started_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    finished_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    scored: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    at_risk: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    error: str | None = Field(default=None, sa_column=Column(String(200)))
    # When its customers' scores were deleted (`[risk] keep_scores_days`); its counts stay.
    scores_pruned_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))


class RiskScore(SQLModel, table=True):
    """A customer's risk in one run, with its reasons as shown.

    No foreign keys (migration 0016): a pass writes a row per customer every day, and on
    PostgreSQL checking each row's customer and run was most of the write. The pass writes
    only customers it has just read and the run it has just claimed, and neither is ever
    deleted. Every read names the run and the customer: the primary key answers them."""

    __tablename__ = "risk_scores"

    run_id: int = Field(sa_column=Column(Integer, primary_key=True))
    customer_id: int = Field(sa_column=Column(Integer, primary_key=True))
    risk: int = Field(sa_column=Column(Integer, nullable=False))
    reasons: list[str] = Field(default_factory=list, sa_column=Column(JSONDict, nullable=False))


# Where an alert stands (`Alert.status`): raised, someone took it, someone called, or it
# went away (a stage move or a good answer); snoozed until `snoozed_until`.
OPEN, ASSIGNED, CONTACTED, RESOLVED, SNOOZED = (
    "open",
    "assigned",
    "contacted",
    "resolved",
    "snoozed",
)
HANDLED = (ASSIGNED, CONTACTED, SNOOZED)


class Digest(SQLModel, table=True):
    """A day's digest for one route: inserted before it is posted (the unique key makes one
    copy of the bot the poster), then given the message it became."""

    __tablename__ = "digests"
    __table_args__ = (UniqueConstraint("run_id", "route", name="uq_digests_run_route"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(
        sa_column=Column(Integer, ForeignKey("risk_runs.id", ondelete="CASCADE"), nullable=False)
    )
    route: str = Field(sa_column=Column(String(60), nullable=False))
    channel_id: str = Field(sa_column=Column(String(40), nullable=False))
    message_ts: str | None = Field(default=None, sa_column=Column(String(40)))
    posted_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    alerted: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))


class Alert(SQLModel, table=True):
    """A customer raised in a digest, and what the team did about it."""

    __tablename__ = "alerts"
    __table_args__ = (
        Index("ix_alerts_customer", "customer_id", "created_at"),
        Index("ix_alerts_message", "channel_id", "message_ts"),
    )

    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True))
    digest_id: int = Field(
        sa_column=Column(Integer, ForeignKey("digests.id", ondelete="CASCADE"), nullable=False)
    )
    customer_id: int = Field(sa_column=_customer_fk())
    risk: int = Field(sa_column=Column(Integer, nullable=False))
    previous_risk: int | None = Field(default=None, sa_column=Column(Integer))
    reasons: list[str] = Field(default_factory=list, sa_column=Column(JSONDict, nullable=False))
    status: str = Field(sa_column=Column(String(12), nullable=False))
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    updated_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    # A Slack user id: who took it, called, snoozed it; "rule" when it resolved itself.
    updated_by: str | None = Field(default=None, sa_column=Column(String(40)))
    snoozed_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    # The message that shows it (the digest, or a reply in its thread).
    channel_id: str | None = Field(default=None, sa_column=Column(String(40)))
    message_ts: str | None = Field(default=None, sa_column=Column(String(40)))
