"""data versions

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05

A count per table of the commits that changed it, so that the team-wide reports (the
funnel, NPS and CSAT, segment counts, the at-risk list) are kept until a table they read
changes, by every copy of the bot alike. A table gets its row at its first counted commit.
See clmbot/store/versions.py. Additive: copies still running the previous release ignore it
(and their writes are not counted: upgrade every copy before relying on kept reports).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "data_versions",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("version", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_data_versions")),
    )


def downgrade() -> None:
    op.drop_table("data_versions")
