"""feedback report indexes

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25

`/clm nps` and `csat` count a year of answers per request. Two covering indexes let them read
only the index: (kind, responded_at, score, customer_id) for a period's answers in time order
(the trend by month, the comments newest first), and (kind, customer_id, responded_at, score)
for each customer's answers in turn (their latest). The first replaces
ix_feedback_kind_responded_at, of which it is an extension.
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('feedback', schema=None) as batch_op:
        batch_op.drop_index('ix_feedback_kind_responded_at')
        batch_op.create_index(
            'ix_feedback_kind_time_score',
            ['kind', 'responded_at', 'score', 'customer_id'],
            unique=False,
        )
        batch_op.create_index(
            'ix_feedback_kind_customer_time',
            ['kind', 'customer_id', 'responded_at', 'score'],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table('feedback', schema=None) as batch_op:
        batch_op.drop_index('ix_feedback_kind_customer_time')
        batch_op.drop_index('ix_feedback_kind_time_score')
        batch_op.create_index(
            'ix_feedback_kind_responded_at', ['kind', 'responded_at'], unique=False
        )
