"""lobby deposits get a daily cap per facility; an identity check belongs to its facility

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 17:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import openvisit.db

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC = openvisit.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("facility_settings", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "accepts_other_identity_checks",
                sa.Boolean(),
                server_default=sa.false(),
                nullable=False,
            )
        )
        batch_op.add_column(
            sa.Column(
                "lobby_deposit_daily_cap_cents",
                sa.Integer(),
                server_default="250000",
                nullable=False,
            )
        )
        batch_op.create_check_constraint(
            op.f("ck_facility_settings_lobby_cap_nonnegative"),
            "lobby_deposit_daily_cap_cents >= 0",
        )
    op.create_table(
        "identity_verifications",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("visitor_id", BigId, nullable=False),
        sa.Column("facility_id", BigId, nullable=False),
        sa.Column("submission_id", BigId, nullable=True),
        sa.Column("verified_by_staff_id", BigId, nullable=True),
        sa.Column("verified_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(
            ["visitor_id"],
            ["visitors.id"],
            name=op.f("fk_identity_verifications_visitor_id_visitors"),
        ),
        sa.ForeignKeyConstraint(
            ["facility_id"],
            ["facilities.id"],
            name=op.f("fk_identity_verifications_facility_id_facilities"),
        ),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["identity_submissions.id"],
            name=op.f("fk_identity_verifications_submission_id_identity_submissions"),
        ),
        sa.ForeignKeyConstraint(
            ["verified_by_staff_id"],
            ["staff_members.id"],
            name=op.f("fk_identity_verifications_verified_by_staff_id_staff_members"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_verifications")),
        sa.UniqueConstraint(
            "visitor_id", "facility_id", name=op.f("uq_identity_verifications_visitor_id")
        ),
    )
    op.create_index(
        op.f("ix_identity_verifications_visitor_id"),
        "identity_verifications",
        ["visitor_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_identity_verifications_facility_id"),
        "identity_verifications",
        ["facility_id"],
        unique=False,
    )
    # Every check a facility verified so far becomes that facility's verification.
    op.execute(
        """
        INSERT INTO identity_verifications
            (visitor_id, facility_id, submission_id, verified_by_staff_id, verified_at)
        SELECT s.visitor_id, s.facility_id, s.id, s.reviewed_by_staff_id,
               COALESCE(s.reviewed_at, s.submitted_at)
        FROM identity_submissions s
        WHERE s.status = 'verified'
          AND s.id = (
            SELECT MAX(t.id) FROM identity_submissions t
            WHERE t.visitor_id = s.visitor_id AND t.facility_id = s.facility_id
              AND t.status = 'verified'
          )
        """
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_identity_verifications_facility_id"), table_name="identity_verifications"
    )
    op.drop_index(op.f("ix_identity_verifications_visitor_id"), table_name="identity_verifications")
    op.drop_table("identity_verifications")
    with op.batch_alter_table("facility_settings", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_facility_settings_lobby_cap_nonnegative"), type_="check")
        batch_op.drop_column("lobby_deposit_daily_cap_cents")
        batch_op.drop_column("accepts_other_identity_checks")
