"""A visitor's account: its page, closing it, two-step sign-in, identity documents and
professional credentials."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse

from openvisit.auth.cookies import SESSION_COOKIE, clear_session_cookie
from openvisit.billing.ledger import dollars
from openvisit.deps import CurrentVisitor, DbSession
from openvisit.errors import DomainError
from openvisit.facilities import service as facilities
from openvisit.flows import account_closure
from openvisit.people import accounts, credentials, identity, sign_in, verifications
from openvisit.people.models import IdentityStatus, Visitor
from openvisit.people.pages.shared import Password, TotpCode, qr_svg, show
from openvisit.people.routes import ClosingAccount, IdentityUploaded, int_or_none
from openvisit.web.answers import FormPage, Page
from openvisit.web.render import flash_redirect, redirect, render

router = APIRouter(include_in_schema=False)

IDENTITY_WORDS = {
    IdentityStatus.UNVERIFIED: ("Not checked yet", "grey"),
    IdentityStatus.PENDING: ("Being checked", "yellow"),
    IdentityStatus.VERIFIED: ("Confirmed", "green"),
    IdentityStatus.REJECTED: ("Not confirmed", "red"),
}


@router.get("/account", response_class=HTMLResponse)
def account_page(request: Request, visitor: CurrentVisitor, db: DbSession) -> HTMLResponse:
    latest = identity.latest_identity_submission(db, visitor.visitor)
    return render(
        request,
        "people/account.html",
        {
            "visitor": visitor.visitor,
            "latest": latest,
            "IS": IdentityStatus,
            "identity_words": IDENTITY_WORDS[visitor.visitor.identity_status],
            "confirmed_by": verifications.facilities_that_verified(db, visitor.visitor.id),
        },
    )


def _closing(db: DbSession, visitor: Visitor) -> FormPage:
    def context() -> dict[str, object]:
        preview = account_closure.closure_preview(db, visitor)
        return {
            "visitor": visitor,
            "preview": preview,
            "labels": preview.labels,
            "dollars": dollars,
        }

    return FormPage("people/close_account.html", context, field="answer")


@router.get("/account/close", response_class=HTMLResponse)
def close_account_page(request: Request, visitor: CurrentVisitor, db: DbSession) -> HTMLResponse:
    return show(request, _closing(db, visitor.visitor))


@router.post("/account/close", response_class=HTMLResponse)
def close_account_submit(
    page: Page,
    closing: ClosingAccount,
    choice: Annotated[Literal["", "yes", "no"], Form(alias="answer")] = "",
    password: Password = "",
) -> Response:
    if choice == "no":
        return flash_redirect(page.request, "/account", "Your account is still open.", "info")
    try:
        closed = closing.close(confirm=choice == "yes", password=password)
    except DomainError as exc:
        return page.refused(exc, _closing(closing.db, closing.visitor.visitor))
    paid = (
        f" {dollars(closed.refunded_cents)} is on its way back to your payment method."
        if closed.refunded_cents
        else ""
    )
    response = page.done("/", f"Your account is closed.{paid}")
    clear_session_cookie(response, SESSION_COOKIE)
    return response


@router.post("/account/resend-verification")
def resend_submit(
    visitor: CurrentVisitor,
    page: Page,
) -> Response:
    try:
        accounts.resend_verification(page.db, page.clock, page.settings, visitor.visitor)
    except DomainError as exc:
        return page.refused_to(exc, "/account", kind="info")
    return page.done("/account", f"We've sent a new link to {visitor.visitor.email}.")


def _security(visitor: Visitor) -> FormPage:
    def context() -> dict[str, object]:
        setup = sign_in.totp_setup(visitor)
        ctx: dict[str, object] = {"visitor": visitor, "setup": setup}
        if setup is not None:
            ctx["qr_svg"] = qr_svg(setup.otpauth_uri)
        return ctx

    return FormPage("people/security.html", context, field="totp_code")


@router.get("/account/security", response_class=HTMLResponse)
def security_page(request: Request, visitor: CurrentVisitor) -> HTMLResponse:
    return show(request, _security(visitor.visitor))


@router.post("/account/security/start")
def security_start(
    visitor: CurrentVisitor,
    page: Page,
) -> Response:
    try:
        sign_in.start_totp(page.db, visitor.visitor)
    except DomainError as exc:
        return page.refused_to(exc, "/account/security", kind="info")
    return redirect("/account/security")


TOTP_CHANGED = {
    "confirm": "Two-step sign-in is on. You'll need a code from your app each time you sign in.",
    "disable": "Two-step sign-in is off.",
}


@router.post("/account/security/{change}", response_class=HTMLResponse)
def security_change(
    change: Literal["confirm", "disable"],
    visitor: CurrentVisitor,
    page: Page,
    totp_code: TotpCode = "",
) -> Response:
    """Turn two-step sign-in on (a first code confirms the app) or off (a code again)."""
    try:
        if change == "confirm":
            sign_in.confirm_totp(
                page.db, page.clock, visitor.visitor, code=totp_code, ip=visitor.ip
            )
        else:
            sign_in.disable_totp(
                page.db, page.clock, visitor.visitor, code=totp_code, ip=visitor.ip
            )
    except DomainError as exc:
        return page.refused(exc, _security(visitor.visitor))
    return page.done("/account/security", TOTP_CHANGED[change])


def _facility_options(db: DbSession) -> list[tuple[str, str]]:
    choices = [(str(f.id), f.name) for f in facilities.list_public_facilities(db)]
    return [("", "Choose a facility"), *choices]


@router.get("/account/identity", response_class=HTMLResponse)
def identity_page(request: Request, visitor: CurrentVisitor, db: DbSession) -> HTMLResponse:
    return render(
        request,
        "people/identity.html",
        {
            "visitor": visitor.visitor,
            "facilities": _facility_options(db),
            "latest": identity.latest_identity_submission(db, visitor.visitor),
            "confirmed_by": verifications.facilities_that_verified(db, visitor.visitor.id),
        },
    )


@router.post("/account/identity", response_class=HTMLResponse)
def identity_submit(upload: IdentityUploaded, page: Page) -> Response:
    try:
        upload.submit()
    except DomainError as exc:
        form_page = FormPage(
            "people/identity.html",
            lambda: {
                "visitor": upload.visitor.visitor,
                "facilities": _facility_options(upload.db),
                "form": {"facility_id": upload.facility_id},
                "latest": None,
                "confirmed_by": verifications.facilities_that_verified(
                    upload.db, upload.visitor.visitor.id
                ),
            },
            field="photo_id",
        )
        return page.refused(exc, form_page)
    return page.done(
        "/account",
        "Thank you. We've sent your photos to the facility. We'll e-mail you "
        "when they have checked them.",
    )


def _credentials(db: DbSession, visitor: Visitor, form: dict[str, str] | None = None) -> FormPage:
    def context() -> dict[str, object]:
        ctx: dict[str, object] = {
            "visitor": visitor,
            "facilities": _facility_options(db),
            "credentials": credentials.list_my_credentials(db, visitor),
        }
        if form is not None:
            ctx["form"] = form
        return ctx

    return FormPage("people/credentials.html", context, field="number")


@router.get("/account/credentials", response_class=HTMLResponse)
def credentials_page(request: Request, visitor: CurrentVisitor, db: DbSession) -> HTMLResponse:
    return show(request, _credentials(db, visitor.visitor))


@router.post("/account/credentials", response_class=HTMLResponse)
def credentials_submit(
    visitor: CurrentVisitor,
    page: Page,
    facility_id: Annotated[str, Form(max_length=20)] = "",
    kind: Annotated[str, Form(max_length=20)] = "",
    number: Annotated[str, Form(max_length=60)] = "",
    issuer: Annotated[str, Form(max_length=120)] = "",
) -> Response:
    try:
        credentials.submit_credential(
            page.db,
            page.clock,
            visitor.visitor,
            facility_id=int_or_none(facility_id),
            kind=kind,
            number=number,
            issuer=issuer,
            ip=visitor.ip,
        )
    except DomainError as exc:
        form = {"facility_id": facility_id, "kind": kind, "number": number, "issuer": issuer}
        return page.refused(exc, _credentials(page.db, visitor.visitor, form))
    return page.done(
        "/account/credentials",
        "Thank you. The facility will check your credential and we'll e-mail you when they have.",
    )
