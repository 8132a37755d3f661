"""indexes for commands at scale

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05

A million customers: `/clm customer` looks people up by e-mail in any case and by the
beginning of a name in any case, so both are indexed on lower(...). On PostgreSQL the name
key has the operator class text_pattern_ops, which compares code points whatever the
database's collation (a linguistic one puts "ab c" between "abc" and "abd"), so that a
prefix is one contiguous range of the index; SQLite compares code points already. See
clmbot/customers.py.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _name_key() -> sa.TextClause:
    if op.get_bind().dialect.name == "postgresql":
        return sa.text("lower(name) text_pattern_ops")
    return sa.text("lower(name)")


def upgrade() -> None:
    op.create_index("ix_customers_email_key", "customers", [sa.text("lower(email)")])
    op.create_index("ix_customers_name_key", "customers", [_name_key()])


def downgrade() -> None:
    op.drop_index("ix_customers_name_key", table_name="customers")
    op.drop_index("ix_customers_email_key", table_name="customers")
