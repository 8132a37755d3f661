"""slack posts in doubt

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05

A survey's reminder and the answer's post for the team were taken before they were sent
and forgotten on any failure: a 5xx after which Slack had not posted lost the reminder, and
one after which it had posted doubled the team's post. Now each stays "in doubt" until
Slack's answer says where it landed, is taken again after the lease, and is looked for
(by its metadata) before it is posted again. Additive, with defaults: surveys reminded
before the upgrade count as done.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import clmbot.store.types

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("surveys", sa.Column("reminder_ts", sa.String(length=40), nullable=True))
    op.add_column(
        "surveys",
        sa.Column("reminder_tries", sa.Integer(), server_default="0", nullable=False),
    )
    op.add_column(
        "surveys",
        sa.Column(
            "team_post_taken_at", clmbot.store.types.UTCDateTime(timezone=True), nullable=True
        ),
    )
    op.add_column(
        "surveys",
        sa.Column("team_post_tries", sa.Integer(), server_default="0", nullable=False),
    )
    op.create_index(
        "ix_surveys_team_post_taken",
        "surveys",
        ["team_post_taken_at"],
        sqlite_where=sa.text("team_post_taken_at IS NOT NULL"),
        postgresql_where=sa.text("team_post_taken_at IS NOT NULL"),
    )


def downgrade() -> None:
    # In place, as 0011: a batch copy of surveys would drop the table under its children.
    op.drop_index("ix_surveys_team_post_taken", table_name="surveys")
    for column in ("team_post_tries", "team_post_taken_at", "reminder_tries", "reminder_ts"):
        op.drop_column("surveys", column)
