from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import JSON, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from openvisit.db import Base, enum_column, intpk


class ApprovalStatus(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    DECLINED = "declined"  # by the resident, at the kiosk
    REVOKED = "revoked"


ACTIVE_APPROVAL = (ApprovalStatus.PENDING, ApprovalStatus.APPROVED)


class Approval(Base):
    """A visitor's standing permission to visit one resident."""

    __tablename__ = "approvals"
    __table_args__ = (
        # One live request or approval per pair; history rows may repeat.
        Index(
            "uq_approvals_active_pair",
            "visitor_id",
            "resident_id",
            unique=True,
            sqlite_where=text("status IN ('pending', 'approved')"),
            postgresql_where=text("status IN ('pending', 'approved')"),
        ),
    )

    id: Mapped[intpk]
    facility_id: Mapped[int] = mapped_column(ForeignKey("facilities.id"), index=True)
    visitor_id: Mapped[int] = mapped_column(ForeignKey("visitors.id"), index=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"), index=True)
    relationship: Mapped[str] = mapped_column(String(60))
    # Children who will join visits: [{"name": ..., "date_of_birth": "YYYY-MM-DD"}]
    minors: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    status: Mapped[ApprovalStatus] = enum_column(ApprovalStatus, default=ApprovalStatus.PENDING)
    reason: Mapped[str] = mapped_column(String(500), default="")
    requested_at: Mapped[dt.datetime]
    decided_at: Mapped[dt.datetime | None]
    decided_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_members.id"))


class Block(Base):
    """A visitor barred from the whole facility, or from one resident, until a date."""

    __tablename__ = "blocks"

    id: Mapped[intpk]
    facility_id: Mapped[int] = mapped_column(ForeignKey("facilities.id"), index=True)
    visitor_id: Mapped[int] = mapped_column(ForeignKey("visitors.id"), index=True)
    resident_id: Mapped[int | None] = mapped_column(ForeignKey("residents.id"))
    reason: Mapped[str] = mapped_column(String(500))
    until: Mapped[dt.datetime | None]  # None: until lifted
    created_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_members.id"))
    created_at: Mapped[dt.datetime]
    lifted_at: Mapped[dt.datetime | None]
