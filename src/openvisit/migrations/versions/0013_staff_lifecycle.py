"""staff lifecycle: invitations by e-mail, when a member joined, when they were deactivated

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 17:50:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import openvisit.db

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("staff_members", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("joined_at", openvisit.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("deactivated_at", openvisit.db.UTCDateTime(timezone=True), nullable=True)
        )
    # Everyone who exists already chose (or was given) a password: they have joined.
    op.execute("UPDATE staff_members SET joined_at = created_at")
    op.create_table(
        "staff_invitations",
        sa.Column("id", openvisit.db.BigId, autoincrement=True, nullable=False),
        sa.Column("staff_id", openvisit.db.BigId, nullable=False),
        sa.Column("facility_id", openvisit.db.BigId, nullable=True),
        sa.Column("invited_by_staff_id", openvisit.db.BigId, nullable=True),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", openvisit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", openvisit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", openvisit.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["staff_id"],
            ["staff_members.id"],
            name=op.f("fk_staff_invitations_staff_id_staff_members"),
        ),
        sa.ForeignKeyConstraint(
            ["facility_id"],
            ["facilities.id"],
            name=op.f("fk_staff_invitations_facility_id_facilities"),
        ),
        sa.ForeignKeyConstraint(
            ["invited_by_staff_id"],
            ["staff_members.id"],
            name=op.f("fk_staff_invitations_invited_by_staff_id_staff_members"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_invitations")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_staff_invitations_token_hash")),
    )
    op.create_index(
        op.f("ix_staff_invitations_staff_id"), "staff_invitations", ["staff_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_staff_invitations_staff_id"), table_name="staff_invitations")
    op.drop_table("staff_invitations")
    with op.batch_alter_table("staff_members", schema=None) as batch_op:
        batch_op.drop_column("deactivated_at")
        batch_op.drop_column("joined_at")
