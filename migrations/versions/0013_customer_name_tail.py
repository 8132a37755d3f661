"""customer name tail

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05

"Did you mean …" found a misspelt name by ranges of the name index around each likely typo,
all within the names that begin with the letter typed first: a typo in that first letter
("Ecme", "cme" for "Acme") was never found. This indexes lower(name) without its first
letter, so that such a name is one short range too. PostgreSQL: text_pattern_ops, as
0009's name key. At a million customers the index is built in a few seconds, during which
imports and stage moves wait (commands that only read go on).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _tail() -> sa.TextClause:
    if op.get_bind().dialect.name == "postgresql":
        return sa.text("substr(lower(name), 2) text_pattern_ops")
    return sa.text("substr(lower(name), 2)")


def upgrade() -> None:
    op.create_index("ix_customers_name_tail", "customers", [_tail()])


def downgrade() -> None:
    op.drop_index("ix_customers_name_tail", table_name="customers")
