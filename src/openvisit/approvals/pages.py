"""Who may visit whom, pages: a family finds a resident and asks to visit; staff decide; a
resident declines at the kiosk."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy.orm import Session

from openvisit import bounds
from openvisit.approvals import service
from openvisit.approvals.routes import DecidingReviewer
from openvisit.config import Settings
from openvisit.deps import (
    CurrentResident,
    CurrentVisitor,
    Id,
)
from openvisit.errors import DomainError, NotFound
from openvisit.facilities.models import Facility
from openvisit.facilities.service import list_public_facilities
from openvisit.people.models import Visitor
from openvisit.residents.models import Resident
from openvisit.web.answers import FormPage, Page
from openvisit.web.render import flash_redirect, render

router = APIRouter(include_in_schema=False)

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
CHILDREN = 3  # the request form has room for three
# The service names a child's fields by position in the list (minors.0.name); the form
# numbers them from 1 (child_name_1).
_CHILD_FIELDS = {
    f"minors.{n}.{part}": f"child_{short}_{n + 1}"
    for n in range(CHILDREN)
    for part, short in (("name", "name"), ("date_of_birth", "dob"))
}


def _signer(settings: Settings) -> URLSafeSerializer:
    return URLSafeSerializer(settings.secret_key, salt="resident-found")


@router.get("/visits/find", response_class=HTMLResponse)
def find_page(
    page: Page,
    visitor: CurrentVisitor,
    facility_id: str = "",
    booking_number: str = "",
    last_name: str = "",
) -> Response:
    ctx: dict[str, Any] = {
        "visitor": visitor.visitor,
        "facilities": list_public_facilities(page.db),
        "form": {
            "facility_id": facility_id,
            "booking_number": booking_number[:40],
            "last_name": last_name[:100],
        },
    }
    if not (facility_id or booking_number or last_name):
        return page.render("approvals/find.html", ctx)
    errors = {}
    chosen = bounds.parse_id(facility_id)
    if chosen is None:
        errors["facility_id"] = "Choose the facility"
    if not booking_number.strip():
        errors["booking_number"] = "Enter the booking number"
    if not last_name.strip():
        errors["last_name"] = "Enter their last name"
    if errors or chosen is None:
        return page.render("approvals/find.html", {**ctx, "errors": errors}, 422)
    try:
        resident = service.find_resident_for_visitor(
            page.db, chosen, booking_number[:40], last_name[:100]
        )
    except NotFound:
        facility = page.db.get(Facility, chosen)
        return page.render(
            "approvals/not_found.html", {**ctx, "facility": facility}, status_code=404
        )
    token = _signer(page.settings).dumps([visitor.visitor.id, resident.id])
    return flash_redirect(
        page.request,
        f"/visits/request?found={token}",
        f"We found {resident.first_name} {resident.last_name[:1]}.",
        "info",
    )


def _found(settings: Settings, db: Session, visitor_id: Id, token: str) -> Resident:
    """The resident the visitor found by number and name (signed, so ids can't be guessed)."""
    try:
        owner, resident_id = _signer(settings).loads(token)
    except (BadSignature, ValueError, TypeError):
        raise NotFound("Find the resident first.") from None
    resident = db.get(Resident, resident_id) if owner == visitor_id else None
    if resident is None:
        raise NotFound("Find the resident first.")
    return resident


def _request_context(
    db: Session, visitor: Visitor, resident: Resident, found: str
) -> dict[str, Any]:
    return {
        "visitor": visitor,
        "resident": resident,
        "found": found,
        "facility": db.get(Facility, resident.facility_id),
        "relationships": RELATIONSHIPS,
    }


@router.get("/visits/request", response_class=HTMLResponse)
def request_page(page: Page, visitor: CurrentVisitor, found: str = "") -> HTMLResponse:
    resident = _found(page.settings, page.db, visitor.visitor.id, found)
    return page.render(
        "approvals/request.html",
        _request_context(page.db, visitor.visitor, resident, found),
    )


@router.post("/visits/request", response_class=HTMLResponse)
def request_submit(
    visitor: CurrentVisitor,
    page: Page,
    found: Annotated[str, Form(max_length=500)] = "",
    relationship: FormStr = "",
    child_name_1: FormStr = "",
    child_dob_1: FormStr = "",
    child_name_2: FormStr = "",
    child_dob_2: FormStr = "",
    child_name_3: FormStr = "",
    child_dob_3: FormStr = "",
) -> Response:
    resident = _found(page.settings, page.db, visitor.visitor.id, found)
    children = [
        (child_name_1, child_dob_1),
        (child_name_2, child_dob_2),
        (child_name_3, child_dob_3),
    ]
    minors = [{"name": n, "date_of_birth": d} for n, d in children if n.strip() or d.strip()]
    try:
        service.request_approval(
            page.db,
            page.clock,
            visitor.visitor,
            visitor.actor,
            resident=resident,
            relationship=relationship,
            minors=minors,
        )
    except DomainError as exc:
        form = {"relationship": relationship}
        for n, (name, dob) in enumerate(children, start=1):
            form |= {f"child_name_{n}": name, f"child_dob_{n}": dob}
        return page.refused(
            exc,
            FormPage(
                "approvals/request.html",
                lambda: {
                    **_request_context(page.db, visitor.visitor, resident, found),
                    "form": form,
                },
                field="relationship",
                rename=_CHILD_FIELDS,
            ),
        )
    facility = page.db.get(Facility, resident.facility_id)
    return page.done(
        "/visits",
        f"Request sent. {facility.name if facility else 'The facility'} will "
        "reply by e-mail, usually within 5 working days.",
    )


# --- staff -----------------------------------------------------------------------------


@router.get("/staff/facilities/{facility_id}/approvals", response_class=HTMLResponse)
def queue_page(request: Request, reviewer: DecidingReviewer) -> HTMLResponse:
    queue = service.review_queue(reviewer.db, reviewer.facility.id)
    return render(
        request,
        "approvals/queue.html",
        {
            "staff": reviewer.staff,
            "facility": reviewer.facility,
            "pending": queue.pending,
            "visitors": queue.visitors,
            "residents": queue.residents,
            "verified_here": queue.verified_here,
        },
    )


@router.post(
    "/staff/facilities/{facility_id}/approvals/{approval_id}/decide", response_class=HTMLResponse
)
def decide_submit(
    approval_id: Id,
    reviewer: DecidingReviewer,
    page: Page,
    decision: Annotated[Literal["approve", "deny"], Form()],
    reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    back = f"/staff/facilities/{reviewer.facility.id}/approvals"
    try:
        approval = reviewer.decide(approval_id, approve=decision == "approve", reason=reason)
    except DomainError as exc:
        return page.refused_to(exc, back)
    visitor = reviewer.db.get(Visitor, approval.visitor_id)
    name = visitor.legal_name if visitor else "The visitor"
    verb = "approved" if decision == "approve" else "not approved"
    return page.done(back, f"{name} {verb}. We e-mailed them.")


# --- kiosk -----------------------------------------------------------------------------


@router.post("/kiosk/requests/{approval_id}/decline", response_class=HTMLResponse)
def kiosk_decline_submit(
    approval_id: Id,
    kiosk: CurrentResident,
    page: Page,
) -> Response:
    assert kiosk.resident_id is not None  # CurrentResident has one
    service.resident_decline(
        page.db, page.clock, kiosk.actor, resident_id=kiosk.resident_id, approval_id=approval_id
    )
    return page.done("/kiosk", "Request declined. The visitor won't be told who declined.")
