from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Integer,
    Numeric,
    String,
    Time,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from openvisit.db import Base, enum_column, intpk

# $2,500 a day of lobby deposits unless the facility says otherwise.
LOBBY_DEPOSIT_DAILY_CAP_CENTS = 250_000


class FacilityKind(enum.StrEnum):
    PRISON = "prison"
    JAIL = "jail"


class ClosureKind(enum.StrEnum):
    BLACKOUT = "blackout"
    LOCKDOWN = "lockdown"


class KioskLocation(enum.StrEnum):
    HOUSING = "housing"
    LOBBY = "lobby"


class Facility(Base):
    __tablename__ = "facilities"
    __table_args__ = (CheckConstraint("average_daily_population >= 0", name="adp_nonnegative"),)

    id: Mapped[intpk]
    name: Mapped[str] = mapped_column(String(120), unique=True)
    timezone: Mapped[str] = mapped_column(String(64))
    kind: Mapped[FacilityKind] = enum_column(FacilityKind)
    average_daily_population: Mapped[int] = mapped_column(Integer)
    phone: Mapped[str] = mapped_column(String(40), default="")
    created_at: Mapped[dt.datetime]

    settings: Mapped[FacilitySettings] = relationship(back_populates="facility", uselist=False)


class FacilitySettings(Base):
    """One row per facility; every column has the default of DESIGN §3."""

    __tablename__ = "facility_settings"
    __table_args__ = (
        CheckConstraint("slot_step_minutes > 0", name="slot_step_positive"),
        CheckConstraint("min_notice_minutes >= 0", name="notice_nonnegative"),
        CheckConstraint("booking_horizon_days > 0", name="horizon_positive"),
        CheckConstraint("remote_rate_cents_per_minute >= 0", name="rate_nonnegative"),
        CheckConstraint("lobby_deposit_daily_cap_cents >= 0", name="lobby_cap_nonnegative"),
    )

    facility_id: Mapped[int] = mapped_column(ForeignKey("facilities.id"), primary_key=True)
    visit_lengths_minutes: Mapped[list[int]] = mapped_column(JSON, default=lambda: [20, 30])
    slot_step_minutes: Mapped[int] = mapped_column(Integer, default=10)
    min_notice_minutes: Mapped[int] = mapped_column(Integer, default=12 * 60)
    booking_horizon_days: Mapped[int] = mapped_column(Integer, default=14)
    weekly_remote_visits: Mapped[int] = mapped_column(Integer, default=3)
    weekly_onsite_visits: Mapped[int] = mapped_column(Integer, default=2)
    weekly_privileged_visits: Mapped[int] = mapped_column(Integer, default=10)
    visitors_per_visit: Mapped[int] = mapped_column(Integer, default=3)
    approved_visitors_per_resident: Mapped[int] = mapped_column(Integer, default=10)
    join_window_minutes: Mapped[int] = mapped_column(Integer, default=10)
    reconnect_grace_seconds: Mapped[int] = mapped_column(Integer, default=90)
    bookings_need_approval: Mapped[bool] = mapped_column(Boolean, default=False)
    recording_retention_days: Mapped[int] = mapped_column(Integer, default=90)
    free_minutes_per_week: Mapped[int] = mapped_column(Integer, default=0)
    onsite_visits_free: Mapped[bool] = mapped_column(Boolean, default=True)
    remote_rate_cents_per_minute: Mapped[Decimal] = mapped_column(
        Numeric(8, 2), default=Decimal("15")
    )
    # Whether an identity check made by another facility counts here (issue 10, item 7):
    # by default only this facility's own checks do.
    accepts_other_identity_checks: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    # The most that staff may record as cash or money orders at the lobby on one
    # facility-local day, all families together (issue 10, item 2).
    lobby_deposit_daily_cap_cents: Mapped[int] = mapped_column(
        Integer,
        default=LOBBY_DEPOSIT_DAILY_CAP_CENTS,
        server_default=str(LOBBY_DEPOSIT_DAILY_CAP_CENTS),
    )

    facility: Mapped[Facility] = relationship(back_populates="settings")


class HousingUnit(Base):
    __tablename__ = "housing_units"
    __table_args__ = (UniqueConstraint("facility_id", "name"),)

    id: Mapped[intpk]
    facility_id: Mapped[int] = mapped_column(ForeignKey("facilities.id"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[dt.datetime]

    hours: Mapped[list[VisitingHours]] = relationship(
        back_populates="unit",
        cascade="all, delete-orphan",
        order_by="(VisitingHours.weekday, VisitingHours.start_time)",
    )


class VisitingHours(Base):
    """A weekly window (facility-local wall-clock time) when a unit may visit."""

    __tablename__ = "visiting_hours"
    __table_args__ = (
        CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday_range"),
        CheckConstraint("end_time > start_time", name="end_after_start"),
    )

    id: Mapped[intpk]
    unit_id: Mapped[int] = mapped_column(ForeignKey("housing_units.id"), index=True)
    weekday: Mapped[int] = mapped_column(Integer)  # Monday = 0
    start_time: Mapped[dt.time] = mapped_column(Time)
    end_time: Mapped[dt.time] = mapped_column(Time)

    unit: Mapped[HousingUnit] = relationship(back_populates="hours")


class Closure(Base):
    """A blackout (planned) or lockdown (unplanned) of a facility or one unit."""

    __tablename__ = "closures"
    __table_args__ = (
        CheckConstraint("ends_at IS NULL OR ends_at > starts_at", name="ends_after_start"),
    )

    id: Mapped[intpk]
    facility_id: Mapped[int] = mapped_column(ForeignKey("facilities.id"), index=True)
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("housing_units.id"))
    kind: Mapped[ClosureKind] = enum_column(ClosureKind)
    starts_at: Mapped[dt.datetime]
    ends_at: Mapped[dt.datetime | None]  # an open lockdown has no end until lifted
    reason: Mapped[str] = mapped_column(String(500))
    created_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_members.id"))
    created_at: Mapped[dt.datetime]
    lifted_at: Mapped[dt.datetime | None]


class Kiosk(Base):
    __tablename__ = "kiosks"
    __table_args__ = (
        UniqueConstraint("facility_id", "name"),
        CheckConstraint(
            "(location = 'housing' AND unit_id IS NOT NULL) OR "
            "(location = 'lobby' AND unit_id IS NULL)",
            name="unit_matches_location",
        ),
    )

    id: Mapped[intpk]
    facility_id: Mapped[int] = mapped_column(ForeignKey("facilities.id"), index=True)
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("housing_units.id"))
    name: Mapped[str] = mapped_column(String(80))
    location: Mapped[KioskLocation] = enum_column(KioskLocation)
    in_service: Mapped[bool] = mapped_column(Boolean, default=True)
    out_of_service_reason: Mapped[str] = mapped_column(String(300), default="")
    # sha256 of the device credential; the credential itself is shown once.
    credential_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    credential_issued_at: Mapped[dt.datetime | None]
    # When a device activated with the credential: a code works once.
    credential_used_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime]

    @property
    def has_credential(self) -> bool:
        return self.credential_hash is not None
