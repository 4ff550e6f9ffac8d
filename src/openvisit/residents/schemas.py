"""API shapes for residents, roster imports and the kiosk's resident session."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from openvisit.bounds import WITHIN_RANGE, Id
from openvisit.residents.kiosk_session import KioskView
from openvisit.residents.models import CustodyStatus, Resident


class ResidentIn(BaseModel):
    booking_number: str = Field(max_length=40)
    first_name: str = Field(max_length=100)
    last_name: str = Field(max_length=100)
    date_of_birth: str = Field(max_length=10, description="YYYY-MM-DD")
    unit_id: Id
    preferred_language: str = Field(default="en", max_length=16)


class ResidentPatch(BaseModel):
    booking_number: str | None = Field(default=None, max_length=40)
    first_name: str | None = Field(default=None, max_length=100)
    last_name: str | None = Field(default=None, max_length=100)
    date_of_birth: str | None = Field(default=None, max_length=10)
    unit_id: Id | None = None
    preferred_language: str | None = Field(default=None, max_length=16)


class PinIn(BaseModel):
    pin: str = Field(max_length=20)


class CustodyIn(BaseModel):
    status: CustodyStatus
    reason: str = Field(max_length=500)


class RestrictionIn(BaseModel):
    until: Annotated[AwareDatetime, WITHIN_RANGE]
    reason: str = Field(max_length=500)


class ResidentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    facility_id: int
    booking_number: str
    first_name: str
    last_name: str
    date_of_birth: dt.date
    unit_id: int | None
    unit_name: str | None = None
    custody_status: CustodyStatus
    restricted_until: dt.datetime | None
    restriction_reason: str
    preferred_language: str
    has_pin: bool
    created_at: dt.datetime
    updated_at: dt.datetime

    @classmethod
    def of(cls, resident: Resident, unit_names: dict[int, str]) -> ResidentOut:
        unit_name = unit_names.get(resident.unit_id) if resident.unit_id is not None else None
        return cls.model_validate(resident).model_copy(update={"unit_name": unit_name})


class ResidentPageOut(BaseModel):
    items: list[ResidentOut]
    total: int
    page: int
    pages: int


class RosterRowOut(BaseModel):
    line: int
    booking_number: str
    outcome: str  # created | updated | unchanged | rejected
    reason: str = ""
    changes: list[str] = []


class RosterReportOut(BaseModel):
    dry_run: bool
    applied: bool
    counts: dict[str, int]
    rows: list[RosterRowOut]


class ResidentSignInIn(BaseModel):
    booking_number: str = Field(max_length=60)
    pin: str = Field(max_length=30)


class KioskOut(BaseModel):
    id: int
    name: str
    facility_id: int
    location: str
    unit_id: int | None
    in_service: bool


class KioskResidentOut(BaseModel):
    id: int
    first_name: str
    booking_number: str


class KioskMeOut(BaseModel):
    kiosk: KioskOut
    resident: KioskResidentOut | None

    @classmethod
    def of(cls, view: KioskView) -> KioskMeOut:
        kiosk, resident = view.kiosk, view.resident
        return cls(
            kiosk=KioskOut(
                id=kiosk.id,
                name=kiosk.name,
                facility_id=kiosk.facility_id,
                location=kiosk.location.value,
                unit_id=kiosk.unit_id,
                in_service=kiosk.in_service,
            ),
            resident=KioskResidentOut(
                id=resident.id,
                first_name=resident.first_name,
                booking_number=resident.booking_number,
            )
            if resident
            else None,
        )
