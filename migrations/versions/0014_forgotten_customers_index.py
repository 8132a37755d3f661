"""forgotten customers index

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05

Every import checks each external id it does not know against the forgotten customers'
hashed ids, so that an old file does not bring them back: at a million new customers,
hashing them all was a twentieth of the import. A partial index of the forgotten (a
handful, usually none) answers "is anyone forgotten at all?" with one look, and the hashing
is skipped when nobody is.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_customers_forgotten",
        "customers",
        ["id"],
        sqlite_where=sa.text("forgotten_at IS NOT NULL"),
        postgresql_where=sa.text("forgotten_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_customers_forgotten", table_name="customers")
