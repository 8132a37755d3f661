"""risk scores pruned

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05

A risk pass writes a row per customer every day: a million customers make a million rows a
day for ever. Passes older than `[risk] keep_scores_days` lose their customers' scores and
keep their own row and counts, marked with when (clmbot/risk/retention.py), so that nothing
compares today's pass with one whose scores are gone. Additive: copies still running the
previous release never prune, and read the same rows.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import clmbot.store.types

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "risk_runs",
        sa.Column("scores_pruned_at", clmbot.store.types.UTCDateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    # In place on both (SQLite 3.35+): a batch copy of risk_runs would drop the table, and
    # the foreign keys' ON DELETE CASCADE would take every score and digest with it.
    op.drop_column("risk_runs", "scores_pruned_at")
