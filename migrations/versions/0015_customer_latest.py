"""customer latest event and answers

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05

Each customer's latest event and latest NPS and CSAT answer, kept on their row for segments
(`clmbot.store.latest`): `inactive>60d` and `nps<7` probed an index once per customer, half a
second per segment at 100,000 customers on PostgreSQL. The columns start empty and are not
used until the bot's first refresh has filled them (a few seconds at a million customers),
so this migration itself only adds nullable columns: instant on both databases.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import clmbot.store.types

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = clmbot.store.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("latest_event_at", _TIME, nullable=True))
        batch.add_column(sa.Column("latest_nps", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("latest_nps_at", _TIME, nullable=True))
        batch.add_column(sa.Column("latest_csat", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("latest_csat_at", _TIME, nullable=True))


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite 3.35 has it): a batch would copy the table and lose the
    # expression indexes of 0009 and 0013.
    for name in ("latest_csat_at", "latest_csat", "latest_nps_at", "latest_nps", "latest_event_at"):
        op.execute(sa.text(f"ALTER TABLE customers DROP COLUMN {name}"))
    # The counts of what was kept, which would otherwise claim columns that are gone.
    op.execute(sa.text("DELETE FROM data_versions WHERE name LIKE 'kept:%'"))
