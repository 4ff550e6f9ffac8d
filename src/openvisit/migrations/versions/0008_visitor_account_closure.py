"""visitors can close their account: when they did

Revision ID: 0008
Revises: 0006 (becomes 0007 on merge, after the recordings migration)
Create Date: 2026-11-27 09:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import openvisit.db

revision: str = "0008"
# 0007 (recordings) is being written on another branch: this must become "0007" on merge.
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("visitors", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("closed_at", openvisit.db.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("visitors", schema=None) as batch_op:
        batch_op.drop_column("closed_at")
