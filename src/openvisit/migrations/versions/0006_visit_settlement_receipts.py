"""what each visit's settlement charged, credited and used of the free minutes

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 07:48:04.282453
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHECK = "ck_billing_settlements_split_of_hold"
COLUMNS = (
    "held_cents",
    "charge_cents",
    "released_cents",
    "billable_seconds",
    "credited_seconds",
    "free_seconds_used",
)


def upgrade() -> None:
    with op.batch_alter_table("billing_settlements", schema=None) as batch_op:
        for name in COLUMNS:
            kind = sa.BigInteger() if name.endswith("_cents") else sa.Integer()
            batch_op.add_column(sa.Column(name, kind, server_default="0", nullable=False))
        batch_op.add_column(sa.Column("credits", sa.JSON(), nullable=True))
    # Settlements made before capture existed released the whole hold: say so.
    op.execute("""
        UPDATE billing_settlements SET
            held_cents = (SELECT COALESCE(SUM(e.amount_cents), 0)
                          FROM ledger_entries e JOIN ledger_accounts a ON a.id = e.account_id
                          WHERE e.transaction_id = billing_settlements.transaction_id
                            AND a.kind = 'visitor_wallet'),
            released_cents = (SELECT COALESCE(SUM(e.amount_cents), 0)
                              FROM ledger_entries e JOIN ledger_accounts a ON a.id = e.account_id
                              WHERE e.transaction_id = billing_settlements.transaction_id
                                AND a.kind = 'visitor_wallet')
        WHERE transaction_id IS NOT NULL
    """)
    if op.get_bind().dialect.name == "postgresql":
        # What was held is split exactly between the charge and what went back.
        op.execute(
            f"ALTER TABLE billing_settlements ADD CONSTRAINT {CHECK} CHECK ("
            "charge_cents >= 0 AND released_cents >= 0 "
            "AND charge_cents + released_cents = held_cents "
            "AND free_seconds_used >= 0 AND credited_seconds >= 0)"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE billing_settlements DROP CONSTRAINT {CHECK}")
    with op.batch_alter_table("billing_settlements", schema=None) as batch_op:
        batch_op.drop_column("credits")
        for name in reversed(COLUMNS):
            batch_op.drop_column(name)
