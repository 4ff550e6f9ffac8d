"""API shapes for facilities, settings, units, hours, closures and kiosks."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from openvisit.bounds import Id, Moment
from openvisit.facilities.models import (
    LOBBY_DEPOSIT_DAILY_CAP_CENTS,
    ClosureKind,
    FacilityKind,
    HousingUnit,
    KioskLocation,
)
from openvisit.facilities.units import hours_of

Count = Annotated[int, Field(ge=-1_000_000, le=1_000_000)]
Amount = Annotated[int, Field(ge=-1_000_000_000, le=1_000_000_000)]


class FacilityCreate(BaseModel):
    name: str = Field(max_length=200)
    timezone: str = Field(max_length=64)
    kind: FacilityKind
    average_daily_population: int = Field(ge=0, le=1_000_000)
    phone: str = Field(default="", max_length=40)


class FacilityPatch(BaseModel):
    name: str | None = Field(default=None, max_length=200)
    timezone: str | None = Field(default=None, max_length=64)
    kind: FacilityKind | None = None
    average_daily_population: int | None = Field(default=None, ge=0, le=1_000_000)
    phone: str | None = Field(default=None, max_length=40)


class PublicFacilityOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    timezone: str
    kind: FacilityKind


class FacilityOut(PublicFacilityOut):
    average_daily_population: int
    phone: str
    created_at: dt.datetime


class _SettingsFields(BaseModel):
    slot_step_minutes: Count
    min_notice_minutes: Count
    booking_horizon_days: Count
    weekly_remote_visits: Count
    weekly_onsite_visits: Count
    weekly_privileged_visits: Count
    visitors_per_visit: Count
    approved_visitors_per_resident: Count
    join_window_minutes: Count
    reconnect_grace_seconds: Count
    bookings_need_approval: bool
    recording_retention_days: Count
    free_minutes_per_week: Count
    onsite_visits_free: bool
    # Added by issue 10; a PUT without them sets their defaults.
    accepts_other_identity_checks: bool = Field(
        default=False,
        description="whether an identity check made by another facility counts here",
    )
    lobby_deposit_daily_cap_cents: Amount = Field(
        default=LOBBY_DEPOSIT_DAILY_CAP_CENTS,
        description="the most staff may record as lobby deposits on one local day, in cents",
    )


class SettingsBody(_SettingsFields):
    """Every facility setting; PUT replaces them all. Ranges are checked by the service."""

    visit_lengths_minutes: list[Count] = Field(max_length=20)
    remote_rate_cents_per_minute: Decimal = Field(max_digits=12)


class SettingsOut(_SettingsFields):
    visit_lengths_minutes: list[int]
    remote_rate_cents_per_minute: str = Field(description='cents per minute, e.g. "15.50"')


class UnitBody(BaseModel):
    name: str = Field(max_length=200)


class HoursWindowIn(BaseModel):
    weekday: int = Field(ge=0, le=6, description="Monday = 0")
    start: str = Field(max_length=5, description="facility-local HH:MM")
    end: str = Field(max_length=5, description="facility-local HH:MM")


class HoursBody(BaseModel):
    windows: list[HoursWindowIn] = Field(max_length=200)


class HoursWindowOut(BaseModel):
    weekday: int
    start: str
    end: str


class UnitOut(BaseModel):
    id: int
    name: str
    hours: list[HoursWindowOut]

    @classmethod
    def of(cls, unit: HousingUnit) -> UnitOut:
        hours = [
            HoursWindowOut(weekday=h.weekday, start=h.start, end=h.end) for h in hours_of(unit)
        ]
        return cls(id=unit.id, name=unit.name, hours=hours)


class ClosureCreate(BaseModel):
    kind: ClosureKind
    unit_id: Id | None = None
    starts_at: Moment = Field(description="ISO 8601 with a UTC offset")
    ends_at: Moment | None = Field(default=None, description="omit for an open-ended lockdown")
    reason: str = Field(max_length=2000)


class ClosureOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: ClosureKind
    unit_id: int | None
    starts_at: dt.datetime
    ends_at: dt.datetime | None
    lifted_at: dt.datetime | None
    reason: str
    created_at: dt.datetime


class ClosureListOut(BaseModel):
    current_and_upcoming: list[ClosureOut]
    past: list[ClosureOut]


class KioskCreate(BaseModel):
    name: str = Field(max_length=200)
    location: KioskLocation
    unit_id: Id | None = None


class KioskServiceBody(BaseModel):
    in_service: bool
    reason: str = Field(default="", max_length=1000)


class KioskOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    location: KioskLocation
    unit_id: int | None
    in_service: bool
    out_of_service_reason: str
    has_credential: bool
    credential_issued_at: dt.datetime | None
    created_at: dt.datetime


class KioskCredentialOut(BaseModel):
    kiosk: KioskOut
    code: str = Field(description="shown only this once")
    activation_url: str


class KioskActivateBody(BaseModel):
    code: str = Field(max_length=200)


class KioskActivatedOut(BaseModel):
    kiosk_id: int
    facility_id: int
    in_service: bool
    csrf_token: str
