"""Facilities, settings, housing units and hours, closures and kiosks: API and staff pages."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from openvisit.auth.permissions import Permission
from openvisit.deps import ClockDep, CurrentStaff, DbSession, SettingsDep
from openvisit.errors import Code, DomainError, InvalidInput
from openvisit.facilities import service
from openvisit.facilities.models import Closure, Facility, FacilitySettings, HousingUnit, Kiosk
from openvisit.facilities.schemas import (
    ClosureCreate,
    ClosureListOut,
    ClosureOut,
    FacilityCreate,
    FacilityOut,
    FacilityPatch,
    HoursBody,
    HoursWindowOut,
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
from openvisit.flows import closures
from openvisit.people.context import StaffContext
from openvisit.scheduling import service as scheduling
from openvisit.web.render import flash_redirect, form_error, render

api = APIRouter(prefix="/api/v1", tags=["facilities"])
pages = APIRouter(include_in_schema=False)


def _perm(permission: Permission) -> dict[str, Any]:
    return {"x-permission": permission.value}


def _settings_out(row: FacilitySettings) -> SettingsOut:
    return SettingsOut(**service.settings_data(row))


def _unit_out(unit: HousingUnit) -> UnitOut:
    return UnitOut(
        id=unit.id,
        name=unit.name,
        hours=[
            HoursWindowOut(
                weekday=h.weekday,
                start=h.start_time.strftime("%H:%M"),
                end=h.end_time.strftime("%H:%M"),
            )
            for h in unit.hours
        ],
    )


def _kiosk_out(kiosk: Kiosk) -> KioskOut:
    return KioskOut(
        id=kiosk.id,
        name=kiosk.name,
        location=kiosk.location,
        unit_id=kiosk.unit_id,
        in_service=kiosk.in_service,
        out_of_service_reason=kiosk.out_of_service_reason,
        has_credential=kiosk.credential_hash is not None,
        credential_issued_at=kiosk.credential_issued_at,
        created_at=kiosk.created_at,
    )


# --- facilities API ------------------------------------------------------------------


@api.get("/public/facilities", response_model=list[PublicFacilityOut])
def api_public_facilities(db: DbSession) -> list[Facility]:
    """Every facility, for visitors choosing where their loved one is. No sign-in needed."""
    return service.list_public_facilities(db)


@api.get("/facilities", response_model=list[FacilityOut])
def api_list_facilities(staff: CurrentStaff, db: DbSession) -> list[Facility]:
    return service.list_facilities(db, staff)


@api.post(
    "/facilities",
    response_model=FacilityOut,
    status_code=201,
    openapi_extra=_perm(Permission.MANAGE_PLATFORM),
)
def api_create_facility(
    body: FacilityCreate, staff: CurrentStaff, db: DbSession, clock: ClockDep
) -> Facility:
    service.access_platform(staff)
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


@api.get(
    "/facilities/{facility_id}",
    response_model=FacilityOut,
    openapi_extra=_perm(Permission.VIEW_FACILITY),
)
def api_get_facility(facility_id: int, staff: CurrentStaff, db: DbSession) -> Facility:
    return service.access_facility(db, staff, facility_id, Permission.VIEW_FACILITY)


@api.patch(
    "/facilities/{facility_id}",
    response_model=FacilityOut,
    openapi_extra=_perm(Permission.MANAGE_FACILITY),
)
def api_update_facility(
    facility_id: int, body: FacilityPatch, staff: CurrentStaff, db: DbSession, clock: ClockDep
) -> Facility:
    facility = service.access_facility(db, staff, facility_id, Permission.MANAGE_FACILITY)
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


# --- settings API --------------------------------------------------------------------


@api.get(
    "/facilities/{facility_id}/settings",
    response_model=SettingsOut,
    openapi_extra=_perm(Permission.VIEW_FACILITY),
)
def api_get_settings(facility_id: int, staff: CurrentStaff, db: DbSession) -> SettingsOut:
    facility = service.access_facility(db, staff, facility_id, Permission.VIEW_FACILITY)
    return _settings_out(service.facility_settings(db, facility))


@api.put(
    "/facilities/{facility_id}/settings",
    response_model=SettingsOut,
    openapi_extra=_perm(Permission.MANAGE_FACILITY),
)
def api_put_settings(
    facility_id: int, body: SettingsBody, staff: CurrentStaff, db: DbSession, clock: ClockDep
) -> SettingsOut:
    facility = service.access_facility(db, staff, facility_id, Permission.MANAGE_FACILITY)
    values = service.SettingsInput(**body.model_dump())
    return _settings_out(service.update_settings(db, clock, staff.actor, facility, values))


# --- units and hours API -------------------------------------------------------------


@api.get(
    "/facilities/{facility_id}/units",
    response_model=list[UnitOut],
    openapi_extra=_perm(Permission.VIEW_FACILITY),
)
def api_list_units(facility_id: int, staff: CurrentStaff, db: DbSession) -> list[UnitOut]:
    facility = service.access_facility(db, staff, facility_id, Permission.VIEW_FACILITY)
    return [_unit_out(u) for u in service.list_units(db, facility)]


@api.post(
    "/facilities/{facility_id}/units",
    response_model=UnitOut,
    status_code=201,
    openapi_extra=_perm(Permission.MANAGE_FACILITY),
)
def api_create_unit(
    facility_id: int, body: UnitBody, staff: CurrentStaff, db: DbSession, clock: ClockDep
) -> UnitOut:
    facility = service.access_facility(db, staff, facility_id, Permission.MANAGE_FACILITY)
    return _unit_out(service.create_unit(db, clock, staff.actor, facility, name=body.name))


@api.patch(
    "/facilities/{facility_id}/units/{unit_id}",
    response_model=UnitOut,
    openapi_extra=_perm(Permission.MANAGE_FACILITY),
)
def api_rename_unit(
    facility_id: int,
    unit_id: int,
    body: UnitBody,
    staff: CurrentStaff,
    db: DbSession,
    clock: ClockDep,
) -> UnitOut:
    facility = service.access_facility(db, staff, facility_id, Permission.MANAGE_FACILITY)
    unit = service.get_unit(db, facility, unit_id)
    return _unit_out(service.rename_unit(db, clock, staff.actor, facility, unit, name=body.name))


@api.delete(
    "/facilities/{facility_id}/units/{unit_id}",
    status_code=204,
    openapi_extra=_perm(Permission.MANAGE_FACILITY),
)
def api_delete_unit(
    facility_id: int, unit_id: int, staff: CurrentStaff, db: DbSession, clock: ClockDep
) -> None:
    facility = service.access_facility(db, staff, facility_id, Permission.MANAGE_FACILITY)
    unit = service.get_unit(db, facility, unit_id)
    service.delete_unit(db, clock, staff.actor, facility, unit)


@api.put(
    "/facilities/{facility_id}/units/{unit_id}/hours",
    response_model=UnitOut,
    openapi_extra=_perm(Permission.MANAGE_FACILITY),
)
def api_replace_hours(
    facility_id: int,
    unit_id: int,
    body: HoursBody,
    staff: CurrentStaff,
    db: DbSession,
    clock: ClockDep,
) -> UnitOut:
    """Replace the unit's weekly visiting hours (facility-local times) all at once."""
    facility = service.access_facility(db, staff, facility_id, Permission.MANAGE_FACILITY)
    unit = service.get_unit(db, facility, unit_id)
    windows = [service.HoursWindow(w.weekday, w.start, w.end) for w in body.windows]
    return _unit_out(service.replace_hours(db, clock, staff.actor, facility, unit, windows))


# --- closures API --------------------------------------------------------------------


@api.get(
    "/facilities/{facility_id}/closures",
    response_model=ClosureListOut,
    openapi_extra=_perm(Permission.MANAGE_CLOSURES),
)
def api_list_closures(
    facility_id: int, staff: CurrentStaff, db: DbSession, clock: ClockDep
) -> ClosureListOut:
    facility = service.access_facility(db, staff, facility_id, Permission.MANAGE_CLOSURES)
    lists = service.list_closures(db, clock, facility)
    return ClosureListOut(
        current_and_upcoming=[ClosureOut.model_validate(c) for c in lists.current_and_upcoming],
        past=[ClosureOut.model_validate(c) for c in lists.past],
    )


@api.post(
    "/facilities/{facility_id}/closures",
    response_model=ClosureOut,
    status_code=201,
    openapi_extra=_perm(Permission.MANAGE_CLOSURES),
)
def api_create_closure(
    facility_id: int,
    body: ClosureCreate,
    staff: CurrentStaff,
    db: DbSession,
    clock: ClockDep,
    settings: SettingsDep,
) -> Closure:
    """Record a lockdown or blackout; the visits it covers are cancelled and the families
    told (see GET .../closure-preview to count them first)."""
    facility = service.access_facility(db, staff, facility_id, Permission.MANAGE_CLOSURES)
    closure, _cancelled = closures.declare_closure(
        db,
        clock,
        settings,
        staff.actor,
        facility,
        kind=body.kind.value,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
        reason=body.reason,
        unit_id=body.unit_id,
        staff_id=staff.member.id,
    )
    return closure


@api.post(
    "/facilities/{facility_id}/closures/{closure_id}/lift",
    response_model=ClosureOut,
    openapi_extra=_perm(Permission.MANAGE_CLOSURES),
)
def api_lift_closure(
    facility_id: int, closure_id: int, staff: CurrentStaff, db: DbSession, clock: ClockDep
) -> Closure:
    facility = service.access_facility(db, staff, facility_id, Permission.MANAGE_CLOSURES)
    closure = service.get_closure(db, facility, closure_id)
    return service.lift_lockdown(db, clock, staff.actor, facility, closure)


# --- kiosks API ----------------------------------------------------------------------


@api.get(
    "/facilities/{facility_id}/kiosks",
    response_model=list[KioskOut],
    openapi_extra=_perm(Permission.MANAGE_FACILITY),
)
def api_list_kiosks(facility_id: int, staff: CurrentStaff, db: DbSession) -> list[KioskOut]:
    facility = service.access_facility(db, staff, facility_id, Permission.MANAGE_FACILITY)
    return [_kiosk_out(k) for k in service.list_kiosks(db, facility)]


@api.post(
    "/facilities/{facility_id}/kiosks",
    response_model=KioskOut,
    status_code=201,
    openapi_extra=_perm(Permission.MANAGE_FACILITY),
)
def api_create_kiosk(
    facility_id: int, body: KioskCreate, staff: CurrentStaff, db: DbSession, clock: ClockDep
) -> KioskOut:
    facility = service.access_facility(db, staff, facility_id, Permission.MANAGE_FACILITY)
    return _kiosk_out(
        service.create_kiosk(
            db,
            clock,
            staff.actor,
            facility,
            name=body.name,
            location=body.location.value,
            unit_id=body.unit_id,
        )
    )


@api.put(
    "/facilities/{facility_id}/kiosks/{kiosk_id}/service",
    response_model=KioskOut,
    openapi_extra=_perm(Permission.MANAGE_FACILITY),
)
def api_kiosk_service(
    facility_id: int,
    kiosk_id: int,
    body: KioskServiceBody,
    staff: CurrentStaff,
    db: DbSession,
    clock: ClockDep,
) -> KioskOut:
    facility = service.access_facility(db, staff, facility_id, Permission.MANAGE_FACILITY)
    kiosk = service.get_kiosk(db, facility, kiosk_id)
    return _kiosk_out(
        service.set_kiosk_service(
            db, clock, staff.actor, facility, kiosk, in_service=body.in_service, reason=body.reason
        )
    )


@api.post(
    "/facilities/{facility_id}/kiosks/{kiosk_id}/credential",
    response_model=KioskCredentialOut,
    status_code=201,
    openapi_extra=_perm(Permission.MANAGE_FACILITY),
)
def api_issue_credential(
    facility_id: int,
    kiosk_id: int,
    staff: CurrentStaff,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
    response: Response,
) -> KioskCredentialOut:
    """A new device credential (replacing any earlier one). The code is shown only once."""
    facility = service.access_facility(db, staff, facility_id, Permission.MANAGE_FACILITY)
    kiosk = service.get_kiosk(db, facility, kiosk_id)
    issued = service.issue_kiosk_credential(db, settings, clock, staff.actor, facility, kiosk)
    response.headers["Cache-Control"] = "no-store"
    return KioskCredentialOut(
        kiosk=_kiosk_out(issued.kiosk), code=issued.token, activation_url=issued.activation_url
    )


@api.delete(
    "/facilities/{facility_id}/kiosks/{kiosk_id}/credential",
    status_code=204,
    openapi_extra=_perm(Permission.MANAGE_FACILITY),
)
def api_revoke_credential(
    facility_id: int, kiosk_id: int, staff: CurrentStaff, db: DbSession, clock: ClockDep
) -> None:
    facility = service.access_facility(db, staff, facility_id, Permission.MANAGE_FACILITY)
    kiosk = service.get_kiosk(db, facility, kiosk_id)
    service.revoke_kiosk_credential(db, clock, staff.actor, facility, kiosk)


# --- pages: settings -----------------------------------------------------------------


def _page(
    request: Request,
    template: str,
    staff: StaffContext,
    facility: Facility,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    return render(
        request,
        template,
        {"staff": staff, "facility": facility, **context},
        status_code=status_code,
    )


class SettingsForm(BaseModel):
    visit_lengths_minutes: str = Field(default="", max_length=100)
    slot_step_minutes: str = Field(default="", max_length=20)
    min_notice_minutes: str = Field(default="", max_length=20)
    booking_horizon_days: str = Field(default="", max_length=20)
    weekly_remote_visits: str = Field(default="", max_length=20)
    weekly_onsite_visits: str = Field(default="", max_length=20)
    weekly_privileged_visits: str = Field(default="", max_length=20)
    visitors_per_visit: str = Field(default="", max_length=20)
    approved_visitors_per_resident: str = Field(default="", max_length=20)
    join_window_minutes: str = Field(default="", max_length=20)
    reconnect_grace_seconds: str = Field(default="", max_length=20)
    bookings_need_approval: str = Field(default="", max_length=10)
    recording_retention_days: str = Field(default="", max_length=20)
    free_minutes_per_week: str = Field(default="", max_length=20)
    onsite_visits_free: str = Field(default="", max_length=10)
    remote_rate_cents_per_minute: str = Field(default="", max_length=20)


def _whole(text: str) -> int | None:
    text = text.strip()
    if text.startswith("-") and text[1:].isdigit():
        return -int(text[1:])
    return int(text) if text.isdigit() and len(text) < 10 else None


def _settings_from_form(form: SettingsForm) -> service.SettingsInput:
    """Parse the form's text into settings; a value that isn't a number is a field error."""
    errors: dict[str, str] = {}
    values: dict[str, Any] = {}
    lengths = [_whole(p) for p in form.visit_lengths_minutes.replace(",", " ").split()]
    if any(n is None for n in lengths):
        errors["visit_lengths_minutes"] = "Enter whole minutes separated by commas, like 20, 30"
    values["visit_lengths_minutes"] = [n for n in lengths if n is not None]
    for name in service.SETTING_NAMES:
        if name in ("visit_lengths_minutes", "remote_rate_cents_per_minute"):
            continue
        raw = getattr(form, name)
        if name in ("bookings_need_approval", "onsite_visits_free"):
            values[name] = raw in ("yes", "on", "true")
            continue
        number = _whole(raw)
        if number is None:
            errors[name] = "Enter a whole number"
        values[name] = number if number is not None else 0
    try:
        values["remote_rate_cents_per_minute"] = Decimal(form.remote_rate_cents_per_minute.strip())
    except InvalidOperation:
        errors["remote_rate_cents_per_minute"] = "Enter a rate in cents, like 15 or 15.50"
        values["remote_rate_cents_per_minute"] = Decimal(0)
    if errors:
        raise InvalidInput(
            "Some settings are not valid.", code=Code.INVALID_SETTINGS, fields=errors
        )
    return service.SettingsInput(**values)


def _settings_form_values(row: FacilitySettings) -> dict[str, Any]:
    data = service.settings_data(row)
    data["visit_lengths_minutes"] = ", ".join(str(n) for n in data["visit_lengths_minutes"])
    return data


@pages.get("/staff/facilities/{facility_id}/settings", response_class=HTMLResponse)
def settings_page(
    request: Request, facility_id: int, staff: CurrentStaff, db: DbSession
) -> HTMLResponse:
    facility = service.access_facility(db, staff, facility_id, Permission.MANAGE_FACILITY)
    row = service.facility_settings(db, facility)
    return _page(
        request, "facilities/settings.html", staff, facility, form=_settings_form_values(row)
    )


@pages.post("/staff/facilities/{facility_id}/settings", response_class=HTMLResponse)
def settings_submit(
    request: Request,
    facility_id: int,
    form: Annotated[SettingsForm, Form()],
    staff: CurrentStaff,
    db: DbSession,
    clock: ClockDep,
) -> Response:
    facility = service.access_facility(db, staff, facility_id, Permission.MANAGE_FACILITY)
    try:
        values = _settings_from_form(form)
        service.update_settings(db, clock, staff.actor, facility, values)
    except DomainError as exc:
        return form_error(
            request,
            db,
            "facilities/settings.html",
            {"staff": staff, "facility": facility, "form": form.model_dump()},
            exc,
        )
    return flash_redirect(
        request,
        f"/staff/facilities/{facility.id}/settings",
        "Settings saved. New bookings use them from now on.",
    )


# --- pages: units and hours ----------------------------------------------------------


def _units_url(facility: Facility) -> str:
    return f"/staff/facilities/{facility.id}/units"


@pages.get("/staff/facilities/{facility_id}/units", response_class=HTMLResponse)
def units_page(
    request: Request, facility_id: int, staff: CurrentStaff, db: DbSession
) -> HTMLResponse:
    facility = service.access_facility(db, staff, facility_id, Permission.MANAGE_FACILITY)
    return _page(
        request, "facilities/units.html", staff, facility, units=service.list_units(db, facility)
    )


@pages.post("/staff/facilities/{facility_id}/units", response_class=HTMLResponse)
def unit_create_submit(
    request: Request,
    facility_id: int,
    staff: CurrentStaff,
    db: DbSession,
    clock: ClockDep,
    name: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    facility = service.access_facility(db, staff, facility_id, Permission.MANAGE_FACILITY)
    try:
        unit = service.create_unit(db, clock, staff.actor, facility, name=name)
    except DomainError as exc:
        return form_error(
            request,
            db,
            "facilities/units.html",
            {
                "staff": staff,
                "facility": facility,
                "form": {"name": name},
                "units": service.list_units(db, facility),
            },
            exc,
            field="name",
        )
    return flash_redirect(
        request,
        f"{_units_url(facility)}/{unit.id}",
        f"{unit.name} added. Now set its visiting hours.",
    )


def _unit_page(
    request: Request,
    staff: StaffContext,
    facility: Facility,
    unit: HousingUnit,
    rows: list[dict[str, Any]] | None = None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    if rows is None:
        rows = [
            {
                "weekday": h.weekday,
                "start": h.start_time.strftime("%H:%M"),
                "end": h.end_time.strftime("%H:%M"),
            }
            for h in unit.hours
        ]
    rows = rows + [{"weekday": "", "start": "", "end": ""} for _ in range(3)]
    return _page(
        request,
        "facilities/unit.html",
        staff,
        facility,
        status_code=status_code,
        unit=unit,
        rows=rows,
        **context,
    )


@pages.get("/staff/facilities/{facility_id}/units/{unit_id}", response_class=HTMLResponse)
def unit_page(
    request: Request, facility_id: int, unit_id: int, staff: CurrentStaff, db: DbSession
) -> HTMLResponse:
    facility = service.access_facility(db, staff, facility_id, Permission.MANAGE_FACILITY)
    unit = service.get_unit(db, facility, unit_id)
    return _unit_page(request, staff, facility, unit, form={"name": unit.name})


@pages.post("/staff/facilities/{facility_id}/units/{unit_id}/hours", response_class=HTMLResponse)
def unit_hours_submit(
    request: Request,
    facility_id: int,
    unit_id: int,
    staff: CurrentStaff,
    db: DbSession,
    clock: ClockDep,
    weekday: Annotated[list[str], Form(max_length=200)] = [],  # noqa: B006
    start: Annotated[list[str], Form(max_length=200)] = [],  # noqa: B006
    end: Annotated[list[str], Form(max_length=200)] = [],  # noqa: B006
) -> Response:
    facility = service.access_facility(db, staff, facility_id, Permission.MANAGE_FACILITY)
    unit = service.get_unit(db, facility, unit_id)
    rows = [
        {"weekday": d, "start": s.strip()[:5], "end": e.strip()[:5]}
        for d, s, e in zip(weekday, start, end, strict=False)
        if s.strip() or e.strip()
    ]
    windows = [
        service.HoursWindow(
            int(r["weekday"]) if r["weekday"].isdigit() else -1, r["start"], r["end"]
        )
        for r in rows
    ]
    try:
        service.replace_hours(db, clock, staff.actor, facility, unit, windows)
    except DomainError as exc:
        db.rollback()
        unit = service.get_unit(db, facility, unit_id)
        errors = exc.fields or {"windows": exc.message}
        return _unit_page(
            request,
            staff,
            facility,
            unit,
            rows=rows,
            errors=errors,
            error_message=exc.message,
            form={"name": unit.name},
            status_code=exc.http_status,
        )
    return flash_redirect(request, _units_url(facility), f"Visiting hours for {unit.name} saved.")


@pages.post("/staff/facilities/{facility_id}/units/{unit_id}/rename", response_class=HTMLResponse)
def unit_rename_submit(
    request: Request,
    facility_id: int,
    unit_id: int,
    staff: CurrentStaff,
    db: DbSession,
    clock: ClockDep,
    name: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    facility = service.access_facility(db, staff, facility_id, Permission.MANAGE_FACILITY)
    unit = service.get_unit(db, facility, unit_id)
    try:
        service.rename_unit(db, clock, staff.actor, facility, unit, name=name)
    except DomainError as exc:
        db.rollback()
        unit = service.get_unit(db, facility, unit_id)
        return _unit_page(
            request,
            staff,
            facility,
            unit,
            form={"name": name},
            errors=exc.fields or {"name": exc.message},
            status_code=exc.http_status,
        )
    return flash_redirect(
        request, f"{_units_url(facility)}/{unit.id}", f"Unit renamed to {unit.name}."
    )


@pages.post("/staff/facilities/{facility_id}/units/{unit_id}/delete", response_class=HTMLResponse)
def unit_delete_submit(
    request: Request,
    facility_id: int,
    unit_id: int,
    staff: CurrentStaff,
    db: DbSession,
    clock: ClockDep,
) -> Response:
    facility = service.access_facility(db, staff, facility_id, Permission.MANAGE_FACILITY)
    unit = service.get_unit(db, facility, unit_id)
    name = unit.name
    try:
        service.delete_unit(db, clock, staff.actor, facility, unit)
    except DomainError as exc:
        db.rollback()
        return flash_redirect(
            request, f"{_units_url(facility)}/{unit_id}", exc.message, kind="error"
        )
    return flash_redirect(request, _units_url(facility), f"{name} deleted.")


# --- pages: closures -----------------------------------------------------------------


def _closures_context(
    db: DbSession, clock: ClockDep, staff: StaffContext, facility: Facility
) -> dict[str, Any]:
    lists = service.list_closures(db, clock, facility)
    units = service.list_units(db, facility)
    return {
        "staff": staff,
        "facility": facility,
        "lists": lists,
        "now": clock.now(),
        "units": units,
        "unit_names": {u.id: u.name for u in units},
    }


@pages.get("/staff/facilities/{facility_id}/closures", response_class=HTMLResponse)
def closures_page(
    request: Request, facility_id: int, staff: CurrentStaff, db: DbSession, clock: ClockDep
) -> HTMLResponse:
    facility = service.access_facility(db, staff, facility_id, Permission.MANAGE_CLOSURES)
    return render(
        request, "facilities/closures.html", _closures_context(db, clock, staff, facility)
    )


class ClosureForm(BaseModel):
    kind: str = Field(default="", max_length=20)
    unit_id: str = Field(default="", max_length=20)
    starts_date: str = Field(default="", max_length=20)
    starts_time: str = Field(default="", max_length=10)
    ends_date: str = Field(default="", max_length=20)
    ends_time: str = Field(default="", max_length=10)
    reason: str = Field(default="", max_length=2000)
    confirm: str = Field(default="", max_length=10)


@pages.post("/staff/facilities/{facility_id}/closures", response_class=HTMLResponse)
def closure_create_submit(
    request: Request,
    facility_id: int,
    form: Annotated[ClosureForm, Form()],
    staff: CurrentStaff,
    db: DbSession,
    clock: ClockDep,
    settings: SettingsDep,
) -> Response:
    facility = service.access_facility(db, staff, facility_id, Permission.MANAGE_CLOSURES)
    try:
        starts_at = service.local_to_utc(
            form.starts_date, form.starts_time, facility.timezone, "starts"
        )
        ends_at = None
        if form.ends_date.strip() or form.ends_time.strip():
            ends_at = service.local_to_utc(
                form.ends_date, form.ends_time, facility.timezone, "ends"
            )
        unit_id = int(form.unit_id) if form.unit_id.strip().isdigit() else None
        if form.confirm != "yes":
            affected = scheduling.visits_affected_by(
                db, facility_id=facility.id, unit_id=unit_id, starts_at=starts_at, ends_at=ends_at
            )
            if affected:
                # Show the effect before it happens: "12 visits will be cancelled".
                ctx = _closures_context(db, clock, staff, facility)
                ctx.update(form=form.model_dump(), confirm_count=len(affected))
                return render(request, "facilities/closures.html", ctx)
        closure, cancelled = closures.declare_closure(
            db,
            clock,
            settings,
            staff.actor,
            facility,
            kind=form.kind,
            starts_at=starts_at,
            ends_at=ends_at,
            reason=form.reason,
            unit_id=unit_id,
            staff_id=staff.member.id,
        )
    except DomainError as exc:
        db.rollback()
        ctx = _closures_context(db, clock, staff, facility)
        ctx["form"] = form.model_dump()
        if "ends_at" in exc.fields:
            exc.fields["ends_date"] = exc.fields.pop("ends_at")
        if "starts_at" in exc.fields:
            exc.fields["starts_date"] = exc.fields.pop("starts_at")
        return form_error(request, db, "facilities/closures.html", ctx, exc, field="reason")
    what = "Lockdown" if closure.kind.value == "lockdown" else "Blackout"
    told = (
        f" {len(cancelled)} visit{'s' if len(cancelled) != 1 else ''} cancelled; "
        "the families were told."
        if cancelled
        else ""
    )
    return flash_redirect(
        request, f"/staff/facilities/{facility.id}/closures", f"{what} recorded.{told}"
    )


@pages.post(
    "/staff/facilities/{facility_id}/closures/{closure_id}/lift", response_class=HTMLResponse
)
def closure_lift_submit(
    request: Request,
    facility_id: int,
    closure_id: int,
    staff: CurrentStaff,
    db: DbSession,
    clock: ClockDep,
) -> Response:
    facility = service.access_facility(db, staff, facility_id, Permission.MANAGE_CLOSURES)
    closure = service.get_closure(db, facility, closure_id)
    url = f"/staff/facilities/{facility.id}/closures"
    try:
        service.lift_lockdown(db, clock, staff.actor, facility, closure)
    except DomainError as exc:
        db.rollback()
        return flash_redirect(request, url, exc.message, kind="error")
    return flash_redirect(request, url, "Lockdown lifted. Visiting can resume.")


# --- pages: kiosks -------------------------------------------------------------------


def _kiosks_context(
    db: DbSession, staff: StaffContext, facility: Facility, **extra: Any
) -> dict[str, Any]:
    units = service.list_units(db, facility)
    return {
        "staff": staff,
        "facility": facility,
        "kiosks": service.list_kiosks(db, facility),
        "units": units,
        "unit_names": {u.id: u.name for u in units},
        **extra,
    }


def _kiosks_url(facility: Facility) -> str:
    return f"/staff/facilities/{facility.id}/kiosks"


@pages.get("/staff/facilities/{facility_id}/kiosks", response_class=HTMLResponse)
def kiosks_page(
    request: Request, facility_id: int, staff: CurrentStaff, db: DbSession
) -> HTMLResponse:
    facility = service.access_facility(db, staff, facility_id, Permission.MANAGE_FACILITY)
    return render(request, "facilities/kiosks.html", _kiosks_context(db, staff, facility))


@pages.post("/staff/facilities/{facility_id}/kiosks", response_class=HTMLResponse)
def kiosk_create_submit(
    request: Request,
    facility_id: int,
    staff: CurrentStaff,
    db: DbSession,
    clock: ClockDep,
    name: Annotated[str, Form(max_length=200)] = "",
    location: Annotated[str, Form(max_length=20)] = "",
    unit_id: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    facility = service.access_facility(db, staff, facility_id, Permission.MANAGE_FACILITY)
    try:
        kiosk = service.create_kiosk(
            db,
            clock,
            staff.actor,
            facility,
            name=name,
            location=location,
            unit_id=int(unit_id) if unit_id.strip().isdigit() else None,
        )
    except DomainError as exc:
        db.rollback()
        ctx = _kiosks_context(
            db, staff, facility, form={"name": name, "location": location, "unit_id": unit_id}
        )
        return form_error(request, db, "facilities/kiosks.html", ctx, exc, field="name")
    return flash_redirect(
        request,
        _kiosks_url(facility),
        f"{kiosk.name} added. Issue a device credential to set it up.",
    )


@pages.post(
    "/staff/facilities/{facility_id}/kiosks/{kiosk_id}/service", response_class=HTMLResponse
)
def kiosk_service_submit(
    request: Request,
    facility_id: int,
    kiosk_id: int,
    staff: CurrentStaff,
    db: DbSession,
    clock: ClockDep,
    in_service: Annotated[str, Form(max_length=10)] = "",
    reason: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    facility = service.access_facility(db, staff, facility_id, Permission.MANAGE_FACILITY)
    kiosk = service.get_kiosk(db, facility, kiosk_id)
    try:
        service.set_kiosk_service(
            db, clock, staff.actor, facility, kiosk, in_service=in_service == "yes", reason=reason
        )
    except DomainError as exc:
        db.rollback()
        return flash_redirect(
            request, _kiosks_url(facility), f"{kiosk.name}: {exc.message}", kind="error"
        )
    state = "back in service" if kiosk.in_service else "out of service"
    return flash_redirect(request, _kiosks_url(facility), f"{kiosk.name} is {state}.")


@pages.post(
    "/staff/facilities/{facility_id}/kiosks/{kiosk_id}/credential", response_class=HTMLResponse
)
def kiosk_credential_submit(
    request: Request,
    facility_id: int,
    kiosk_id: int,
    staff: CurrentStaff,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
) -> Response:
    """Shows the new code on this response only: it is never stored nor put in a cookie."""
    facility = service.access_facility(db, staff, facility_id, Permission.MANAGE_FACILITY)
    kiosk = service.get_kiosk(db, facility, kiosk_id)
    issued = service.issue_kiosk_credential(db, settings, clock, staff.actor, facility, kiosk)
    response = render(
        request,
        "facilities/kiosk_credential.html",
        {"staff": staff, "facility": facility, "issued": issued},
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@pages.post("/staff/facilities/{facility_id}/kiosks/{kiosk_id}/revoke", response_class=HTMLResponse)
def kiosk_revoke_submit(
    request: Request,
    facility_id: int,
    kiosk_id: int,
    staff: CurrentStaff,
    db: DbSession,
    clock: ClockDep,
) -> Response:
    facility = service.access_facility(db, staff, facility_id, Permission.MANAGE_FACILITY)
    kiosk = service.get_kiosk(db, facility, kiosk_id)
    try:
        service.revoke_kiosk_credential(db, clock, staff.actor, facility, kiosk)
    except DomainError as exc:
        db.rollback()
        return flash_redirect(request, _kiosks_url(facility), exc.message, kind="error")
    return flash_redirect(
        request,
        _kiosks_url(facility),
        f"{kiosk.name}'s credential revoked. The device is signed out.",
    )
