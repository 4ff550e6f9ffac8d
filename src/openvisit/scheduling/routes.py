"""Booking API for visitors, staff and kiosks."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response
from sqlalchemy.orm import Session

from openvisit import bounds
from openvisit.audit.service import AuditActor
from openvisit.clock import Clock
from openvisit.deps import (
    ClockDep,
    ClosuresFacility,
    CurrentResident,
    CurrentStaff,
    CurrentVisitor,
    DbSession,
    Id,
    SettingsDep,
    ViewedFacility,
    VisitsFacility,
)
from openvisit.errors import Code, InvalidInput
from openvisit.facilities.models import Facility
from openvisit.people.context import StaffContext
from openvisit.scheduling import presenters, service
from openvisit.scheduling.schemas import (
    AvailabilityOut,
    AvailabilityQuery,
    BookingIn,
    CancelIn,
    ClosurePreviewOut,
    RescheduleIn,
    StaffAvailabilityQuery,
    StaffBookingIn,
    StaffVisitOut,
    VisitOut,
)
from openvisit.visits.models import Visit
from openvisit.visits.service import access_visit

router = APIRouter(prefix="/api/v1", tags=["visits"])

# The facility, authorized for what the route does there.


def parse_date(value: str) -> dt.date:
    try:
        return bounds.parse_date(value)
    except ValueError:
        raise InvalidInput(
            "Enter a real date as YYYY-MM-DD.",
            code=Code.INVALID_DATE,
            fields={"date": "Enter a real date"},
        ) from None


# --- visitors ------------------------------------------------------------------------


def _availability(
    db: Session,
    clock: Clock,
    query: AvailabilityQuery,
    visitor_id: Id,
    facility_id: Id | None = None,
) -> AvailabilityOut:
    result = service.availability(
        db,
        clock,
        resident_id=query.resident_id,
        visitor_id=visitor_id,
        visit_type=query.visit_type,
        length_minutes=query.length,
        facility_id=facility_id,
    )
    return AvailabilityOut.of(result)


def _book(
    db: Session,
    clock: Clock,
    actor: AuditActor,
    body: BookingIn,
    visitor_id: Id,
    facility_id: Id | None = None,
) -> Visit:
    return service.book(
        db,
        clock,
        actor,
        resident_id=body.resident_id,
        visitor_id=visitor_id,
        visit_type=body.visit_type,
        start=body.start,
        length_minutes=body.length,
        facility_id=facility_id,
    )


@router.get("/me/availability", response_model=AvailabilityOut)
def my_availability(
    visitor: CurrentVisitor,
    db: DbSession,
    clock: ClockDep,
    query: Annotated[AvailabilityQuery, Query()],
) -> AvailabilityOut:
    """Bookable start times over the booking horizon, in the facility's time zone."""
    return _availability(db, clock, query, visitor.visitor.id)


@router.post("/me/visits", response_model=VisitOut, status_code=201)
def book_visit(
    body: BookingIn, visitor: CurrentVisitor, db: DbSession, clock: ClockDep
) -> VisitOut:
    visit = _book(db, clock, visitor.actor, body, visitor.visitor.id)
    return VisitOut.model_validate(visit)


@router.get("/me/visits", response_model=list[VisitOut])
def my_visits(visitor: CurrentVisitor, db: DbSession) -> list[VisitOut]:
    return [VisitOut.model_validate(v) for v in service.visits_for_visitor(db, visitor.visitor.id)]


@router.post("/me/visits/{visit_id}/cancel", response_model=VisitOut)
def cancel_my_visit(
    visit_id: Id, body: CancelIn, visitor: CurrentVisitor, db: DbSession, clock: ClockDep
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


@router.post("/me/visits/{visit_id}/reschedule", response_model=VisitOut)
def reschedule_my_visit(
    visit_id: Id, body: RescheduleIn, visitor: CurrentVisitor, db: DbSession, clock: ClockDep
) -> VisitOut:
    visit = access_visit(db, visitor, visit_id, for_update=True)
    new = service.reschedule(db, clock, visitor.actor, visit, start=body.start)
    return VisitOut.model_validate(new)


@router.get("/me/visits/{visit_id}/calendar.ics")
def my_visit_calendar(
    visit_id: Id, visitor: CurrentVisitor, db: DbSession, settings: SettingsDep
) -> Response:
    """The visit as an .ics file to add to a calendar."""
    visit = access_visit(db, visitor, visit_id)
    names = service.names_of(db, [visit])
    body = presenters.ics(
        visit,
        names.facilities[visit.facility_id],
        names.residents[visit.resident_id].full_name,
        settings.base_url.rstrip("/"),
    )
    return Response(
        body,
        media_type="text/calendar",
        headers={"content-disposition": f'attachment; filename="visit-{visit.reference}.ics"'},
    )


# --- staff ---------------------------------------------------------------------------


@router.get("/facilities/{facility_id}/availability", response_model=AvailabilityOut)
def staff_availability(
    facility: VisitsFacility,
    db: DbSession,
    clock: ClockDep,
    query: Annotated[StaffAvailabilityQuery, Query()],
) -> AvailabilityOut:
    return _availability(db, clock, query, query.visitor_id, facility.id)


@router.post("/facilities/{facility_id}/visits", response_model=StaffVisitOut, status_code=201)
def staff_book(
    facility: VisitsFacility,
    body: StaffBookingIn,
    staff: CurrentStaff,
    db: DbSession,
    clock: ClockDep,
) -> StaffVisitOut:
    """Book on a family's behalf: the same rules as a family booking."""
    visit = _book(db, clock, staff.actor, body, body.visitor_id, facility.id)
    return StaffVisitOut.model_validate(visit)


@router.get("/facilities/{facility_id}/schedule", response_model=list[StaffVisitOut])
def staff_schedule(
    facility: ViewedFacility,
    db: DbSession,
    date: Annotated[str, Query(max_length=10, description="YYYY-MM-DD")],
) -> list[StaffVisitOut]:
    visits = service.day_schedule(db, facility, parse_date(date))
    return [StaffVisitOut.model_validate(v) for v in visits]


@router.post("/facilities/{facility_id}/visits/{visit_id}/cancel", response_model=StaffVisitOut)
def staff_cancel(
    facility: VisitsFacility,
    visit_id: Id,
    body: CancelIn,
    staff: CurrentStaff,
    db: DbSession,
    clock: ClockDep,
    settings: SettingsDep,
) -> StaffVisitOut:
    visit = access_visit(db, facility, visit_id, for_update=True)
    service.cancel_by_staff(db, clock, settings, staff.actor, visit, reason=body.reason)
    return StaffVisitOut.model_validate(visit)


def _decide(
    db: Session,
    clock: Clock,
    staff: StaffContext,
    facility: Facility,
    visit_id: Id,
    *,
    approve: bool,
    reason: str = "",
) -> StaffVisitOut:
    visit = access_visit(db, facility, visit_id, for_update=True)
    service.decide_booking(db, clock, staff.actor, visit, approve=approve, reason=reason)
    return StaffVisitOut.model_validate(visit)


@router.post("/facilities/{facility_id}/visits/{visit_id}/approve", response_model=StaffVisitOut)
def staff_approve_booking(
    facility: VisitsFacility, visit_id: Id, staff: CurrentStaff, db: DbSession, clock: ClockDep
) -> StaffVisitOut:
    return _decide(db, clock, staff, facility, visit_id, approve=True)


@router.post("/facilities/{facility_id}/visits/{visit_id}/deny", response_model=StaffVisitOut)
def staff_deny_booking(
    facility: VisitsFacility,
    visit_id: Id,
    body: CancelIn,
    staff: CurrentStaff,
    db: DbSession,
    clock: ClockDep,
) -> StaffVisitOut:
    return _decide(db, clock, staff, facility, visit_id, approve=False, reason=body.reason)


@router.get("/facilities/{facility_id}/closure-preview", response_model=ClosurePreviewOut)
def closure_preview(
    facility: ClosuresFacility,
    db: DbSession,
    starts_at: dt.datetime,
    ends_at: dt.datetime | None = None,
    unit_id: Id | None = None,
) -> ClosurePreviewOut:
    """What a lockdown or blackout of this span would cancel, before it is confirmed."""
    if starts_at.tzinfo is None or (ends_at is not None and ends_at.tzinfo is None):
        raise InvalidInput("Give times with their time zone offset.", code=Code.INVALID_TIME)
    visits = service.visits_affected_by(
        db, facility_id=facility.id, unit_id=unit_id, starts_at=starts_at, ends_at=ends_at
    )
    return ClosurePreviewOut(
        count=len(visits), visits=[StaffVisitOut.model_validate(v) for v in visits]
    )


# --- kiosk ---------------------------------------------------------------------------


@router.get("/kiosk/visits", response_model=list[VisitOut])
def kiosk_visits(kiosk: CurrentResident, db: DbSession, clock: ClockDep) -> list[VisitOut]:
    assert kiosk.resident_id is not None  # CurrentResident guarantees a resident
    return [
        VisitOut.model_validate(v)
        for v in service.upcoming_for_resident(db, kiosk.resident_id, clock.now())
    ]
