"""The booking API's shapes."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from openvisit.bounds import Id, Moment
from openvisit.scheduling.presenters import span_label
from openvisit.scheduling.rules import Slot
from openvisit.scheduling.service import SearchResult
from openvisit.visits.models import VisitType


class SlotOut(BaseModel):
    start: dt.datetime
    end: dt.datetime
    local_start: str  # ISO 8601 with the facility's offset
    label: str  # "Tue 1 Dec, 9:00 AM to 9:30 AM EST"

    @classmethod
    def of(cls, slot: Slot, tz: str) -> SlotOut:
        return cls(
            start=slot.start,
            end=slot.end,
            local_start=slot.start.astimezone(ZoneInfo(tz)).isoformat(),
            label=span_label(slot.start, slot.end, tz),
        )


class AvailabilityOut(BaseModel):
    facility_id: int
    timezone: str
    resident_id: int
    visit_type: VisitType
    length: int
    slots: list[SlotOut]

    @classmethod
    def of(cls, result: SearchResult) -> AvailabilityOut:
        tz = result.facility.timezone
        return cls(
            facility_id=result.facility.id,
            timezone=tz,
            resident_id=result.resident.id,
            visit_type=result.visit_type,
            length=result.length,
            slots=[SlotOut.of(s, tz) for s in result.slots],
        )


class AvailabilityQuery(BaseModel):
    resident_id: Id
    length: int = Field(ge=1, le=1440)
    visit_type: VisitType = VisitType.REMOTE


class StaffAvailabilityQuery(AvailabilityQuery):
    visitor_id: Id


class BookingIn(BaseModel):
    resident_id: Id
    visit_type: VisitType = VisitType.REMOTE
    start: Moment
    length: int = Field(ge=1, le=1440)


class StaffBookingIn(BookingIn):
    visitor_id: Id


class RescheduleIn(BaseModel):
    start: Moment


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
