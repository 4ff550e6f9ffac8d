"""the media server's per-party, per-minute quality measurements (fair-quality credits)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 17:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import openvisit.db

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC = openvisit.db.UTCDateTime(timezone=True)
_COUNTS = (
    "video_frames",
    "frozen_ms",
    "packets_expected",
    "packets_lost",
    "viewer_packets_expected",
    "viewer_packets_lost",
    "viewer_jitter_ms",
)


def upgrade() -> None:
    op.create_table(
        "visit_media_minutes",
        sa.Column("visit_id", BigId, nullable=False),
        sa.Column("party", sa.String(length=16), nullable=False),
        sa.Column("minute", sa.Integer(), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in _COUNTS),
        sa.Column("measured_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(
            ["visit_id"], ["visits.id"], name=op.f("fk_visit_media_minutes_visit_id_visits")
        ),
        sa.PrimaryKeyConstraint("visit_id", "party", "minute", name=op.f("pk_visit_media_minutes")),
    )


def downgrade() -> None:
    op.drop_table("visit_media_minutes")
