from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import Date, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from openvisit.db import Base, enum_column, intpk


class CustodyStatus(enum.StrEnum):
    IN_CUSTODY = "in_custody"
    RELEASED = "released"
    TRANSFERRED = "transferred"


class Resident(Base):
    __tablename__ = "residents"
    __table_args__ = (UniqueConstraint("facility_id", "booking_number"),)

    id: Mapped[intpk]
    facility_id: Mapped[int] = mapped_column(ForeignKey("facilities.id"), index=True)
    booking_number: Mapped[str] = mapped_column(String(40))
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    date_of_birth: Mapped[dt.date] = mapped_column(Date)
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("housing_units.id"), index=True)
    custody_status: Mapped[CustodyStatus] = enum_column(
        CustodyStatus, default=CustodyStatus.IN_CUSTODY
    )
    restricted_until: Mapped[dt.datetime | None]
    restriction_reason: Mapped[str] = mapped_column(String(500), default="")
    preferred_language: Mapped[str] = mapped_column(String(16), default="en")
    pin_hash: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @property
    def has_pin(self) -> bool:
        return self.pin_hash is not None
