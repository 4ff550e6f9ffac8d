"""Residents: JSON API and staff pages (list, add, edit, PIN, custody, restriction, import)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, Response, UploadFile
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from openvisit.auth.permissions import Permission
from openvisit.clock import Clock
from openvisit.deps import ClockDep, CurrentStaff, DbSession, SettingsDep
from openvisit.errors import Code, DomainError
from openvisit.facilities.models import Facility
from openvisit.facilities.service import access_facility
from openvisit.flows import custody
from openvisit.people.context import StaffContext
from openvisit.residents import roster, service
from openvisit.residents.models import CustodyStatus, Resident
from openvisit.residents.schemas import (
    CustodyIn,
    PinIn,
    ResidentIn,
    ResidentOut,
    ResidentPageOut,
    ResidentPatch,
    RestrictionIn,
    RosterReportOut,
)
from openvisit.web.render import flash_redirect, form_error, render

api = APIRouter(prefix="/api/v1", tags=["residents"])
pages = APIRouter(include_in_schema=False)

VIEW = {"x-permission": Permission.VIEW_RESIDENTS.value}
MANAGE = {"x-permission": Permission.MANAGE_RESIDENTS.value}
BASE = "/facilities/{facility_id}/residents"
ONE = BASE + "/{resident_id}"


def _out(resident: Resident, units: dict[int, str]) -> ResidentOut:
    return ResidentOut(
        id=resident.id,
        facility_id=resident.facility_id,
        booking_number=resident.booking_number,
        first_name=resident.first_name,
        last_name=resident.last_name,
        date_of_birth=resident.date_of_birth,
        unit_id=resident.unit_id,
        unit_name=units.get(resident.unit_id) if resident.unit_id is not None else None,
        custody_status=resident.custody_status,
        restricted_until=resident.restricted_until,
        restriction_reason=resident.restriction_reason,
        preferred_language=resident.preferred_language,
        has_pin=resident.pin_hash is not None,
        created_at=resident.created_at,
        updated_at=resident.updated_at,
    )


# --- API -----------------------------------------------------------------------------


@api.get(BASE, response_model=ResidentPageOut, openapi_extra=VIEW)
def api_list(
    facility_id: int,
    staff: CurrentStaff,
    db: DbSession,
    q: Annotated[str, Query(max_length=100)] = "",
    status: CustodyStatus | None = None,
    page: Annotated[int, Query(ge=1, le=100000)] = 1,
) -> ResidentPageOut:
    """Residents of the facility, 50 per page; ``q`` matches booking number or name."""
    facility = access_facility(db, staff, facility_id, Permission.VIEW_RESIDENTS)
    found = service.list_residents(db, facility.id, query=q, status=status, page=page)
    units = service.unit_names(db, facility.id)
    return ResidentPageOut(
        items=[_out(r, units) for r in found.items],
        total=found.total,
        page=found.page,
        pages=found.pages,
    )


@api.post(BASE, response_model=ResidentOut, status_code=201, openapi_extra=MANAGE)
def api_create(
    facility_id: int, body: ResidentIn, staff: CurrentStaff, db: DbSession, clock: ClockDep
) -> ResidentOut:
    facility = access_facility(db, staff, facility_id, Permission.MANAGE_RESIDENTS)
    resident = service.create_resident(db, clock, staff.actor, facility, **body.model_dump())
    return _out(resident, service.unit_names(db, facility.id))


@api.post(BASE + "/import", response_model=RosterReportOut, openapi_extra=MANAGE)
def api_import(
    facility_id: int,
    staff: CurrentStaff,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
    roster_file: Annotated[UploadFile, File(alias="roster")],
    dry_run: Annotated[bool, Form()] = False,
) -> dict[str, Any]:
    """Import a roster CSV (all rows or none); ``dry_run=true`` only reports."""
    facility = access_facility(db, staff, facility_id, Permission.MANAGE_RESIDENTS)
    data = roster_file.file.read(settings.upload_max_bytes + 1)
    report = roster.import_roster(db, settings, clock, staff.actor, facility, data, dry_run=dry_run)
    return report.to_json()


@api.get(ONE, response_model=ResidentOut, openapi_extra=VIEW)
def api_get(facility_id: int, resident_id: int, staff: CurrentStaff, db: DbSession) -> ResidentOut:
    facility, resident = service.access_resident(db, staff, facility_id, resident_id)
    return _out(resident, service.unit_names(db, facility.id))


@api.patch(ONE, response_model=ResidentOut, openapi_extra=MANAGE)
def api_update(
    facility_id: int,
    resident_id: int,
    body: ResidentPatch,
    staff: CurrentStaff,
    db: DbSession,
    clock: ClockDep,
) -> ResidentOut:
    facility, resident = service.access_resident(
        db, staff, facility_id, resident_id, Permission.MANAGE_RESIDENTS
    )
    service.update_resident(db, clock, staff.actor, facility, resident, **body.model_dump())
    return _out(resident, service.unit_names(db, facility.id))


@api.post(ONE + "/pin", status_code=204, openapi_extra=MANAGE)
def api_set_pin(
    facility_id: int,
    resident_id: int,
    body: PinIn,
    staff: CurrentStaff,
    db: DbSession,
    clock: ClockDep,
) -> Response:
    _facility, resident = service.access_resident(
        db, staff, facility_id, resident_id, Permission.MANAGE_RESIDENTS
    )
    service.set_pin(db, clock, staff.actor, resident, body.pin)
    return Response(status_code=204)


@api.post(ONE + "/custody", response_model=ResidentOut, openapi_extra=MANAGE)
def api_custody(
    facility_id: int,
    resident_id: int,
    body: CustodyIn,
    staff: CurrentStaff,
    db: DbSession,
    clock: ClockDep,
    settings: SettingsDep,
) -> ResidentOut:
    facility, resident = service.access_resident(
        db, staff, facility_id, resident_id, Permission.MANAGE_RESIDENTS
    )
    custody.change_custody_status(
        db, clock, settings, staff.actor, resident, body.status, body.reason
    )
    return _out(resident, service.unit_names(db, facility.id))


@api.put(ONE + "/restriction", response_model=ResidentOut, openapi_extra=MANAGE)
def api_restrict(
    facility_id: int,
    resident_id: int,
    body: RestrictionIn,
    staff: CurrentStaff,
    db: DbSession,
    clock: ClockDep,
) -> ResidentOut:
    facility, resident = service.access_resident(
        db, staff, facility_id, resident_id, Permission.MANAGE_RESIDENTS
    )
    service.restrict_visits(db, clock, staff.actor, resident, body.until, body.reason)
    return _out(resident, service.unit_names(db, facility.id))


@api.delete(ONE + "/restriction", response_model=ResidentOut, openapi_extra=MANAGE)
def api_lift(
    facility_id: int, resident_id: int, staff: CurrentStaff, db: DbSession, clock: ClockDep
) -> ResidentOut:
    facility, resident = service.access_resident(
        db, staff, facility_id, resident_id, Permission.MANAGE_RESIDENTS
    )
    service.lift_restriction(db, clock, staff.actor, resident)
    return _out(resident, service.unit_names(db, facility.id))


# --- pages ---------------------------------------------------------------------------

PAGES = "/staff" + BASE
PAGE_ONE = "/staff" + ONE
CUSTODY_LABELS = {
    CustodyStatus.IN_CUSTODY: "In custody",
    CustodyStatus.RELEASED: "Released",
    CustodyStatus.TRANSFERRED: "Transferred",
}


def _ctx(staff: StaffContext, facility: Facility, **extra: Any) -> dict[str, Any]:
    return {
        "staff": staff,
        "facility": facility,
        "custody_labels": CUSTODY_LABELS,
        "can_manage": staff.can(facility.id, Permission.MANAGE_RESIDENTS),
        **extra,
    }


@pages.get(PAGES, response_class=HTMLResponse)
def list_page(
    request: Request,
    facility_id: int,
    staff: CurrentStaff,
    db: DbSession,
    q: Annotated[str, Query(max_length=100)] = "",
    status: str = "",
    page: Annotated[int, Query(ge=1, le=100000)] = 1,
) -> HTMLResponse:
    facility = access_facility(db, staff, facility_id, Permission.VIEW_RESIDENTS)
    wanted = CustodyStatus(status) if status in CustodyStatus._value2member_map_ else None
    found = service.list_residents(db, facility.id, query=q, status=wanted, page=page)
    any_at_all = found.total > 0 or service.count_residents(db, facility.id) > 0
    return render(
        request,
        "residents/list.html",
        _ctx(
            staff,
            facility,
            found=found,
            any_at_all=any_at_all,
            units=service.unit_names(db, facility.id),
        ),
    )


def _form_ctx(db: Session, staff: StaffContext, facility: Facility, **extra: Any) -> dict[str, Any]:
    units = service.facility_units(db, facility.id)
    options = [("", "Choose a unit")] + [(u.id, u.name) for u in units]
    return _ctx(staff, facility, units=units, unit_options=options, **extra)


@pages.get(PAGES + "/new", response_class=HTMLResponse)
def new_page(
    request: Request, facility_id: int, staff: CurrentStaff, db: DbSession
) -> HTMLResponse:
    facility = access_facility(db, staff, facility_id, Permission.MANAGE_RESIDENTS)
    return render(
        request,
        "residents/form.html",
        _form_ctx(db, staff, facility, resident=None, form={"preferred_language": "en"}),
    )


FormStr = Annotated[str, Form(max_length=200)]


def _unit_id(value: str) -> int | None:
    return int(value) if value.isdigit() else None


@pages.post(PAGES + "/new", response_class=HTMLResponse)
def new_submit(
    request: Request,
    facility_id: int,
    staff: CurrentStaff,
    db: DbSession,
    clock: ClockDep,
    booking_number: FormStr = "",
    first_name: FormStr = "",
    last_name: FormStr = "",
    date_of_birth: FormStr = "",
    unit_id: FormStr = "",
    preferred_language: FormStr = "en",
) -> Response:
    facility = access_facility(db, staff, facility_id, Permission.MANAGE_RESIDENTS)
    form = {
        "booking_number": booking_number,
        "first_name": first_name,
        "last_name": last_name,
        "date_of_birth": date_of_birth,
        "unit_id": unit_id,
        "preferred_language": preferred_language,
    }
    try:
        resident = service.create_resident(
            db,
            clock,
            staff.actor,
            facility,
            booking_number=booking_number,
            first_name=first_name,
            last_name=last_name,
            date_of_birth=date_of_birth,
            unit_id=_unit_id(unit_id),
            preferred_language=preferred_language,
        )
    except DomainError as exc:
        return form_error(
            request,
            db,
            "residents/form.html",
            _form_ctx(db, staff, facility, resident=None, form=form),
            exc,
        )
    return flash_redirect(
        request,
        f"/staff/facilities/{facility.id}/residents/{resident.id}",
        f"{resident.full_name} ({resident.booking_number}) was added. "
        "Set a PIN so they can sign in at a kiosk.",
    )


# The import pages come before /{resident_id} so "import" is never read as an id.
@pages.get(PAGES + "/import", response_class=HTMLResponse)
def import_page(
    request: Request, facility_id: int, staff: CurrentStaff, db: DbSession
) -> HTMLResponse:
    facility = access_facility(db, staff, facility_id, Permission.MANAGE_RESIDENTS)
    return render(
        request, "residents/import.html", _form_ctx(db, staff, facility, columns=roster.COLUMNS)
    )


@pages.post(PAGES + "/import", response_class=HTMLResponse)
def import_submit(
    request: Request,
    facility_id: int,
    staff: CurrentStaff,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
    roster_file: Annotated[UploadFile | None, File(alias="roster")] = None,
    dry_run: Annotated[bool, Form()] = False,
) -> HTMLResponse:
    facility = access_facility(db, staff, facility_id, Permission.MANAGE_RESIDENTS)
    ctx = _form_ctx(db, staff, facility, columns=roster.COLUMNS, form={"dry_run": dry_run})
    data = roster_file.file.read(settings.upload_max_bytes + 1) if roster_file else b""
    try:
        report = roster.import_roster(
            db, settings, clock, staff.actor, facility, data, dry_run=dry_run
        )
    except roster.RosterRejected as exc:
        db.rollback()
        return render(
            request,
            "residents/import_report.html",
            {**ctx, "report": exc.report, "error_message": exc.message},
            status_code=exc.http_status,
        )
    except DomainError as exc:
        return form_error(request, db, "residents/import.html", ctx, exc, field="roster")
    return render(request, "residents/import_report.html", {**ctx, "report": report})


def _detail_ctx(
    db: Session,
    staff: StaffContext,
    facility: Facility,
    resident: Resident,
    clock: Clock,
    **extra: Any,
) -> dict[str, Any]:
    return _ctx(
        staff,
        facility,
        resident=resident,
        unit_name=service.unit_names(db, facility.id).get(resident.unit_id or 0, ""),
        restricted=service.is_restricted(resident, clock.now()),
        **extra,
    )


@pages.get(PAGE_ONE, response_class=HTMLResponse)
def detail_page(
    request: Request,
    facility_id: int,
    resident_id: int,
    staff: CurrentStaff,
    db: DbSession,
    clock: ClockDep,
) -> HTMLResponse:
    facility, resident = service.access_resident(db, staff, facility_id, resident_id)
    return render(
        request, "residents/detail.html", _detail_ctx(db, staff, facility, resident, clock)
    )


@pages.get(PAGE_ONE + "/edit", response_class=HTMLResponse)
def edit_page(
    request: Request, facility_id: int, resident_id: int, staff: CurrentStaff, db: DbSession
) -> HTMLResponse:
    facility, resident = service.access_resident(
        db, staff, facility_id, resident_id, Permission.MANAGE_RESIDENTS
    )
    form = {name: getattr(resident, name) for name in service.EDITABLE}
    form["date_of_birth"] = resident.date_of_birth.isoformat()
    return render(
        request, "residents/form.html", _form_ctx(db, staff, facility, resident=resident, form=form)
    )


@pages.post(PAGE_ONE + "/edit", response_class=HTMLResponse)
def edit_submit(
    request: Request,
    facility_id: int,
    resident_id: int,
    staff: CurrentStaff,
    db: DbSession,
    clock: ClockDep,
    booking_number: FormStr = "",
    first_name: FormStr = "",
    last_name: FormStr = "",
    date_of_birth: FormStr = "",
    unit_id: FormStr = "",
    preferred_language: FormStr = "",
) -> Response:
    facility, resident = service.access_resident(
        db, staff, facility_id, resident_id, Permission.MANAGE_RESIDENTS
    )
    form = {
        "booking_number": booking_number,
        "first_name": first_name,
        "last_name": last_name,
        "date_of_birth": date_of_birth,
        "unit_id": unit_id,
        "preferred_language": preferred_language,
    }
    try:
        changed = service.update_resident(
            db,
            clock,
            staff.actor,
            facility,
            resident,
            booking_number=booking_number,
            first_name=first_name,
            last_name=last_name,
            date_of_birth=date_of_birth,
            unit_id=_unit_id(unit_id) if unit_id else -1,
            preferred_language=preferred_language,
        )
    except DomainError as exc:
        return form_error(
            request,
            db,
            "residents/form.html",
            _form_ctx(db, staff, facility, resident=resident, form=form),
            exc,
        )
    message = f"{resident.full_name}'s details were saved." if changed else "Nothing was changed."
    return flash_redirect(
        request,
        f"/staff/facilities/{facility.id}/residents/{resident.id}",
        message,
        "success" if changed else "info",
    )


def _detail_error(
    request: Request,
    db: Session,
    staff: StaffContext,
    facility: Facility,
    resident: Resident,
    clock: Clock,
    exc: DomainError,
    field: str,
    form: dict[str, Any],
) -> HTMLResponse:
    db.rollback()
    db.refresh(resident)
    return form_error(
        request,
        db,
        "residents/detail.html",
        _detail_ctx(db, staff, facility, resident, clock, form=form),
        exc,
        field=field,
    )


@pages.post(PAGE_ONE + "/pin", response_class=HTMLResponse)
def pin_submit(
    request: Request,
    facility_id: int,
    resident_id: int,
    staff: CurrentStaff,
    db: DbSession,
    clock: ClockDep,
    pin: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    facility, resident = service.access_resident(
        db, staff, facility_id, resident_id, Permission.MANAGE_RESIDENTS
    )
    try:
        service.set_pin(db, clock, staff.actor, resident, pin)
    except DomainError as exc:
        return _detail_error(request, db, staff, facility, resident, clock, exc, "pin", {})
    return flash_redirect(
        request,
        f"/staff/facilities/{facility.id}/residents/{resident.id}",
        f"A new PIN was set for {resident.full_name}. Tell them privately; "
        "it can't be shown again.",
    )


@pages.post(PAGE_ONE + "/custody", response_class=HTMLResponse)
def custody_submit(
    request: Request,
    facility_id: int,
    resident_id: int,
    staff: CurrentStaff,
    db: DbSession,
    clock: ClockDep,
    settings: SettingsDep,
    status: FormStr = "",
    custody_reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    facility, resident = service.access_resident(
        db, staff, facility_id, resident_id, Permission.MANAGE_RESIDENTS
    )
    form = {"status": status, "custody_reason": custody_reason}
    try:
        if status not in CustodyStatus._value2member_map_:
            raise DomainError(
                "Choose a custody status.",
                code=Code.INVALID_INPUT,
                fields={"status": "Choose a custody status"},
            )
        custody.change_custody_status(
            db, clock, settings, staff.actor, resident, CustodyStatus(status), custody_reason
        )
    except DomainError as exc:
        if "reason" in exc.fields:
            exc.fields = {"custody_reason": exc.fields["reason"]}
        return _detail_error(request, db, staff, facility, resident, clock, exc, "status", form)
    return flash_redirect(
        request,
        f"/staff/facilities/{facility.id}/residents/{resident.id}",
        f"{resident.full_name} is now marked {CUSTODY_LABELS[resident.custody_status].lower()}.",
    )


@pages.post(PAGE_ONE + "/restriction", response_class=HTMLResponse)
def restriction_submit(
    request: Request,
    facility_id: int,
    resident_id: int,
    staff: CurrentStaff,
    db: DbSession,
    clock: ClockDep,
    until: Annotated[str, Form(max_length=20)] = "",
    reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    facility, resident = service.access_resident(
        db, staff, facility_id, resident_id, Permission.MANAGE_RESIDENTS
    )
    form = {"until": until, "reason": reason}
    try:
        service.restrict_visits(
            db, clock, staff.actor, resident, service.end_of_local_day(facility, until), reason
        )
    except DomainError as exc:
        return _detail_error(request, db, staff, facility, resident, clock, exc, "until", form)
    return flash_redirect(
        request,
        f"/staff/facilities/{facility.id}/residents/{resident.id}",
        f"{resident.full_name} can't have visits until the end of {until}.",
    )


@pages.post(PAGE_ONE + "/restriction/lift", response_class=HTMLResponse)
def lift_submit(
    request: Request,
    facility_id: int,
    resident_id: int,
    staff: CurrentStaff,
    db: DbSession,
    clock: ClockDep,
) -> Response:
    facility, resident = service.access_resident(
        db, staff, facility_id, resident_id, Permission.MANAGE_RESIDENTS
    )
    try:
        service.lift_restriction(db, clock, staff.actor, resident)
    except DomainError as exc:
        return _detail_error(request, db, staff, facility, resident, clock, exc, "until", {})
    return flash_redirect(
        request,
        f"/staff/facilities/{facility.id}/residents/{resident.id}",
        f"The visit restriction on {resident.full_name} was lifted.",
    )
