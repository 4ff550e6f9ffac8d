"""recordings of visits: one WebM per party, with its SHA-256

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 09:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import openvisit.db

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC = openvisit.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "recordings",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("visit_id", BigId, nullable=False),
        sa.Column("facility_id", BigId, nullable=False),
        sa.Column("party", sa.String(length=16), nullable=False),
        sa.Column("path", sa.String(length=300), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size_bytes", BigId, nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("video_codec", sa.String(length=16), nullable=False),
        sa.Column("audio_codec", sa.String(length=16), nullable=False),
        sa.Column("started_at", UTC, nullable=False),
        sa.Column("ended_at", UTC, nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.CheckConstraint(
            "party IN ('visitor', 'resident')", name=op.f("ck_recordings_party_known")
        ),
        sa.CheckConstraint(
            "size_bytes >= 0 AND duration_ms >= 0", name=op.f("ck_recordings_sizes_nonnegative")
        ),
        sa.ForeignKeyConstraint(
            ["visit_id"], ["visits.id"], name=op.f("fk_recordings_visit_id_visits")
        ),
        sa.ForeignKeyConstraint(
            ["facility_id"], ["facilities.id"], name=op.f("fk_recordings_facility_id_facilities")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recordings")),
        sa.UniqueConstraint("path", name=op.f("uq_recordings_path")),
    )
    op.create_index("ix_recordings_visit", "recordings", ["visit_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_recordings_visit", table_name="recordings")
    op.drop_table("recordings")
