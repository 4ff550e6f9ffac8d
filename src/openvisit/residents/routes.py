"""Residents: the JSON API for staff (records, PIN, custody, restriction, roster import)
and for the kiosk (the resident signed in on it)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Query, Response, UploadFile
from sqlalchemy.orm import Session

from openvisit.deps import (
    ClockDep,
    CurrentKiosk,
    CurrentStaff,
    DbSession,
    Id,
    ResidentsManagedFacility,
    ResidentsViewedFacility,
    SettingsDep,
)
from openvisit.facilities import units
from openvisit.facilities.models import Facility
from openvisit.flows import custody
from openvisit.residents import kiosk_session, roster, service
from openvisit.residents.models import CustodyStatus, Resident
from openvisit.residents.schemas import (
    CustodyIn,
    KioskMeOut,
    PinIn,
    ResidentIn,
    ResidentOut,
    ResidentPageOut,
    ResidentPatch,
    ResidentSignInIn,
    RestrictionIn,
    RosterReportOut,
)

router = APIRouter(prefix="/api/v1", tags=["residents"])

Search = Annotated[str, Query(max_length=100)]
PageNumber = Annotated[int, Query(ge=1, le=100000)]
RosterFile = Annotated[UploadFile, File(alias="roster")]
DryRun = Annotated[bool, Form()]


def _viewed_resident(facility: ResidentsViewedFacility, resident_id: Id, db: DbSession) -> Resident:
    return service.access_resident(db, facility, resident_id)


def _managed_resident(
    facility: ResidentsManagedFacility, resident_id: Id, db: DbSession
) -> Resident:
    return service.access_resident(db, facility, resident_id)


# One of the facility's residents, the facility authorized first (FastAPI runs each
# dependency once a request, so a route may also take the facility itself).
ViewedResident = Annotated[Resident, Depends(_viewed_resident)]
ManagedResident = Annotated[Resident, Depends(_managed_resident)]

BASE = "/facilities/{facility_id}/residents"
ONE = BASE + "/{resident_id}"


def _out(db: Session, facility: Facility, resident: Resident) -> ResidentOut:
    return ResidentOut.of(resident, units.unit_names(db, facility))


# --- staff ---------------------------------------------------------------------------


@router.get(BASE, response_model=ResidentPageOut)
def api_list(
    facility: ResidentsViewedFacility,
    db: DbSession,
    q: Search = "",
    status: CustodyStatus | None = None,
    page: PageNumber = 1,
) -> ResidentPageOut:
    """Residents of the facility, 50 per page; ``q`` matches booking number or name."""
    found = service.list_residents(db, facility.id, query=q, status=status, page=page)
    unit_names = units.unit_names(db, facility)
    return ResidentPageOut(
        items=[ResidentOut.of(r, unit_names) for r in found.items],
        total=found.total,
        page=found.page,
        pages=found.pages,
    )


@router.post(BASE, response_model=ResidentOut, status_code=201)
def api_create(
    facility: ResidentsManagedFacility,
    body: ResidentIn,
    staff: CurrentStaff,
    db: DbSession,
    clock: ClockDep,
) -> ResidentOut:
    resident = service.create_resident(db, clock, staff.actor, facility, **body.model_dump())
    return _out(db, facility, resident)


@router.post(BASE + "/import", response_model=RosterReportOut)
def api_import(
    facility: ResidentsManagedFacility,
    staff: CurrentStaff,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
    roster_file: RosterFile,
    dry_run: DryRun = False,
) -> dict[str, Any]:
    """Import a roster CSV (all rows or none); ``dry_run=true`` only reports."""
    data = roster_file.file.read(settings.upload_max_bytes + 1)
    report = roster.import_roster(db, settings, clock, staff.actor, facility, data, dry_run=dry_run)
    return report.to_json()


@router.get(ONE, response_model=ResidentOut)
def api_get(
    facility: ResidentsViewedFacility, resident: ViewedResident, db: DbSession
) -> ResidentOut:
    return _out(db, facility, resident)


@router.patch(ONE, response_model=ResidentOut)
def api_update(
    facility: ResidentsManagedFacility,
    resident: ManagedResident,
    body: ResidentPatch,
    staff: CurrentStaff,
    db: DbSession,
    clock: ClockDep,
) -> ResidentOut:
    service.update_resident(db, clock, staff.actor, facility, resident, **body.model_dump())
    return _out(db, facility, resident)


@router.post(ONE + "/pin", status_code=204)
def api_set_pin(
    resident: ManagedResident,
    body: PinIn,
    staff: CurrentStaff,
    db: DbSession,
    clock: ClockDep,
) -> Response:
    service.set_pin(db, clock, staff.actor, resident, body.pin)
    return Response(status_code=204)


@router.post(ONE + "/custody", response_model=ResidentOut)
def api_custody(
    facility: ResidentsManagedFacility,
    resident: ManagedResident,
    body: CustodyIn,
    staff: CurrentStaff,
    db: DbSession,
    clock: ClockDep,
    settings: SettingsDep,
) -> ResidentOut:
    custody.change_custody_status(
        db, clock, settings, staff.actor, resident, body.status, body.reason
    )
    return _out(db, facility, resident)


@router.put(ONE + "/restriction", response_model=ResidentOut)
def api_restrict(
    facility: ResidentsManagedFacility,
    resident: ManagedResident,
    body: RestrictionIn,
    staff: CurrentStaff,
    db: DbSession,
    clock: ClockDep,
) -> ResidentOut:
    service.restrict_visits(db, clock, staff.actor, resident, body.until, body.reason)
    return _out(db, facility, resident)


@router.delete(ONE + "/restriction", response_model=ResidentOut)
def api_lift(
    facility: ResidentsManagedFacility,
    resident: ManagedResident,
    staff: CurrentStaff,
    db: DbSession,
    clock: ClockDep,
) -> ResidentOut:
    service.lift_restriction(db, clock, staff.actor, resident)
    return _out(db, facility, resident)


# --- the kiosk -----------------------------------------------------------------------


@router.get("/kiosk/me", response_model=KioskMeOut, tags=["kiosk"])
def api_me(kiosk: CurrentKiosk, db: DbSession) -> KioskMeOut:
    """This kiosk, and the resident signed in on it if any."""
    return KioskMeOut.of(kiosk_session.kiosk_view(db, kiosk))


@router.post("/kiosk/resident-session", response_model=KioskMeOut, tags=["kiosk"])
def api_sign_in(
    body: ResidentSignInIn,
    kiosk: CurrentKiosk,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
) -> KioskMeOut:
    """Sign a resident in on this kiosk (booking number + PIN); no new cookie."""
    kiosk_session.resident_sign_in(
        db, settings, clock, kiosk, booking_number=body.booking_number, pin=body.pin
    )
    return KioskMeOut.of(kiosk_session.kiosk_view(db, kiosk))


@router.delete("/kiosk/resident-session", status_code=204, tags=["kiosk"])
def api_sign_out(kiosk: CurrentKiosk, db: DbSession, clock: ClockDep) -> Response:
    kiosk_session.resident_sign_out(db, clock, kiosk)
    return Response(status_code=204)
