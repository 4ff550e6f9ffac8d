"""Pages: a family asks to visit someone; staff decide; a resident declines at the kiosk."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import select

from openvisit.approvals import service
from openvisit.auth.permissions import Permission
from openvisit.deps import (
    ClockDep,
    CurrentResident,
    CurrentStaff,
    CurrentVisitor,
    DbSession,
    SettingsDep,
)
from openvisit.errors import DomainError, NotFound
from openvisit.facilities.models import Facility
from openvisit.facilities.service import access_facility
from openvisit.people.models import Visitor
from openvisit.residents.models import Resident
from openvisit.web.render import flash_redirect, form_error, render

pages = APIRouter(include_in_schema=False)

RELATIONSHIPS = [
    ("parent", "Parent"),
    ("child", "Son or daughter"),
    ("sibling", "Brother or sister"),
    ("spouse", "Husband, wife or partner"),
    ("grandparent", "Grandparent"),
    ("other family", "Other family"),
    ("friend", "Friend"),
    ("attorney", "Attorney"),
    ("clergy", "Clergy"),
]
FormStr = Annotated[str, Form(max_length=120)]


def _signer(settings: SettingsDep) -> URLSafeSerializer:
    return URLSafeSerializer(settings.secret_key, salt="resident-found")


def _facilities(db: DbSession) -> list[Facility]:
    return list(db.scalars(select(Facility).order_by(Facility.name)))


@pages.get("/visits/find", response_class=HTMLResponse)
def find_page(
    request: Request,
    visitor: CurrentVisitor,
    db: DbSession,
    settings: SettingsDep,
    facility_id: str = "",
    booking_number: str = "",
    last_name: str = "",
) -> Response:
    ctx: dict[str, Any] = {
        "visitor": visitor.visitor,
        "facilities": _facilities(db),
        "form": {
            "facility_id": facility_id,
            "booking_number": booking_number[:40],
            "last_name": last_name[:100],
        },
    }
    if not (facility_id or booking_number or last_name):
        return render(request, "approvals/find.html", ctx)
    errors = {}
    if not facility_id.isdigit():
        errors["facility_id"] = "Choose the facility"
    if not booking_number.strip():
        errors["booking_number"] = "Enter the booking number"
    if not last_name.strip():
        errors["last_name"] = "Enter their last name"
    if errors:
        return render(request, "approvals/find.html", {**ctx, "errors": errors}, 422)
    try:
        resident = service.find_resident_for_visitor(
            db, int(facility_id), booking_number[:40], last_name[:100]
        )
    except NotFound:
        facility = db.get(Facility, int(facility_id))
        return render(
            request, "approvals/not_found.html", {**ctx, "facility": facility}, status_code=404
        )
    token = _signer(settings).dumps([visitor.visitor.id, resident.id])
    return flash_redirect(
        request,
        f"/visits/request?found={token}",
        f"We found {resident.first_name} {resident.last_name[:1]}.",
        "info",
    )


def _found(settings: SettingsDep, db: DbSession, visitor_id: int, token: str) -> Resident:
    """The resident the visitor found by number and name (signed, so ids can't be guessed)."""
    try:
        owner, resident_id = _signer(settings).loads(token)
    except (BadSignature, ValueError, TypeError):
        raise NotFound("Find the resident first.") from None
    resident = db.get(Resident, resident_id) if owner == visitor_id else None
    if resident is None:
        raise NotFound("Find the resident first.")
    return resident


@pages.get("/visits/request", response_class=HTMLResponse)
def request_page(
    request: Request, visitor: CurrentVisitor, db: DbSession, settings: SettingsDep, found: str = ""
) -> HTMLResponse:
    resident = _found(settings, db, visitor.visitor.id, found)
    return render(
        request,
        "approvals/request.html",
        {
            "visitor": visitor.visitor,
            "resident": resident,
            "found": found,
            "facility": db.get(Facility, resident.facility_id),
            "relationships": RELATIONSHIPS,
        },
    )


@pages.post("/visits/request", response_class=HTMLResponse)
def request_submit(
    request: Request,
    visitor: CurrentVisitor,
    db: DbSession,
    clock: ClockDep,
    settings: SettingsDep,
    found: Annotated[str, Form(max_length=500)] = "",
    relationship: FormStr = "",
    child_name_1: FormStr = "",
    child_dob_1: FormStr = "",
    child_name_2: FormStr = "",
    child_dob_2: FormStr = "",
    child_name_3: FormStr = "",
    child_dob_3: FormStr = "",
) -> Response:
    resident = _found(settings, db, visitor.visitor.id, found)
    facility = db.get(Facility, resident.facility_id)
    children = [
        (child_name_1, child_dob_1),
        (child_name_2, child_dob_2),
        (child_name_3, child_dob_3),
    ]
    minors = [{"name": n, "date_of_birth": d} for n, d in children if n.strip() or d.strip()]
    try:
        service.request_approval(
            db,
            clock,
            visitor.visitor,
            visitor.actor,
            resident=resident,
            relationship=relationship,
            minors=minors,
        )
    except DomainError as exc:
        for key in list(exc.fields):
            if key.startswith("minors."):
                _, index, part = key.split(".")
                exc.fields[f"child_{'name' if part == 'name' else 'dob'}_{int(index) + 1}"] = (
                    exc.fields.pop(key)
                )
        form = {
            "relationship": relationship,
            "child_name_1": child_name_1,
            "child_dob_1": child_dob_1,
            "child_name_2": child_name_2,
            "child_dob_2": child_dob_2,
            "child_name_3": child_name_3,
            "child_dob_3": child_dob_3,
        }
        return form_error(
            request,
            db,
            "approvals/request.html",
            {
                "visitor": visitor.visitor,
                "resident": resident,
                "found": found,
                "form": form,
                "facility": facility,
                "relationships": RELATIONSHIPS,
            },
            exc,
            field="relationship",
        )
    return flash_redirect(
        request,
        "/visits",
        f"Request sent. {facility.name if facility else 'The facility'} will "
        "reply by e-mail, usually within 5 working days.",
    )


# --- staff -----------------------------------------------------------------------------


@pages.get("/staff/facilities/{facility_id}/approvals", response_class=HTMLResponse)
def queue_page(
    request: Request, facility_id: int, staff: CurrentStaff, db: DbSession
) -> HTMLResponse:
    facility = access_facility(db, staff, facility_id, Permission.REVIEW_VISITORS)
    pending = service.pending_for_facility(db, facility.id)
    visitors = {
        v.id: v
        for v in db.scalars(select(Visitor).where(Visitor.id.in_({a.visitor_id for a in pending})))
    }
    residents = {
        r.id: r
        for r in db.scalars(
            select(Resident).where(Resident.id.in_({a.resident_id for a in pending}))
        )
    }
    return render(
        request,
        "approvals/queue.html",
        {
            "staff": staff,
            "facility": facility,
            "pending": pending,
            "visitors": visitors,
            "residents": residents,
        },
    )


@pages.post(
    "/staff/facilities/{facility_id}/approvals/{approval_id}/decide", response_class=HTMLResponse
)
def decide_submit(
    request: Request,
    facility_id: int,
    approval_id: int,
    staff: CurrentStaff,
    db: DbSession,
    clock: ClockDep,
    settings: SettingsDep,
    decision: FormStr = "",
    reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    facility = access_facility(db, staff, facility_id, Permission.REVIEW_VISITORS)
    back = f"/staff/facilities/{facility.id}/approvals"
    try:
        approval = service.decide(
            db,
            clock,
            settings,
            staff.actor,
            staff.member.id,
            facility_id=facility.id,
            approval_id=approval_id,
            approve=decision == "approve",
            reason=reason,
        )
    except DomainError as exc:
        db.rollback()
        return flash_redirect(request, back, exc.message, "error")
    visitor = db.get(Visitor, approval.visitor_id)
    name = visitor.legal_name if visitor else "The visitor"
    verb = "approved" if decision == "approve" else "not approved"
    return flash_redirect(request, back, f"{name} {verb}. We e-mailed them.")


# --- kiosk -----------------------------------------------------------------------------


@pages.post("/kiosk/requests/{approval_id}/decline", response_class=HTMLResponse)
def kiosk_decline_submit(
    request: Request, approval_id: int, kiosk: CurrentResident, db: DbSession, clock: ClockDep
) -> Response:
    assert kiosk.resident_id is not None
    service.resident_decline(
        db, clock, kiosk.actor, resident_id=kiosk.resident_id, approval_id=approval_id
    )
    return flash_redirect(
        request, "/kiosk", "Request declined. The visitor won't be told who declined."
    )
