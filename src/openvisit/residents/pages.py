"""Residents' pages: the staff's (list, add, edit, PIN, custody, restriction, import) and
the kiosk's (a resident signs in, sees their visits and requests, signs out)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Request, Response, UploadFile
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from openvisit import bounds
from openvisit.approvals import service as approvals
from openvisit.auth.permissions import Permission
from openvisit.clock import Clock
from openvisit.deps import (
    ClockDep,
    CurrentKiosk,
    CurrentStaff,
    DbSession,
    OptionalKiosk,
    ResidentsManagedFacility,
    ResidentsViewedFacility,
)
from openvisit.errors import DomainError, InvalidInput
from openvisit.facilities import units
from openvisit.facilities.models import Facility, KioskLocation
from openvisit.flows import custody
from openvisit.people.context import StaffContext
from openvisit.people.models import Visitor
from openvisit.residents import kiosk_session, roster, service
from openvisit.residents.models import CustodyStatus, Resident
from openvisit.residents.pins import PIN_RULE
from openvisit.residents.routes import DryRun, ManagedResident, PageNumber, Search, ViewedResident
from openvisit.scheduling import presenters
from openvisit.scheduling import service as scheduling
from openvisit.web.answers import FormPage, Page
from openvisit.web.render import flash_redirect, redirect, render

router = APIRouter(include_in_schema=False)

PAGES = "/staff/facilities/{facility_id}/residents"
PAGE_ONE = PAGES + "/{resident_id}"
CUSTODY_LABELS = {
    CustodyStatus.IN_CUSTODY: "In custody",
    CustodyStatus.RELEASED: "Released",
    CustodyStatus.TRANSFERRED: "Transferred",
}
FormStr = Annotated[str, Form(max_length=200)]


def _url(resident: Resident) -> str:
    return f"/staff/facilities/{resident.facility_id}/residents/{resident.id}"


def _ctx(staff: StaffContext, facility: Facility, **extra: Any) -> dict[str, Any]:
    return {
        "staff": staff,
        "facility": facility,
        "custody_labels": CUSTODY_LABELS,
        "can_manage": staff.can(facility.id, Permission.MANAGE_RESIDENTS),
        **extra,
    }


def _form_ctx(db: Session, staff: StaffContext, facility: Facility, **extra: Any) -> dict[str, Any]:
    found = units.list_units(db, facility)
    options = [("", "Choose a unit")] + [(u.id, u.name) for u in found]
    return _ctx(staff, facility, units=found, unit_options=options, **extra)


def _detail_ctx(
    db: Session,
    clock: Clock,
    staff: StaffContext,
    facility: Facility,
    resident: Resident,
    **extra: Any,
) -> dict[str, Any]:
    return _ctx(
        staff,
        facility,
        resident=resident,
        unit_name=units.unit_names(db, facility).get(resident.unit_id or 0, ""),
        restricted=service.is_restricted(resident, clock.now()),
        **extra,
    )


def _detail_form(
    db: Session,
    clock: Clock,
    staff: StaffContext,
    facility: Facility,
    resident: Resident,
    *,
    field: str,
    form: dict[str, str],
    rename: dict[str, str] | None = None,
) -> FormPage:
    """The resident's page again, with a refusal against one of its forms."""
    return FormPage(
        "residents/detail.html",
        lambda: _detail_ctx(db, clock, staff, facility, resident, form=form),
        field=field,
        rename=rename or {},
    )


# --- the list, adding and editing ----------------------------------------------------


@router.get(PAGES, response_class=HTMLResponse)
def list_page(
    request: Request,
    facility: ResidentsViewedFacility,
    staff: CurrentStaff,
    db: DbSession,
    q: Search = "",
    status: CustodyStatus | Literal[""] = "",
    page: PageNumber = 1,
) -> HTMLResponse:
    found = service.list_residents(db, facility.id, query=q, status=status or None, page=page)
    any_at_all = found.total > 0 or service.count_residents(db, facility.id) > 0
    return render(
        request,
        "residents/list.html",
        _ctx(
            staff,
            facility,
            found=found,
            any_at_all=any_at_all,
            units=units.unit_names(db, facility),
        ),
    )


class ResidentForm(BaseModel):
    booking_number: str = Field(default="", max_length=200)
    first_name: str = Field(default="", max_length=200)
    last_name: str = Field(default="", max_length=200)
    date_of_birth: str = Field(default="", max_length=200)
    unit_id: str = Field(default="", max_length=200)
    preferred_language: str = Field(default="en", max_length=200)

    def details(self) -> dict[str, Any]:
        """The details as the service takes them; a unit that is not an id is no unit."""
        unit_id = bounds.parse_id(self.unit_id) or -1
        return {**self.model_dump(), "unit_id": unit_id}


def _resident_form(
    db: Session,
    staff: StaffContext,
    facility: Facility,
    resident: Resident | None,
    form: ResidentForm,
) -> FormPage:
    """The add form (no resident yet) or the edit form again, holding what was typed."""
    return FormPage(
        "residents/form.html",
        lambda: _form_ctx(db, staff, facility, resident=resident, form=form.model_dump()),
    )


@router.get(PAGES + "/new", response_class=HTMLResponse)
def new_page(
    request: Request, facility: ResidentsManagedFacility, staff: CurrentStaff, db: DbSession
) -> HTMLResponse:
    ctx = _form_ctx(db, staff, facility, resident=None, form={"preferred_language": "en"})
    return render(request, "residents/form.html", ctx)


@router.post(PAGES + "/new", response_class=HTMLResponse)
def new_submit(
    facility: ResidentsManagedFacility,
    form: Annotated[ResidentForm, Form()],
    staff: CurrentStaff,
    page: Page,
) -> Response:
    try:
        resident = service.create_resident(
            page.db, page.clock, staff.actor, facility, **form.details()
        )
    except DomainError as exc:
        return page.refused(exc, _resident_form(page.db, staff, facility, None, form))
    return page.done(
        _url(resident),
        f"{resident.full_name} ({resident.booking_number}) was added. "
        "Set a PIN so they can sign in at a kiosk.",
    )


# The import pages come before /{resident_id} so "import" is never read as an id.
@router.get(PAGES + "/import", response_class=HTMLResponse)
def import_page(
    request: Request, facility: ResidentsManagedFacility, staff: CurrentStaff, db: DbSession
) -> HTMLResponse:
    return render(
        request, "residents/import.html", _form_ctx(db, staff, facility, columns=roster.COLUMNS)
    )


@router.post(PAGES + "/import", response_class=HTMLResponse)
def import_submit(
    page: Page,
    facility: ResidentsManagedFacility,
    staff: CurrentStaff,
    roster_file: Annotated[UploadFile | None, File(alias="roster")] = None,
    dry_run: DryRun = False,
) -> HTMLResponse:
    def context() -> dict[str, Any]:
        return _form_ctx(
            page.db, staff, facility, columns=roster.COLUMNS, form={"dry_run": dry_run}
        )

    data = roster_file.file.read(page.settings.upload_max_bytes + 1) if roster_file else b""
    try:
        report = roster.import_roster(
            page.db, page.settings, page.clock, staff.actor, facility, data, dry_run=dry_run
        )
    except roster.RosterRejected as exc:
        rejected = exc.report
        return page.refused(
            exc,
            FormPage("residents/import_report.html", lambda: {**context(), "report": rejected}),
        )
    except DomainError as exc:
        return page.refused(exc, FormPage("residents/import.html", context, field="roster"))
    return page.render("residents/import_report.html", {**context(), "report": report})


@router.get(PAGE_ONE, response_class=HTMLResponse)
def detail_page(
    page: Page,
    facility: ResidentsViewedFacility,
    resident: ViewedResident,
    staff: CurrentStaff,
) -> HTMLResponse:
    return page.render(
        "residents/detail.html",
        _detail_ctx(page.db, page.clock, staff, facility, resident),
    )


@router.get(PAGE_ONE + "/edit", response_class=HTMLResponse)
def edit_page(
    request: Request,
    facility: ResidentsManagedFacility,
    resident: ManagedResident,
    staff: CurrentStaff,
    db: DbSession,
) -> HTMLResponse:
    form = {name: getattr(resident, name) for name in service.EDITABLE}
    form["date_of_birth"] = resident.date_of_birth.isoformat()
    ctx = _form_ctx(db, staff, facility, resident=resident, form=form)
    return render(request, "residents/form.html", ctx)


@router.post(PAGE_ONE + "/edit", response_class=HTMLResponse)
def edit_submit(
    page: Page,
    facility: ResidentsManagedFacility,
    resident: ManagedResident,
    form: Annotated[ResidentForm, Form()],
    staff: CurrentStaff,
) -> Response:
    try:
        changed = service.update_resident(
            page.db, page.clock, staff.actor, facility, resident, **form.details()
        )
    except DomainError as exc:
        return page.refused(exc, _resident_form(page.db, staff, facility, resident, form))
    if not changed:
        return flash_redirect(page.request, _url(resident), "Nothing was changed.", kind="info")
    return page.done(_url(resident), f"{resident.full_name}'s details were saved.")


# --- the resident's page: PIN, custody, restriction ----------------------------------


@router.post(PAGE_ONE + "/pin", response_class=HTMLResponse)
def pin_submit(
    facility: ResidentsManagedFacility,
    resident: ManagedResident,
    staff: CurrentStaff,
    page: Page,
    pin: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    try:
        service.set_pin(page.db, page.clock, staff.actor, resident, pin)
    except DomainError as exc:
        return page.refused(
            exc, _detail_form(page.db, page.clock, staff, facility, resident, field="pin", form={})
        )
    return page.done(
        _url(resident),
        f"A new PIN was set for {resident.full_name}. Tell them privately; "
        "it can't be shown again.",
    )


@router.post(PAGE_ONE + "/custody", response_class=HTMLResponse)
def custody_submit(
    facility: ResidentsManagedFacility,
    resident: ManagedResident,
    staff: CurrentStaff,
    page: Page,
    status: FormStr = "",
    custody_reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    try:
        if status not in CustodyStatus._value2member_map_:
            raise InvalidInput(
                "Choose a custody status.", fields={"status": "Choose a custody status"}
            )
        custody.change_custody_status(
            page.db,
            page.clock,
            page.settings,
            staff.actor,
            resident,
            CustodyStatus(status),
            custody_reason,
        )
    except DomainError as exc:
        form = {"status": status, "custody_reason": custody_reason}
        return page.refused(
            exc,
            _detail_form(
                page.db,
                page.clock,
                staff,
                facility,
                resident,
                field="status",
                form=form,
                rename={"reason": "custody_reason"},
            ),
        )
    label = CUSTODY_LABELS[resident.custody_status].lower()
    return page.done(_url(resident), f"{resident.full_name} is now marked {label}.")


@router.post(PAGE_ONE + "/restriction", response_class=HTMLResponse)
def restriction_submit(
    facility: ResidentsManagedFacility,
    resident: ManagedResident,
    staff: CurrentStaff,
    page: Page,
    until: Annotated[str, Form(max_length=20)] = "",
    reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    try:
        service.restrict_visits(
            page.db,
            page.clock,
            staff.actor,
            resident,
            service.end_of_local_day(facility, until),
            reason,
        )
    except DomainError as exc:
        form = {"until": until, "reason": reason}
        return page.refused(
            exc,
            _detail_form(page.db, page.clock, staff, facility, resident, field="until", form=form),
        )
    return page.done(
        _url(resident), f"{resident.full_name} can't have visits until the end of {until}."
    )


@router.post(PAGE_ONE + "/restriction/lift", response_class=HTMLResponse)
def lift_submit(
    facility: ResidentsManagedFacility,
    resident: ManagedResident,
    staff: CurrentStaff,
    page: Page,
) -> Response:
    try:
        service.lift_restriction(page.db, page.clock, staff.actor, resident)
    except DomainError as exc:
        return page.refused(
            exc,
            _detail_form(page.db, page.clock, staff, facility, resident, field="until", form={}),
        )
    return page.done(_url(resident), f"The visit restriction on {resident.full_name} was lifted.")


# --- the kiosk -----------------------------------------------------------------------


@router.get("/kiosk", response_class=HTMLResponse)
def kiosk_home(
    page: Page,
    kiosk: OptionalKiosk,
) -> HTMLResponse:
    if kiosk is None:
        return page.render("kiosk/not_set_up.html")
    view = kiosk_session.kiosk_view(page.db, kiosk)
    if not view.kiosk.in_service:
        return page.render("kiosk/out_of_service.html", {"kiosk": view.kiosk})
    if view.kiosk.location != KioskLocation.HOUSING:
        return page.render("kiosk/lobby.html", {"kiosk": view.kiosk})
    if view.resident is None:
        return page.render("kiosk/sign_in.html", {"kiosk": view.kiosk, "pin_rule": PIN_RULE})
    visits = scheduling.upcoming_for_resident(page.db, view.resident.id, page.clock.now())
    requests = approvals.pending_for_resident(page.db, view.resident.id)
    visitor_ids = {v.visitor_id for v in visits} | {a.visitor_id for a in requests}
    names = {
        v.id: v.legal_name
        for v in page.db.scalars(select(Visitor).where(Visitor.id.in_(visitor_ids)))
    }
    return page.render(
        "kiosk/home.html",
        {
            "kiosk": view.kiosk,
            "resident": view.resident,
            "visits": visits,
            "requests": requests,
            "names": names,
            "facility": page.db.get(Facility, view.resident.facility_id),
            "span": presenters.span_label,
            "type_names": presenters.TYPE_NAMES,
        },
    )


@router.post("/kiosk/sign-in", response_class=HTMLResponse)
def sign_in_submit(
    kiosk: CurrentKiosk,
    page: Page,
    booking_number: Annotated[str, Form(max_length=60)] = "",
    pin: Annotated[str, Form(max_length=30)] = "",
) -> Response:
    try:
        kiosk_session.resident_sign_in(
            page.db, page.settings, page.clock, kiosk, booking_number=booking_number, pin=pin
        )
    except (kiosk_session.KioskOutOfService, kiosk_session.ResidentAtLobbyKiosk) as exc:
        return page.refused_to(exc, "/kiosk")
    except DomainError as exc:
        return page.refused(
            exc,
            FormPage(
                "kiosk/sign_in.html",
                lambda: {
                    "kiosk": kiosk_session.kiosk_view(page.db, kiosk).kiosk,
                    "form": {"booking_number": booking_number},
                    "pin_rule": PIN_RULE,
                },
                field="booking_number",
            ),
        )
    return redirect("/kiosk")


@router.post("/kiosk/sign-out")
def sign_out_submit(kiosk: CurrentKiosk, db: DbSession, clock: ClockDep) -> Response:
    kiosk_session.resident_sign_out(db, clock, kiosk)
    return redirect("/kiosk")
