"""risk scores without foreign keys

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06

A day's pass writes a row per customer. On PostgreSQL the two foreign keys made writing a
million of them take 10.6 s, 9 s of it the server checking each row's customer and run
(and locking each customer's row to do so); without them 1.6 s. The pass writes only
customers it has just read and the run it has just claimed, and neither customers nor
runs are ever deleted (forgetting a customer keeps the row; old runs keep theirs), so the
checks guarded nothing. The `(customer_id, run_id)` index goes too: every read names the
run and the customer, which the primary key `(run_id, customer_id)` answers; it cost
another third of the write.

On SQLite this copies the table (a batch): with 35 days kept at a million customers,
a minute or two, while writers wait. On PostgreSQL it is quick, but dropping a foreign key
locks the tables on both ends, `customers` included; `clmbot.store.migrate.upgrade` asks
for each lock 5 s at a time and starts again when one is not given, so that commands never
wait long behind it.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("risk_scores") as batch:
        batch.drop_index("ix_risk_scores_customer_run")
        batch.drop_constraint("fk_risk_scores_customer_id_customers", type_="foreignkey")
        batch.drop_constraint("fk_risk_scores_run_id_risk_runs", type_="foreignkey")


def downgrade() -> None:
    with op.batch_alter_table("risk_scores") as batch:
        batch.create_foreign_key(
            "fk_risk_scores_run_id_risk_runs",
            "risk_runs",
            ["run_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch.create_foreign_key(
            "fk_risk_scores_customer_id_customers",
            "customers",
            ["customer_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch.create_index("ix_risk_scores_customer_run", ["customer_id", "run_id"])
