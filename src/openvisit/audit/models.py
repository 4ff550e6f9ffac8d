from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from openvisit.db import Base, BigId


class AuditEvent(Base):
    """Append-only, hash-chained record of who did what to what, when, from where.

    Triggers refuse UPDATE and DELETE; ``hash`` covers this row and the
    previous row's hash, so an edit or a removal made behind the triggers'
    back is found by ``openvisit audit verify``.
    """

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_facility_at", "facility_id", "at"),)

    # Assigned by audit.record (last id + 1) so that the hash can cover it.
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    at: Mapped[dt.datetime]
    tag: Mapped[str] = mapped_column(String(64))
    actor_type: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[int | None] = mapped_column(BigId)
    actor_label: Mapped[str] = mapped_column(String(200))
    facility_id: Mapped[int | None] = mapped_column(ForeignKey("facilities.id"))
    subject_type: Mapped[str | None] = mapped_column(String(32))
    subject_id: Mapped[int | None] = mapped_column(BigId)
    ip: Mapped[str | None] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
