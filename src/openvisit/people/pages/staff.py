"""The staff console's home, a facility's page, and the identity and credential review
queues."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse

from openvisit.auth.permissions import Permission
from openvisit.deps import CurrentStaff, DbSession, Id, ViewedFacility
from openvisit.errors import DomainError
from openvisit.facilities import service as facilities
from openvisit.people import credentials, identity
from openvisit.people.pages.shared import show
from openvisit.people.routes import Reviewer, Reviewing
from openvisit.web.answers import FormPage, Page, PageAnswer
from openvisit.web.render import redirect, render

router = APIRouter(include_in_schema=False)

Reason = Annotated[str, Form(max_length=2000)]


@router.get("/staff", response_class=HTMLResponse)
def staff_home(request: Request, staff: CurrentStaff, db: DbSession) -> Response:
    mine = facilities.list_facilities(db, staff)
    if len(mine) == 1 and not staff.is_provider_admin:
        return redirect(f"/staff/facilities/{mine[0].id}")
    return render(request, "staff/home.html", {"staff": staff, "facilities": mine})


@router.get("/staff/facilities/{facility_id}", response_class=HTMLResponse)
def facility_home(request: Request, facility: ViewedFacility, staff: CurrentStaff) -> HTMLResponse:
    return render(
        request, "staff/facility.html", {"staff": staff, "facility": facility, "P": Permission}
    )


# --- identity and credential reviews ----------------------------------------------------

IDENTITY_QUEUE = "/staff/facilities/{facility_id}/identity-reviews"
CREDENTIAL_QUEUE = "/staff/facilities/{facility_id}/credential-reviews"


@router.get(IDENTITY_QUEUE, response_class=HTMLResponse)
def identity_queue_page(request: Request, reviewer: Reviewing) -> HTMLResponse:
    return render(
        request,
        "people/staff_identity_reviews.html",
        {
            "staff": reviewer.staff,
            "facility": reviewer.facility,
            "reviews": reviewer.pending(identity.CHECKS),
        },
    )


def _identity_review(reviewer: Reviewer, review_id: Id, reason: str | None) -> FormPage:
    """One check and its decision forms; ``reason`` is what a refused rejection typed."""

    def context() -> dict[str, object]:
        submission, visitor = reviewer.access(identity.CHECKS, review_id)
        ctx: dict[str, object] = {
            "staff": reviewer.staff,
            "facility": reviewer.facility,
            "submission": submission,
            "visitor": visitor,
        }
        if reason is not None:
            ctx["form"] = {"reason": reason}
        return ctx

    field = "form" if reason is None else "reason"
    return FormPage("people/staff_identity_review.html", context, field=field)


@router.get(IDENTITY_QUEUE + "/{review_id}", response_class=HTMLResponse)
def identity_review_page(request: Request, reviewer: Reviewing, review_id: Id) -> HTMLResponse:
    return show(request, _identity_review(reviewer, review_id, None))


def _decide_identity(
    reviewer: Reviewer, answer: PageAnswer, review_id: Id, reason: str | None
) -> Response:
    """Verify (no reason) or reject (a reason) an identity check, then back to the queue."""
    verified = reason is None
    try:
        _submission, visitor = reviewer.decide(
            identity.CHECKS, review_id, verified=verified, reason=reason or ""
        )
    except DomainError as exc:
        return answer.refused(exc, _identity_review(reviewer, review_id, reason))
    queue = IDENTITY_QUEUE.format(facility_id=reviewer.facility.id)
    name = visitor.legal_name
    if verified:
        return answer.done(queue, f"{name}'s identity is confirmed. We've e-mailed them.")
    return answer.done(
        queue, f"{name}'s identity was not confirmed. We've e-mailed them the reason."
    )


@router.post(IDENTITY_QUEUE + "/{review_id}/verify", response_class=HTMLResponse)
def identity_verify_submit(reviewer: Reviewing, review_id: Id, page: Page) -> Response:
    return _decide_identity(reviewer, page, review_id, None)


@router.post(IDENTITY_QUEUE + "/{review_id}/reject", response_class=HTMLResponse)
def identity_reject_submit(
    reviewer: Reviewing, review_id: Id, page: Page, reason: Reason = ""
) -> Response:
    return _decide_identity(reviewer, page, review_id, reason)


def _credential_queue(reviewer: Reviewer, failed: tuple[int, str] | None = None) -> FormPage:
    """The queue; ``failed`` is the review whose decision was refused, and the reason typed."""

    def context() -> dict[str, object]:
        ctx: dict[str, object] = {
            "staff": reviewer.staff,
            "facility": reviewer.facility,
            "reviews": reviewer.pending(credentials.CREDENTIALS),
        }
        if failed is not None:
            ctx.update(failed_id=failed[0], form={"reason": failed[1]})
        return ctx

    template = "people/staff_credential_reviews.html"
    if failed is None:
        return FormPage(template, context)
    field = f"reason-{failed[0]}"
    return FormPage(template, context, field=field, rename={"reason": field})


@router.get(CREDENTIAL_QUEUE, response_class=HTMLResponse)
def credential_queue_page(request: Request, reviewer: Reviewing) -> HTMLResponse:
    return show(request, _credential_queue(reviewer))


@router.post(CREDENTIAL_QUEUE + "/{review_id}/{decision}", response_class=HTMLResponse)
def credential_decide_submit(
    reviewer: Reviewing,
    review_id: Id,
    decision: Literal["verify", "reject"],
    page: Page,
    reason: Reason = "",
) -> Response:
    verified = decision == "verify"
    try:
        _credential, visitor = reviewer.decide(
            credentials.CREDENTIALS, review_id, verified=verified, reason=reason
        )
    except DomainError as exc:
        return page.refused(exc, _credential_queue(reviewer, (review_id, reason)))
    word = "verified" if verified else "not verified"
    return page.done(
        CREDENTIAL_QUEUE.format(facility_id=reviewer.facility.id),
        f"{visitor.legal_name}'s credential is {word}. We've e-mailed them.",
    )
