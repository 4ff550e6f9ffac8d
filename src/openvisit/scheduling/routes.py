"""Booking API for visitors, staff and kiosks; the pages live in scheduling/pages.py."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from openvisit.auth.permissions import Permission
from openvisit.deps import (
    ClockDep,
    CurrentResident,
    CurrentStaff,
    CurrentVisitor,
    DbSession,
    SettingsDep,
)
from openvisit.errors import Code, InvalidInput
from openvisit.facilities.models import Facility
from openvisit.facilities.service import access_facility
from openvisit.residents.models import Resident
from openvisit.scheduling import presenters, service
from openvisit.scheduling.pages import pages
from openvisit.scheduling.schemas import (
    AvailabilityOut,
    BookingIn,
    CancelIn,
    ClosurePreviewOut,
    RescheduleIn,
    StaffBookingIn,
    StaffVisitOut,
    VisitOut,
)
from openvisit.visits.models import VisitType
from openvisit.visits.service import access_visit, access_visit_at

api = APIRouter(prefix="/api/v1", tags=["visits"])
__all__ = ["api", "pages"]


def _availability_out(result: service.SearchResult) -> AvailabilityOut:
    tz = result.facility.timezone
    return AvailabilityOut(
        facility_id=result.facility.id,
        timezone=tz,
        resident_id=result.resident.id,
        visit_type=result.visit_type,
        length=result.length,
        slots=[presenters.slot_out(s, tz) for s in result.slots],
    )


# --- visitors ------------------------------------------------------------------------


@api.get("/me/availability", response_model=AvailabilityOut)
def my_availability(
    visitor: CurrentVisitor,
    db: DbSession,
    clock: ClockDep,
    resident_id: int,
    length: int,
    visit_type: VisitType = VisitType.REMOTE,
) -> AvailabilityOut:
    """Bookable start times over the booking horizon, in the facility's time zone."""
    return _availability_out(
        service.availability(
            db,
            clock,
            resident_id=resident_id,
            visitor_id=visitor.visitor.id,
            visit_type=visit_type,
            length_minutes=length,
        )
    )


@api.post("/me/visits", response_model=VisitOut, status_code=201)
def book_visit(
    body: BookingIn, visitor: CurrentVisitor, db: DbSession, clock: ClockDep
) -> VisitOut:
    visit = service.book(
        db,
        clock,
        visitor.actor,
        resident_id=body.resident_id,
        visitor_id=visitor.visitor.id,
        visit_type=body.visit_type,
        start=body.start,
        length_minutes=body.length,
    )
    return VisitOut.model_validate(visit)


@api.get("/me/visits", response_model=list[VisitOut])
def my_visits(visitor: CurrentVisitor, db: DbSession) -> list[VisitOut]:
    return [VisitOut.model_validate(v) for v in service.visits_for_visitor(db, visitor.visitor.id)]


@api.post("/me/visits/{visit_id}/cancel", response_model=VisitOut)
def cancel_my_visit(
    visit_id: int, body: CancelIn, visitor: CurrentVisitor, db: DbSession, clock: ClockDep
) -> VisitOut:
    visit = access_visit(db, visitor, visit_id, for_update=True)
    service.cancel(
        db,
        clock,
        visitor.actor,
        visit,
        cause="visitor",
        reason=body.reason or "Cancelled by the visitor",
    )
    return VisitOut.model_validate(visit)


@api.post("/me/visits/{visit_id}/reschedule", response_model=VisitOut)
def reschedule_my_visit(
    visit_id: int, body: RescheduleIn, visitor: CurrentVisitor, db: DbSession, clock: ClockDep
) -> VisitOut:
    visit = access_visit(db, visitor, visit_id, for_update=True)
    new = service.reschedule(db, clock, visitor.actor, visit, start=body.start)
    return VisitOut.model_validate(new)


@api.get("/me/visits/{visit_id}/calendar.ics")
def my_visit_calendar(
    visit_id: int, visitor: CurrentVisitor, db: DbSession, settings: SettingsDep
) -> Response:
    visit = access_visit(db, visitor, visit_id)
    facility = db.get(Facility, visit.facility_id)
    resident = db.get(Resident, visit.resident_id)
    assert facility is not None and resident is not None
    body = presenters.ics(visit, facility, resident.full_name, settings.base_url.rstrip("/"))
    return Response(
        body,
        media_type="text/calendar",
        headers={"content-disposition": f'attachment; filename="visit-{visit.reference}.ics"'},
    )


# --- staff ---------------------------------------------------------------------------


@api.get(
    "/facilities/{facility_id}/availability",
    response_model=AvailabilityOut,
    openapi_extra={"x-permission": Permission.MANAGE_VISITS.value},
)
def staff_availability(
    facility_id: int,
    staff: CurrentStaff,
    db: DbSession,
    clock: ClockDep,
    resident_id: int,
    visitor_id: int,
    length: int,
    visit_type: VisitType = VisitType.REMOTE,
) -> AvailabilityOut:
    access_facility(db, staff, facility_id, Permission.MANAGE_VISITS)
    return _availability_out(
        service.availability(
            db,
            clock,
            resident_id=resident_id,
            visitor_id=visitor_id,
            visit_type=visit_type,
            length_minutes=length,
            facility_id=facility_id,
        )
    )


@api.post(
    "/facilities/{facility_id}/visits",
    response_model=StaffVisitOut,
    status_code=201,
    openapi_extra={"x-permission": Permission.MANAGE_VISITS.value},
)
def staff_book(
    facility_id: int, body: StaffBookingIn, staff: CurrentStaff, db: DbSession, clock: ClockDep
) -> StaffVisitOut:
    """Book on a family's behalf: the same rules as a family booking."""
    access_facility(db, staff, facility_id, Permission.MANAGE_VISITS)
    visit = service.book(
        db,
        clock,
        staff.actor,
        resident_id=body.resident_id,
        visitor_id=body.visitor_id,
        visit_type=body.visit_type,
        start=body.start,
        length_minutes=body.length,
        facility_id=facility_id,
    )
    return StaffVisitOut.model_validate(visit)


@api.get(
    "/facilities/{facility_id}/schedule",
    response_model=list[StaffVisitOut],
    openapi_extra={"x-permission": Permission.VIEW_FACILITY.value},
)
def staff_schedule(
    facility_id: int,
    staff: CurrentStaff,
    db: DbSession,
    date: Annotated[str, Query(max_length=10, description="YYYY-MM-DD")],
) -> list[StaffVisitOut]:
    facility = access_facility(db, staff, facility_id, Permission.VIEW_FACILITY)
    return [
        StaffVisitOut.model_validate(v)
        for v in service.day_schedule(db, facility, parse_date(date))
    ]


@api.post(
    "/facilities/{facility_id}/visits/{visit_id}/cancel",
    response_model=StaffVisitOut,
    openapi_extra={"x-permission": Permission.MANAGE_VISITS.value},
)
def staff_cancel(
    facility_id: int,
    visit_id: int,
    body: CancelIn,
    staff: CurrentStaff,
    db: DbSession,
    clock: ClockDep,
    settings: SettingsDep,
) -> StaffVisitOut:
    access_facility(db, staff, facility_id, Permission.MANAGE_VISITS)
    if not body.reason.strip():
        raise InvalidInput("Enter a reason for cancelling.", fields={"reason": "Enter a reason"})
    visit = access_visit_at(db, facility_id, visit_id, for_update=True)
    service.cancel_visits(
        db, clock, settings, staff.actor, [visit], cause="staff", reason=body.reason
    )
    return StaffVisitOut.model_validate(visit)


@api.post(
    "/facilities/{facility_id}/visits/{visit_id}/approve",
    response_model=StaffVisitOut,
    openapi_extra={"x-permission": Permission.MANAGE_VISITS.value},
)
def staff_approve_booking(
    facility_id: int, visit_id: int, staff: CurrentStaff, db: DbSession, clock: ClockDep
) -> StaffVisitOut:
    access_facility(db, staff, facility_id, Permission.MANAGE_VISITS)
    visit = service.decide_booking(
        db, clock, staff.actor, facility_id=facility_id, visit_id=visit_id, approve=True
    )
    return StaffVisitOut.model_validate(visit)


@api.post(
    "/facilities/{facility_id}/visits/{visit_id}/deny",
    response_model=StaffVisitOut,
    openapi_extra={"x-permission": Permission.MANAGE_VISITS.value},
)
def staff_deny_booking(
    facility_id: int,
    visit_id: int,
    body: CancelIn,
    staff: CurrentStaff,
    db: DbSession,
    clock: ClockDep,
) -> StaffVisitOut:
    access_facility(db, staff, facility_id, Permission.MANAGE_VISITS)
    visit = service.decide_booking(
        db,
        clock,
        staff.actor,
        facility_id=facility_id,
        visit_id=visit_id,
        approve=False,
        reason=body.reason,
    )
    return StaffVisitOut.model_validate(visit)


@api.get(
    "/facilities/{facility_id}/closure-preview",
    response_model=ClosurePreviewOut,
    openapi_extra={"x-permission": Permission.MANAGE_CLOSURES.value},
)
def closure_preview(
    facility_id: int,
    staff: CurrentStaff,
    db: DbSession,
    starts_at: dt.datetime,
    ends_at: dt.datetime | None = None,
    unit_id: int | None = None,
) -> ClosurePreviewOut:
    """What a lockdown or blackout of this span would cancel, before it is confirmed."""
    access_facility(db, staff, facility_id, Permission.MANAGE_CLOSURES)
    if starts_at.tzinfo is None or (ends_at is not None and ends_at.tzinfo is None):
        raise InvalidInput("Give times with their time zone offset.", code=Code.INVALID_TIME)
    visits = service.visits_affected_by(
        db, facility_id=facility_id, unit_id=unit_id, starts_at=starts_at, ends_at=ends_at
    )
    return ClosurePreviewOut(
        count=len(visits), visits=[StaffVisitOut.model_validate(v) for v in visits]
    )


# --- kiosk ---------------------------------------------------------------------------


@api.get("/kiosk/visits", response_model=list[VisitOut])
def kiosk_visits(kiosk: CurrentResident, db: DbSession, clock: ClockDep) -> list[VisitOut]:
    assert kiosk.resident_id is not None
    return [
        VisitOut.model_validate(v)
        for v in service.upcoming_for_resident(db, kiosk.resident_id, clock.now())
    ]


def parse_date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(
            "Enter a real date as YYYY-MM-DD.",
            code=Code.INVALID_DATE,
            fields={"date": "Enter a real date"},
        ) from None
