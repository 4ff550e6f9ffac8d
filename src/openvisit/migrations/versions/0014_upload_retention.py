"""identity documents are deleted from disk once replaced or past retention: when

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01 18:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import openvisit.db

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("identity_submissions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "documents_deleted_at", openvisit.db.UTCDateTime(timezone=True), nullable=True
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("identity_submissions", schema=None) as batch_op:
        batch_op.drop_column("documents_deleted_at")
