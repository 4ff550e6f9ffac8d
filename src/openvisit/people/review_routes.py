"""Staff review queues: identity documents and professional credentials (API and pages).

Every route authorizes the facility first (access_facility), then looks the
review up with that facility's id, so another facility's reviews are "not found".
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import FileResponse, HTMLResponse

from openvisit.auth.permissions import Permission
from openvisit.deps import ClockDep, CurrentStaff, DbSession, SettingsDep
from openvisit.errors import DomainError
from openvisit.facilities.service import access_facility
from openvisit.people import service as people
from openvisit.people.schemas import (
    CredentialOut,
    CredentialReviewOut,
    IdentityReviewOut,
    IdentitySubmissionOut,
    RejectBody,
)
from openvisit.web.render import flash_redirect, form_error, render

api = APIRouter(tags=["reviews"])
pages = APIRouter(include_in_schema=False)

REVIEW = {"x-permission": Permission.REVIEW_VISITORS.value}


# --- API: identity ---------------------------------------------------------------------


@api.get(
    "/facilities/{facility_id}/identity-reviews",
    response_model=list[IdentityReviewOut],
    openapi_extra=REVIEW,
)
def api_identity_reviews(
    facility_id: int, staff: CurrentStaff, db: DbSession
) -> list[IdentityReviewOut]:
    """Identity checks waiting for this facility, oldest first."""
    facility = access_facility(db, staff, facility_id, Permission.REVIEW_VISITORS)
    return [IdentityReviewOut.review(s, v) for s, v in people.list_identity_reviews(db, facility)]


@api.get(
    "/facilities/{facility_id}/identity-reviews/{review_id}",
    response_model=IdentityReviewOut,
    openapi_extra=REVIEW,
)
def api_identity_review(
    facility_id: int, review_id: int, staff: CurrentStaff, db: DbSession
) -> IdentityReviewOut:
    facility = access_facility(db, staff, facility_id, Permission.REVIEW_VISITORS)
    return IdentityReviewOut.review(*people.access_identity_review(db, facility, review_id))


@api.get(
    "/facilities/{facility_id}/identity-reviews/{review_id}/files/{document}",
    openapi_extra=REVIEW,
    response_class=FileResponse,
)
def api_identity_file(
    facility_id: int,
    review_id: int,
    document: Literal["photo_id", "selfie"],
    staff: CurrentStaff,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
) -> FileResponse:
    """The private image itself; never cached, every viewing audited."""
    facility = access_facility(db, staff, facility_id, Permission.REVIEW_VISITORS)
    path, media_type = people.identity_document(
        db, clock, settings, staff.actor, facility, review_id, document
    )
    return FileResponse(
        path,
        media_type=media_type,
        headers={"Cache-Control": "no-store", "Content-Disposition": "inline"},
    )


@api.post(
    "/facilities/{facility_id}/identity-reviews/{review_id}/verify",
    response_model=IdentitySubmissionOut,
    openapi_extra=REVIEW,
)
def api_identity_verify(
    facility_id: int,
    review_id: int,
    staff: CurrentStaff,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
) -> IdentitySubmissionOut:
    facility = access_facility(db, staff, facility_id, Permission.REVIEW_VISITORS)
    return IdentitySubmissionOut.of(
        people.decide_identity(db, clock, settings, staff.actor, facility, review_id, verified=True)
    )


@api.post(
    "/facilities/{facility_id}/identity-reviews/{review_id}/reject",
    response_model=IdentitySubmissionOut,
    openapi_extra=REVIEW,
)
def api_identity_reject(
    facility_id: int,
    review_id: int,
    body: RejectBody,
    staff: CurrentStaff,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
) -> IdentitySubmissionOut:
    facility = access_facility(db, staff, facility_id, Permission.REVIEW_VISITORS)
    return IdentitySubmissionOut.of(
        people.decide_identity(
            db,
            clock,
            settings,
            staff.actor,
            facility,
            review_id,
            verified=False,
            reason=body.reason,
        )
    )


# --- API: credentials ------------------------------------------------------------------


@api.get(
    "/facilities/{facility_id}/credential-reviews",
    response_model=list[CredentialReviewOut],
    openapi_extra=REVIEW,
)
def api_credential_reviews(
    facility_id: int, staff: CurrentStaff, db: DbSession
) -> list[CredentialReviewOut]:
    facility = access_facility(db, staff, facility_id, Permission.REVIEW_VISITORS)
    return [
        CredentialReviewOut.review(c, v) for c, v in people.list_credential_reviews(db, facility)
    ]


@api.post(
    "/facilities/{facility_id}/credential-reviews/{review_id}/verify",
    response_model=CredentialOut,
    openapi_extra=REVIEW,
)
def api_credential_verify(
    facility_id: int,
    review_id: int,
    staff: CurrentStaff,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
) -> CredentialOut:
    facility = access_facility(db, staff, facility_id, Permission.REVIEW_VISITORS)
    return CredentialOut.of(
        people.decide_credential(
            db, clock, settings, staff.actor, facility, review_id, verified=True
        )
    )


@api.post(
    "/facilities/{facility_id}/credential-reviews/{review_id}/reject",
    response_model=CredentialOut,
    openapi_extra=REVIEW,
)
def api_credential_reject(
    facility_id: int,
    review_id: int,
    body: RejectBody,
    staff: CurrentStaff,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
) -> CredentialOut:
    facility = access_facility(db, staff, facility_id, Permission.REVIEW_VISITORS)
    return CredentialOut.of(
        people.decide_credential(
            db,
            clock,
            settings,
            staff.actor,
            facility,
            review_id,
            verified=False,
            reason=body.reason,
        )
    )


# --- pages -----------------------------------------------------------------------------


@pages.get("/staff/facilities/{facility_id}/identity-reviews", response_class=HTMLResponse)
def identity_queue_page(
    request: Request, facility_id: int, staff: CurrentStaff, db: DbSession
) -> HTMLResponse:
    facility = access_facility(db, staff, facility_id, Permission.REVIEW_VISITORS)
    return render(
        request,
        "people/staff_identity_reviews.html",
        {
            "staff": staff,
            "facility": facility,
            "reviews": people.list_identity_reviews(db, facility),
        },
    )


def _identity_detail(
    request: Request, staff: CurrentStaff, db: DbSession, facility_id: int, review_id: int
) -> dict[str, object]:
    facility = access_facility(db, staff, facility_id, Permission.REVIEW_VISITORS)
    submission, visitor = people.access_identity_review(db, facility, review_id)
    return {"staff": staff, "facility": facility, "submission": submission, "visitor": visitor}


@pages.get(
    "/staff/facilities/{facility_id}/identity-reviews/{review_id}", response_class=HTMLResponse
)
def identity_review_page(
    request: Request, facility_id: int, review_id: int, staff: CurrentStaff, db: DbSession
) -> HTMLResponse:
    return render(
        request,
        "people/staff_identity_review.html",
        _identity_detail(request, staff, db, facility_id, review_id),
    )


@pages.post(
    "/staff/facilities/{facility_id}/identity-reviews/{review_id}/verify",
    response_class=HTMLResponse,
)
def identity_verify_submit(
    request: Request,
    facility_id: int,
    review_id: int,
    staff: CurrentStaff,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
) -> Response:
    facility = access_facility(db, staff, facility_id, Permission.REVIEW_VISITORS)
    queue = f"/staff/facilities/{facility_id}/identity-reviews"
    try:
        submission = people.decide_identity(
            db, clock, settings, staff.actor, facility, review_id, verified=True
        )
    except DomainError as exc:
        ctx = _identity_detail(request, staff, db, facility_id, review_id)
        return form_error(request, db, "people/staff_identity_review.html", ctx, exc)
    name = _visitor_name(db, submission.visitor_id)
    return flash_redirect(request, queue, f"{name}'s identity is confirmed. We've e-mailed them.")


@pages.post(
    "/staff/facilities/{facility_id}/identity-reviews/{review_id}/reject",
    response_class=HTMLResponse,
)
def identity_reject_submit(
    request: Request,
    facility_id: int,
    review_id: int,
    staff: CurrentStaff,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    facility = access_facility(db, staff, facility_id, Permission.REVIEW_VISITORS)
    queue = f"/staff/facilities/{facility_id}/identity-reviews"
    try:
        submission = people.decide_identity(
            db, clock, settings, staff.actor, facility, review_id, verified=False, reason=reason
        )
    except DomainError as exc:
        ctx = _identity_detail(request, staff, db, facility_id, review_id)
        ctx["form"] = {"reason": reason}
        return form_error(
            request, db, "people/staff_identity_review.html", ctx, exc, field="reason"
        )
    name = _visitor_name(db, submission.visitor_id)
    return flash_redirect(
        request, queue, f"{name}'s identity was not confirmed. We've e-mailed them the reason."
    )


def _visitor_name(db: DbSession, visitor_id: int) -> str:
    from openvisit.people.models import Visitor

    visitor = db.get(Visitor, visitor_id)
    return visitor.legal_name if visitor else "The visitor"


@pages.get("/staff/facilities/{facility_id}/credential-reviews", response_class=HTMLResponse)
def credential_queue_page(
    request: Request, facility_id: int, staff: CurrentStaff, db: DbSession
) -> HTMLResponse:
    facility = access_facility(db, staff, facility_id, Permission.REVIEW_VISITORS)
    return render(
        request,
        "people/staff_credential_reviews.html",
        {
            "staff": staff,
            "facility": facility,
            "reviews": people.list_credential_reviews(db, facility),
        },
    )


@pages.post(
    "/staff/facilities/{facility_id}/credential-reviews/{review_id}/{decision}",
    response_class=HTMLResponse,
)
def credential_decide_submit(
    request: Request,
    facility_id: int,
    review_id: int,
    decision: Literal["verify", "reject"],
    staff: CurrentStaff,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    facility = access_facility(db, staff, facility_id, Permission.REVIEW_VISITORS)
    queue = f"/staff/facilities/{facility_id}/credential-reviews"
    try:
        credential = people.decide_credential(
            db,
            clock,
            settings,
            staff.actor,
            facility,
            review_id,
            verified=decision == "verify",
            reason=reason,
        )
    except DomainError as exc:
        db.rollback()
        ctx = {
            "staff": staff,
            "facility": facility,
            "reviews": people.list_credential_reviews(db, facility),
            "failed_id": review_id,
            "form": {"reason": reason},
        }
        errors = exc.fields and {f"reason-{review_id}": exc.fields.get("reason", exc.message)}
        exc.fields = errors or {}
        return form_error(
            request,
            db,
            "people/staff_credential_reviews.html",
            ctx,
            exc,
            field=f"reason-{review_id}",
        )
    name = _visitor_name(db, credential.visitor_id)
    word = "verified" if decision == "verify" else "not verified"
    return flash_redirect(request, queue, f"{name}'s credential is {word}. We've e-mailed them.")
