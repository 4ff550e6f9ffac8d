"""Facilities, settings, housing units and hours, closures and kiosks: the JSON API,
and the kiosk device's activation."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from openvisit.auth.cookies import KIOSK_COOKIE, set_session_cookie
from openvisit.auth.permissions import Permission
from openvisit.config import Settings
from openvisit.deps import (
    ClockDep,
    ClosuresFacility,
    CurrentStaff,
    DbSession,
    Id,
    ManagedFacility,
    SettingsDep,
    StaffWith,
    ViewedFacility,
    client_ip,
)
from openvisit.facilities import closures, kiosks, service, units
from openvisit.facilities.models import Closure, Facility, HousingUnit, Kiosk
from openvisit.facilities.schemas import (
    ClosureCreate,
    ClosureListOut,
    ClosureOut,
    FacilityCreate,
    FacilityOut,
    FacilityPatch,
    HoursBody,
    KioskActivateBody,
    KioskActivatedOut,
    KioskCreate,
    KioskCredentialOut,
    KioskOut,
    KioskServiceBody,
    PublicFacilityOut,
    SettingsBody,
    SettingsOut,
    UnitBody,
    UnitOut,
)
from openvisit.facilities.settings import facility_settings, settings_data, update_settings
from openvisit.flows import closures as closure_flow
from openvisit.flows import housing
from openvisit.people.context import StaffContext

router = APIRouter(prefix="/api/v1", tags=["facilities"])

PlatformAdmin = Annotated[StaffContext, StaffWith(Permission.MANAGE_PLATFORM)]


def _unit(facility: ManagedFacility, unit_id: Id, db: DbSession) -> HousingUnit:
    return units.get_unit(db, facility, unit_id)


def _kiosk(facility: ManagedFacility, kiosk_id: Id, db: DbSession) -> Kiosk:
    return kiosks.get_kiosk(db, facility, kiosk_id)


def _closure(facility: ClosuresFacility, closure_id: Id, db: DbSession) -> Closure:
    return closures.get_closure(db, facility, closure_id)


# One of the facility's units, kiosks or closures, the facility authorized first (FastAPI
# runs each dependency once a request, so a route may also take the facility itself).
ManagedUnit = Annotated[HousingUnit, Depends(_unit)]
ManagedKiosk = Annotated[Kiosk, Depends(_kiosk)]
ManagedClosure = Annotated[Closure, Depends(_closure)]


def kiosk_session_seconds(settings: Settings) -> int:
    return settings.kiosk_session_days * 24 * 3600


# --- facilities ----------------------------------------------------------------------


@router.get("/public/facilities", response_model=list[PublicFacilityOut])
def api_public_facilities(db: DbSession) -> list[Facility]:
    """Every facility, for visitors choosing where their loved one is. No sign-in needed."""
    return service.list_public_facilities(db)


@router.get("/facilities", response_model=list[FacilityOut])
def api_list_facilities(staff: CurrentStaff, db: DbSession) -> list[Facility]:
    return service.list_facilities(db, staff)


@router.post("/facilities", response_model=FacilityOut, status_code=201)
def api_create_facility(
    body: FacilityCreate, staff: PlatformAdmin, db: DbSession, clock: ClockDep
) -> Facility:
    return service.create_facility(
        db,
        clock,
        staff.actor,
        name=body.name,
        timezone=body.timezone,
        kind=body.kind.value,
        average_daily_population=body.average_daily_population,
        phone=body.phone,
    )


@router.get("/facilities/{facility_id}", response_model=FacilityOut)
def api_get_facility(facility: ViewedFacility) -> Facility:
    return facility


@router.patch("/facilities/{facility_id}", response_model=FacilityOut)
def api_update_facility(
    facility: ManagedFacility,
    body: FacilityPatch,
    staff: CurrentStaff,
    db: DbSession,
    clock: ClockDep,
) -> Facility:
    return service.update_facility(
        db,
        clock,
        staff.actor,
        facility,
        name=body.name,
        timezone=body.timezone,
        kind=body.kind.value if body.kind else None,
        average_daily_population=body.average_daily_population,
        phone=body.phone,
    )


# --- settings ------------------------------------------------------------------------


@router.get("/facilities/{facility_id}/settings", response_model=SettingsOut)
def api_get_settings(facility: ViewedFacility, db: DbSession) -> SettingsOut:
    return SettingsOut(**settings_data(facility_settings(db, facility)))


@router.put("/facilities/{facility_id}/settings", response_model=SettingsOut)
def api_put_settings(
    facility: ManagedFacility,
    body: SettingsBody,
    staff: CurrentStaff,
    db: DbSession,
    clock: ClockDep,
) -> SettingsOut:
    row = update_settings(db, clock, staff.actor, facility, body)
    return SettingsOut(**settings_data(row))


# --- units and hours -----------------------------------------------------------------


@router.get("/facilities/{facility_id}/units", response_model=list[UnitOut])
def api_list_units(facility: ViewedFacility, db: DbSession) -> list[UnitOut]:
    return [UnitOut.of(u) for u in units.list_units(db, facility)]


@router.post("/facilities/{facility_id}/units", response_model=UnitOut, status_code=201)
def api_create_unit(
    facility: ManagedFacility, body: UnitBody, staff: CurrentStaff, db: DbSession, clock: ClockDep
) -> UnitOut:
    return UnitOut.of(units.create_unit(db, clock, staff.actor, facility, name=body.name))


@router.patch("/facilities/{facility_id}/units/{unit_id}", response_model=UnitOut)
def api_rename_unit(
    facility: ManagedFacility,
    unit: ManagedUnit,
    body: UnitBody,
    staff: CurrentStaff,
    db: DbSession,
    clock: ClockDep,
) -> UnitOut:
    return UnitOut.of(units.rename_unit(db, clock, staff.actor, facility, unit, name=body.name))


@router.delete("/facilities/{facility_id}/units/{unit_id}", status_code=204)
def api_delete_unit(
    unit: ManagedUnit,
    staff: CurrentStaff,
    db: DbSession,
    clock: ClockDep,
) -> None:
    housing.delete_unit(db, clock, staff.actor, unit)


@router.put("/facilities/{facility_id}/units/{unit_id}/hours", response_model=UnitOut)
def api_replace_hours(
    unit: ManagedUnit,
    body: HoursBody,
    staff: CurrentStaff,
    db: DbSession,
    clock: ClockDep,
) -> UnitOut:
    """Replace the unit's weekly visiting hours (facility-local times) all at once."""
    windows = [units.HoursWindow(w.weekday, w.start, w.end) for w in body.windows]
    return UnitOut.of(units.replace_hours(db, clock, staff.actor, unit, windows))


# --- closures ------------------------------------------------------------------------


@router.get("/facilities/{facility_id}/closures", response_model=ClosureListOut)
def api_list_closures(facility: ClosuresFacility, db: DbSession, clock: ClockDep) -> ClosureListOut:
    lists = closures.list_closures(db, clock, facility)
    return ClosureListOut(
        current_and_upcoming=[ClosureOut.model_validate(c) for c in lists.current_and_upcoming],
        past=[ClosureOut.model_validate(c) for c in lists.past],
    )


@router.post("/facilities/{facility_id}/closures", response_model=ClosureOut, status_code=201)
def api_create_closure(
    facility: ClosuresFacility,
    body: ClosureCreate,
    staff: CurrentStaff,
    db: DbSession,
    clock: ClockDep,
    settings: SettingsDep,
) -> Closure:
    """Record a lockdown or blackout; the visits it covers are cancelled and the families
    told (see GET .../closure-preview to count them first)."""
    new = closures.NewClosure(
        body.kind.value, body.starts_at, body.ends_at, body.reason, body.unit_id
    )
    closure, _cancelled = closure_flow.declare_closure(
        db, clock, settings, staff.actor, facility, new, staff_id=staff.member.id
    )
    return closure


@router.post("/facilities/{facility_id}/closures/{closure_id}/lift", response_model=ClosureOut)
def api_lift_closure(
    closure: ManagedClosure,
    staff: CurrentStaff,
    db: DbSession,
    clock: ClockDep,
) -> Closure:
    return closures.lift_lockdown(db, clock, staff.actor, closure)


# --- kiosks --------------------------------------------------------------------------


@router.get("/facilities/{facility_id}/kiosks", response_model=list[KioskOut])
def api_list_kiosks(facility: ManagedFacility, db: DbSession) -> list[KioskOut]:
    return [KioskOut.model_validate(k) for k in kiosks.list_kiosks(db, facility)]


@router.post("/facilities/{facility_id}/kiosks", response_model=KioskOut, status_code=201)
def api_create_kiosk(
    facility: ManagedFacility,
    body: KioskCreate,
    staff: CurrentStaff,
    db: DbSession,
    clock: ClockDep,
) -> KioskOut:
    kiosk = kiosks.create_kiosk(
        db,
        clock,
        staff.actor,
        facility,
        name=body.name,
        location=body.location.value,
        unit_id=body.unit_id,
    )
    return KioskOut.model_validate(kiosk)


@router.put("/facilities/{facility_id}/kiosks/{kiosk_id}/service", response_model=KioskOut)
def api_kiosk_service(
    kiosk: ManagedKiosk,
    body: KioskServiceBody,
    staff: CurrentStaff,
    db: DbSession,
    clock: ClockDep,
) -> KioskOut:
    kiosks.set_kiosk_service(
        db, clock, staff.actor, kiosk, in_service=body.in_service, reason=body.reason
    )
    return KioskOut.model_validate(kiosk)


@router.post(
    "/facilities/{facility_id}/kiosks/{kiosk_id}/credential",
    response_model=KioskCredentialOut,
    status_code=201,
)
def api_issue_credential(
    kiosk: ManagedKiosk,
    staff: CurrentStaff,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
    response: Response,
) -> KioskCredentialOut:
    """A new device credential (replacing any earlier one). The code is shown only once."""
    issued = kiosks.issue_kiosk_credential(db, settings, clock, staff.actor, kiosk)
    response.headers["Cache-Control"] = "no-store"
    return KioskCredentialOut(
        kiosk=KioskOut.model_validate(issued.kiosk),
        code=issued.token,
        activation_url=issued.activation_url,
    )


@router.delete("/facilities/{facility_id}/kiosks/{kiosk_id}/credential", status_code=204)
def api_revoke_credential(
    kiosk: ManagedKiosk,
    staff: CurrentStaff,
    db: DbSession,
    clock: ClockDep,
) -> None:
    kiosks.revoke_kiosk_credential(db, clock, staff.actor, kiosk)


@router.post("/kiosk/activate", response_model=KioskActivatedOut, tags=["kiosk"])
def api_activate(
    body: KioskActivateBody,
    request: Request,
    response: Response,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
) -> KioskActivatedOut:
    """Activate this device as a kiosk with the code an administrator issued."""
    done = kiosks.activate_kiosk(
        db,
        settings,
        clock,
        code=body.code,
        ip=client_ip(request),
        user_agent=request.headers.get("user-agent", ""),
    )
    csrf = set_session_cookie(
        response, settings, KIOSK_COOKIE, done.session.token, kiosk_session_seconds(settings)
    )
    return KioskActivatedOut(
        kiosk_id=done.kiosk.id,
        facility_id=done.kiosk.facility_id,
        in_service=done.kiosk.in_service,
        csrf_token=csrf,
    )
