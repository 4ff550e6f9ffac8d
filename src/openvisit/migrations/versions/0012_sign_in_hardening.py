"""sign-in hardening: weighted login failures, TOTP codes that work once

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 09:00:00.000000

Residents' PINs: a hash doesn't say how long its PIN was, so no migration can find the
short ones. A PIN that doesn't meet the new rules stops working at once instead: the
kiosk answers it like a wrong PIN and clears it (residents.kiosk_session), and staff
set a new one.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("login_attempts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("weight", sa.Integer(), server_default="1", nullable=False))
    op.create_table(
        "totp_steps",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("scope", sa.String(length=24), nullable=False),
        sa.Column(
            "account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("secret_digest", sa.String(length=64), nullable=False),
        sa.Column("last_step", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_totp_steps")),
        sa.UniqueConstraint("scope", "account_id", name=op.f("uq_totp_steps_scope")),
    )


def downgrade() -> None:
    op.drop_table("totp_steps")
    with op.batch_alter_table("login_attempts", schema=None) as batch_op:
        batch_op.drop_column("weight")
