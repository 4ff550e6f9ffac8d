"""visit deadlines, visit events and visit meters

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 07:17:00.270453
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import openvisit.db

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC = openvisit.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "visit_events",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("visit_id", BigId, nullable=False),
        sa.Column("at", UTC, nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("party", sa.String(length=16), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["visit_id"], ["visits.id"], name=op.f("fk_visit_events_visit_id_visits")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_visit_events")),
    )
    op.create_index("ix_visit_events_visit_at", "visit_events", ["visit_id", "at"])
    op.create_table(
        "visit_meters",
        sa.Column("visit_id", BigId, nullable=False),
        sa.Column("billable_seconds", sa.Integer(), nullable=False),
        sa.Column("intervals", sa.JSON(), nullable=False),
        sa.Column("metered_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(
            ["visit_id"], ["visits.id"], name=op.f("fk_visit_meters_visit_id_visits")
        ),
        sa.PrimaryKeyConstraint("visit_id", name=op.f("pk_visit_meters")),
    )
    with op.batch_alter_table("visits", schema=None) as batch_op:
        batch_op.add_column(sa.Column("opens_at", UTC, nullable=True))
        batch_op.add_column(sa.Column("warn_5_at", UTC, nullable=True))
        batch_op.add_column(sa.Column("warn_1_at", UTC, nullable=True))
        batch_op.add_column(
            sa.Column("warned_5", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(
            sa.Column("warned_1", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(sa.Column("reconnect_deadline_at", UTC, nullable=True))
        batch_op.add_column(sa.Column("next_deadline_at", UTC, nullable=True))
        batch_op.create_index("ix_visits_next_deadline_at", ["next_deadline_at"], unique=False)
    _backfill_deadlines()


def _backfill_deadlines() -> None:
    """Give visits booked before this revision their deadlines, so none is forgotten."""
    bind = op.get_bind()
    visits = sa.table(
        "visits",
        sa.column("id", BigId),
        sa.column("facility_id", BigId),
        sa.column("state", sa.String()),
        sa.column("starts_at", UTC),
        sa.column("ends_at", UTC),
        sa.column("opens_at", UTC),
        sa.column("warn_5_at", UTC),
        sa.column("warn_1_at", UTC),
        sa.column("next_deadline_at", UTC),
    )
    settings = sa.table(
        "facility_settings",
        sa.column("facility_id", BigId),
        sa.column("join_window_minutes", sa.Integer()),
    )
    rows = bind.execute(
        sa.select(
            visits.c.id,
            visits.c.state,
            visits.c.starts_at,
            visits.c.ends_at,
            settings.c.join_window_minutes,
        ).select_from(visits.outerjoin(settings, settings.c.facility_id == visits.c.facility_id))
    ).all()
    for visit_id, state, starts_at, ends_at, window in rows:
        opens_at = starts_at - dt.timedelta(minutes=window if window is not None else 10)
        warn_5_at = ends_at - dt.timedelta(minutes=5)
        warn_1_at = ends_at - dt.timedelta(minutes=1)
        if state == "scheduled":
            upcoming = opens_at
        elif state in ("open", "live"):
            upcoming = min(t for t in (warn_5_at, warn_1_at, ends_at) if t > starts_at)
        else:
            upcoming = None
        bind.execute(
            visits.update()
            .where(visits.c.id == visit_id)
            .values(
                opens_at=opens_at,
                warn_5_at=warn_5_at,
                warn_1_at=warn_1_at,
                next_deadline_at=upcoming,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("visits", schema=None) as batch_op:
        batch_op.drop_index("ix_visits_next_deadline_at")
        batch_op.drop_column("next_deadline_at")
        batch_op.drop_column("reconnect_deadline_at")
        batch_op.drop_column("warned_1")
        batch_op.drop_column("warned_5")
        batch_op.drop_column("warn_1_at")
        batch_op.drop_column("warn_5_at")
        batch_op.drop_column("opens_at")
    op.drop_table("visit_meters")
    op.drop_index("ix_visit_events_visit_at", table_name="visit_events")
    op.drop_table("visit_events")
