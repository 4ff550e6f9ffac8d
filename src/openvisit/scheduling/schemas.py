from __future__ import annotations

import datetime as dt
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from openvisit.visits.models import VisitType


class SlotOut(BaseModel):
    start: dt.datetime
    end: dt.datetime
    local_start: str  # ISO 8601 with the facility's offset
    label: str  # "Tue 1 Dec, 9:00 AM to 9:30 AM EST"


class AvailabilityOut(BaseModel):
    facility_id: int
    timezone: str
    resident_id: int
    visit_type: VisitType
    length: int
    slots: list[SlotOut]


class BookingIn(BaseModel):
    resident_id: int
    visit_type: VisitType = VisitType.REMOTE
    start: dt.datetime
    length: int = Field(ge=1, le=1440)


class StaffBookingIn(BookingIn):
    visitor_id: int


class RescheduleIn(BaseModel):
    start: dt.datetime


class CancelIn(BaseModel):
    reason: str = Field(default="", max_length=500)


class VisitOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    reference: str
    facility_id: int
    resident_id: int
    visitor_id: int
    visit_type: VisitType
    state: str
    starts_at: dt.datetime
    ends_at: dt.datetime
    rate_cents_per_minute: Decimal
    recorded: bool
    participants: list[dict[str, str]]
    ended_reason: str


class StaffVisitOut(VisitOut):
    resident_kiosk_id: int
    lobby_kiosk_id: int | None


class ClosurePreviewOut(BaseModel):
    count: int
    visits: list[StaffVisitOut]
