"""Visitor accounts: JSON API and pages, both calling people.service.

Staff review queues live in review_routes and are mounted on these routers.
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Request, Response, UploadFile
from fastapi.responses import HTMLResponse

from openvisit.auth import service as auth
from openvisit.auth.cookies import SESSION_COOKIE, clear_session_cookie, set_session_cookie
from openvisit.billing.gateway import PaymentGateway
from openvisit.billing.ledger import dollars
from openvisit.billing.routes import payment_gateway
from openvisit.config import Settings
from openvisit.deps import (
    ClockDep,
    CurrentVisitor,
    DbSession,
    OptionalVisitor,
    SettingsDep,
    client_ip,
)
from openvisit.errors import DomainError
from openvisit.people import review_routes
from openvisit.people import service as people
from openvisit.people.models import IdentityStatus, Visitor
from openvisit.people.schemas import (
    CloseAccountBody,
    ClosedAccountOut,
    CodeBody,
    CredentialBody,
    CredentialOut,
    IdentitySubmissionOut,
    PasswordResetBody,
    PasswordResetCompleteBody,
    RegisterBody,
    TokenBody,
    TotpSetupOut,
    VisitorOut,
    VisitorSessionOut,
    VisitorSignInBody,
)
from openvisit.web.render import flash_redirect, form_error, redirect, render

api = APIRouter(prefix="/api/v1", tags=["visitors"])
pages = APIRouter(include_in_schema=False)

_LOCAL_PATH = re.compile(r"^/[A-Za-z0-9/_\-?=&.%~]*$")


def _max_age(settings: Settings) -> int:
    return settings.session_hours * 3600


def _agent(request: Request) -> str:
    return request.headers.get("user-agent", "")


def _safe_next(next_url: str | None) -> str:
    """Only a path on this site (never //evil.example or a staff page)."""
    if (
        next_url
        and _LOCAL_PATH.match(next_url)
        and not next_url.startswith("//")
        and not next_url.startswith("/staff")
    ):
        return next_url
    return "/account"


def _read(upload: UploadFile | None, settings: Settings) -> people.Upload:
    """Read at most one byte more than allowed: enough to know a file is too large."""
    if upload is None:
        return people.Upload("", b"")
    return people.Upload(upload.filename or "", upload.file.read(settings.upload_max_bytes + 1))


def _int_or_none(value: str) -> int | None:
    value = value.strip()
    return int(value) if value.isdigit() and len(value) < 18 else None


# --- API: account ----------------------------------------------------------------------


@api.post("/visitors", response_model=VisitorOut, status_code=201)
def api_register(
    body: RegisterBody, request: Request, db: DbSession, settings: SettingsDep, clock: ClockDep
) -> VisitorOut:
    """Create an account; a link to confirm the e-mail address is sent."""
    visitor = people.register(
        db,
        clock,
        settings,
        email=body.email,
        password=body.password,
        legal_name=body.legal_name,
        date_of_birth=people.DateParts.from_iso(body.date_of_birth),
        phone=body.phone,
        ip=client_ip(request),
    )
    return VisitorOut.of(visitor)


@api.post("/visitors/verify-email", response_model=VisitorOut)
def api_verify_email(
    body: TokenBody, request: Request, db: DbSession, clock: ClockDep
) -> VisitorOut:
    return VisitorOut.of(people.verify_email(db, clock, token=body.token, ip=client_ip(request)))


@api.post("/visitor-session", response_model=VisitorSessionOut)
def api_sign_in(
    body: VisitorSignInBody,
    request: Request,
    response: Response,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
) -> VisitorSessionOut:
    """Sign in; a visitor who turned on two-step sign-in also gives ``totp_code``."""
    result = people.sign_in(
        db,
        settings,
        clock,
        email=body.email,
        password=body.password,
        totp_code=body.totp_code,
        ip=client_ip(request),
        user_agent=_agent(request),
    )
    csrf = set_session_cookie(
        response, settings, SESSION_COOKIE, result.session.token, _max_age(settings)
    )
    return VisitorSessionOut(visitor=VisitorOut.of(result.visitor), csrf_token=csrf)


@api.delete("/visitor-session", status_code=204)
def api_sign_out(
    visitor: CurrentVisitor, db: DbSession, clock: ClockDep, response: Response
) -> None:
    people.sign_out(db, clock, visitor.visitor, visitor.session, visitor.ip)
    clear_session_cookie(response, SESSION_COOKIE)


@api.post("/password-reset", status_code=202)
def api_password_reset(
    body: PasswordResetBody, request: Request, db: DbSession, settings: SettingsDep, clock: ClockDep
) -> dict[str, str]:
    """Always 202: the answer never says whether an account exists."""
    people.request_password_reset(db, clock, settings, email=body.email, ip=client_ip(request))
    return {"message": "If there is an account for that e-mail address, we've sent it a link."}


@api.post("/password-reset/complete", status_code=204)
def api_password_reset_complete(
    body: PasswordResetCompleteBody, request: Request, db: DbSession, clock: ClockDep
) -> None:
    people.complete_password_reset(
        db, clock, token=body.token, password=body.password, ip=client_ip(request)
    )


@api.get("/me", response_model=VisitorOut)
def api_me(visitor: CurrentVisitor) -> VisitorOut:
    return VisitorOut.of(visitor.visitor)


Gateway = Annotated[PaymentGateway, Depends(payment_gateway)]


@api.post("/me/close-account", response_model=ClosedAccountOut)
def api_close_account(
    body: CloseAccountBody,
    visitor: CurrentVisitor,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
    gateway: Gateway,
    response: Response,
) -> ClosedAccountOut:
    """Close the account: upcoming visits are cancelled and their money given back, the whole
    balance is paid back (no fee), every session ends and the account can't sign in again.
    Needs ``confirm: true`` and the current password. If the payment service fails, nothing
    changes (503 ``payout_failed``) and it is safe to try again."""
    closed = people.close_account(
        db,
        clock,
        settings,
        gateway,
        visitor.visitor,
        confirm=body.confirm,
        password=body.password,
        ip=visitor.ip,
    )
    clear_session_cookie(response, SESSION_COOKIE)
    return ClosedAccountOut(
        closed=True,
        refunded_cents=closed.refunded_cents,
        refunded=dollars(closed.refunded_cents),
        payout=closed.payout,
        cancelled_visit_ids=[v.id for v in closed.cancelled],
    )


@api.post("/me/totp", response_model=TotpSetupOut)
def api_totp_start(visitor: CurrentVisitor, db: DbSession) -> TotpSetupOut:
    setup = people.start_totp(db, visitor.visitor)
    return TotpSetupOut(secret=setup.secret, otpauth_uri=setup.otpauth_uri)


@api.post("/me/totp/confirm", response_model=VisitorOut)
def api_totp_confirm(
    body: CodeBody, visitor: CurrentVisitor, db: DbSession, clock: ClockDep
) -> VisitorOut:
    people.confirm_totp(db, clock, visitor.visitor, code=body.code, ip=visitor.ip)
    return VisitorOut.of(visitor.visitor)


@api.delete("/me/totp", response_model=VisitorOut)
def api_totp_disable(
    body: CodeBody, visitor: CurrentVisitor, db: DbSession, clock: ClockDep
) -> VisitorOut:
    people.disable_totp(db, clock, visitor.visitor, code=body.code, ip=visitor.ip)
    return VisitorOut.of(visitor.visitor)


@api.post("/me/identity", response_model=IdentitySubmissionOut, status_code=201)
def api_identity(
    visitor: CurrentVisitor,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
    facility_id: Annotated[str, Form(max_length=20)] = "",
    photo_id: Annotated[UploadFile | None, File()] = None,
    selfie: Annotated[UploadFile | None, File()] = None,
) -> IdentitySubmissionOut:
    """Upload a photo ID and a selfie (JPEG, PNG or WebP) for the chosen facility to check."""
    submission = people.submit_identity(
        db,
        clock,
        settings,
        visitor.visitor,
        facility_id=_int_or_none(facility_id),
        photo_id=_read(photo_id, settings),
        selfie=_read(selfie, settings),
        ip=visitor.ip,
    )
    return IdentitySubmissionOut.of(submission)


@api.post("/me/credentials", response_model=CredentialOut, status_code=201)
def api_credential(
    body: CredentialBody, visitor: CurrentVisitor, db: DbSession, clock: ClockDep
) -> CredentialOut:
    credential = people.submit_credential(
        db,
        clock,
        visitor.visitor,
        facility_id=body.facility_id,
        kind=body.kind,
        number=body.number,
        issuer=body.issuer,
        ip=visitor.ip,
    )
    return CredentialOut.of(credential)


@api.get("/me/credentials", response_model=list[CredentialOut])
def api_my_credentials(visitor: CurrentVisitor, db: DbSession) -> list[CredentialOut]:
    return [CredentialOut.of(c) for c, _f in people.list_my_credentials(db, visitor.visitor)]


# --- pages: signing up and in ------------------------------------------------------------


@pages.get("/sign-up", response_class=HTMLResponse)
def sign_up_page(request: Request, visitor: OptionalVisitor) -> Response:
    if visitor is not None:
        return redirect("/account")
    return render(request, "people/sign_up.html")


@pages.post("/sign-up", response_class=HTMLResponse)
def sign_up_submit(
    request: Request,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
    email: Annotated[str, Form(max_length=254)] = "",
    password: Annotated[str, Form(max_length=256)] = "",
    legal_name: Annotated[str, Form(max_length=200)] = "",
    dob_day: Annotated[str, Form(max_length=4)] = "",
    dob_month: Annotated[str, Form(max_length=4)] = "",
    dob_year: Annotated[str, Form(max_length=6)] = "",
    phone: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    form = {
        "email": email,
        "legal_name": legal_name,
        "dob_day": dob_day,
        "dob_month": dob_month,
        "dob_year": dob_year,
        "phone": phone,
    }
    try:
        visitor = people.register(
            db,
            clock,
            settings,
            email=email,
            password=password,
            legal_name=legal_name,
            date_of_birth=people.DateParts(dob_day, dob_month, dob_year),
            phone=phone,
            ip=client_ip(request),
        )
    except DomainError as exc:
        if exc.code == "email_taken":
            exc.fields = {
                "email": "You already have an account with this e-mail address. "
                "Sign in, or reset your password if you've forgotten it"
            }
        return form_error(request, db, "people/sign_up.html", {"form": form}, exc)
    return flash_redirect(
        request,
        "/sign-in",
        f"Account created. We've sent a link to {visitor.email}: open it to "
        "confirm your e-mail address. You can sign in now.",
    )


@pages.get("/verify-email", response_class=HTMLResponse)
def verify_email_page(request: Request, token: str = "") -> HTMLResponse:
    # A button that POSTs, so that mail scanners following links don't spend the token.
    return render(request, "people/verify_email.html", {"token": token[:200]})


@pages.post("/verify-email", response_class=HTMLResponse)
def verify_email_submit(
    request: Request,
    db: DbSession,
    clock: ClockDep,
    visitor: OptionalVisitor,
    token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    try:
        people.verify_email(db, clock, token=token, ip=client_ip(request))
    except DomainError as exc:
        return form_error(
            request,
            db,
            "people/verify_email.html",
            {"token": "", "failed": True},
            exc,
            field="token",
        )
    target = "/account" if visitor is not None else "/sign-in"
    return flash_redirect(request, target, "Thank you: your e-mail address is confirmed.")


@pages.get("/sign-in", response_class=HTMLResponse)
def sign_in_page(request: Request, visitor: OptionalVisitor, next: str = "") -> Response:
    if visitor is not None:
        return redirect(_safe_next(next))
    return render(request, "people/sign_in.html", {"next": next[:500]})


@pages.post("/sign-in", response_class=HTMLResponse)
def sign_in_submit(
    request: Request,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
    email: Annotated[str, Form(max_length=254)] = "",
    password: Annotated[str, Form(max_length=256)] = "",
    next: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    try:
        result = people.sign_in(
            db,
            settings,
            clock,
            email=email,
            password=password,
            totp_code=None,
            ip=client_ip(request),
            user_agent=_agent(request),
            allow_second_step=True,
        )
    except DomainError as exc:
        return form_error(
            request,
            db,
            "people/sign_in.html",
            {"next": next, "form": {"email": email}},
            exc,
            field="email",
        )
    if result.needs_code:
        target = "/sign-in/code" + (f"?next={_safe_next(next)}" if next else "")
        response = redirect(target)
        set_session_cookie(response, settings, SESSION_COOKIE, result.session.token, 600)
        return response
    response = redirect(_safe_next(next))
    set_session_cookie(response, settings, SESSION_COOKIE, result.session.token, _max_age(settings))
    return response


def _pending(request: Request, db: DbSession, clock: ClockDep):  # type: ignore[no-untyped-def]
    row = auth.find_session(db, request.cookies.get(SESSION_COOKIE), clock.now())
    return row, people.pending_sign_in(db, row)


@pages.get("/sign-in/code", response_class=HTMLResponse)
def code_page(request: Request, db: DbSession, clock: ClockDep, next: str = "") -> Response:
    _row, visitor = _pending(request, db, clock)
    if visitor is None:
        return redirect("/sign-in")
    return render(request, "people/code.html", {"next": next[:500]})


@pages.post("/sign-in/code", response_class=HTMLResponse)
def code_submit(
    request: Request,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
    totp_code: Annotated[str, Form(max_length=12)] = "",
    next: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    row, visitor = _pending(request, db, clock)
    if row is None or visitor is None:
        return redirect("/sign-in")
    try:
        new = people.confirm_code(
            db,
            settings,
            clock,
            row=row,
            code=totp_code,
            ip=client_ip(request),
            user_agent=_agent(request),
        )
    except DomainError as exc:
        return form_error(request, db, "people/code.html", {"next": next}, exc, field="totp_code")
    response = redirect(_safe_next(next))
    set_session_cookie(response, settings, SESSION_COOKIE, new.token, _max_age(settings))
    return response


@pages.post("/sign-out")
def sign_out_submit(
    request: Request, visitor: CurrentVisitor, db: DbSession, clock: ClockDep
) -> Response:
    people.sign_out(db, clock, visitor.visitor, visitor.session, visitor.ip)
    response = flash_redirect(request, "/", "You have signed out.")
    clear_session_cookie(response, SESSION_COOKIE)
    return response


@pages.get("/forgot-password", response_class=HTMLResponse)
def forgot_page(request: Request) -> HTMLResponse:
    return render(request, "people/forgot_password.html")


@pages.post("/forgot-password", response_class=HTMLResponse)
def forgot_submit(
    request: Request,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
    email: Annotated[str, Form(max_length=254)] = "",
) -> Response:
    if not email.strip():
        msg = "Enter the e-mail address you signed up with"
        return render(
            request, "people/forgot_password.html", {"errors": {"email": msg}}, status_code=422
        )
    people.request_password_reset(db, clock, settings, email=email, ip=client_ip(request))
    return flash_redirect(
        request,
        "/sign-in",
        f"If there is an account for {email.strip()}, we've sent it a link to "
        "reset the password. The link works for 1 hour.",
        kind="info",
    )


@pages.get("/reset-password", response_class=HTMLResponse)
def reset_page(request: Request, db: DbSession, clock: ClockDep, token: str = "") -> Response:
    try:
        people.check_reset_link(db, clock, token=token[:200])
    except DomainError as exc:
        return render(
            request,
            "people/reset_password.html",
            {"token": "", "link_error": exc},
            status_code=exc.http_status,
        )
    return render(request, "people/reset_password.html", {"token": token})


@pages.post("/reset-password", response_class=HTMLResponse)
def reset_submit(
    request: Request,
    db: DbSession,
    clock: ClockDep,
    token: Annotated[str, Form(max_length=200)] = "",
    password: Annotated[str, Form(max_length=256)] = "",
) -> Response:
    try:
        people.complete_password_reset(
            db, clock, token=token, password=password, ip=client_ip(request)
        )
    except DomainError as exc:
        ctx = {"token": token} if exc.fields else {"token": "", "link_error": exc}
        return form_error(request, db, "people/reset_password.html", ctx, exc, field="password")
    response = flash_redirect(
        request, "/sign-in", "Your password has been changed. Sign in with your new password."
    )
    clear_session_cookie(response, SESSION_COOKIE)
    return response


# --- pages: the account ---------------------------------------------------------------

IDENTITY_WORDS = {
    IdentityStatus.UNVERIFIED: ("Not checked yet", "grey"),
    IdentityStatus.PENDING: ("Being checked", "yellow"),
    IdentityStatus.VERIFIED: ("Confirmed", "green"),
    IdentityStatus.REJECTED: ("Not confirmed", "red"),
}


@pages.get("/account", response_class=HTMLResponse)
def account_page(request: Request, visitor: CurrentVisitor, db: DbSession) -> HTMLResponse:
    latest = people.latest_identity_submission(db, visitor.visitor)
    return render(
        request,
        "people/account.html",
        {
            "visitor": visitor.visitor,
            "latest": latest,
            "IS": IdentityStatus,
            "identity_words": IDENTITY_WORDS[visitor.visitor.identity_status],
        },
    )


def _close_page(
    request: Request,
    db: DbSession,
    visitor: Visitor,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    from openvisit.facilities.models import Facility
    from openvisit.scheduling.presenters import span_label

    preview = people.closure_preview(db, visitor)
    labels = {}
    for visit in preview.upcoming + preview.in_progress:
        facility = db.get(Facility, visit.facility_id)
        labels[visit.id] = span_label(
            visit.starts_at, visit.ends_at, facility.timezone if facility else "UTC"
        )
    ctx = {
        "visitor": visitor,
        "preview": preview,
        "labels": labels,
        "dollars": dollars,
        "errors": errors or {},
    }
    return render(request, "people/close_account.html", ctx, status_code=status)


@pages.get("/account/close", response_class=HTMLResponse)
def close_account_page(request: Request, visitor: CurrentVisitor, db: DbSession) -> HTMLResponse:
    return _close_page(request, db, visitor.visitor)


@pages.post("/account/close", response_class=HTMLResponse)
def close_account_submit(
    request: Request,
    visitor: CurrentVisitor,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
    gateway: Gateway,
    answer: Annotated[str, Form(max_length=10)] = "",
    password: Annotated[str, Form(max_length=256)] = "",
) -> Response:
    if answer == "no":
        return flash_redirect(request, "/account", "Your account is still open.", "info")
    try:
        closed = people.close_account(
            db,
            clock,
            settings,
            gateway,
            visitor.visitor,
            confirm=answer == "yes",
            password=password,
            ip=visitor.ip,
        )
    except DomainError as exc:
        if exc.keep_changes:
            db.commit()  # the failed password attempt is counted
        else:
            db.rollback()
        fields = exc.fields or {"answer": exc.message}
        return _close_page(request, db, visitor.visitor, fields, exc.http_status)
    paid = (
        f" {dollars(closed.refunded_cents)} is on its way back to your payment method."
        if closed.refunded_cents
        else ""
    )
    response = flash_redirect(request, "/", f"Your account is closed.{paid}")
    clear_session_cookie(response, SESSION_COOKIE)
    return response


@pages.post("/account/resend-verification")
def resend_submit(
    request: Request, visitor: CurrentVisitor, db: DbSession, settings: SettingsDep, clock: ClockDep
) -> Response:
    try:
        people.resend_verification(db, clock, settings, visitor.visitor)
    except DomainError as exc:
        db.rollback()
        return flash_redirect(request, "/account", exc.message, kind="info")
    return flash_redirect(request, "/account", f"We've sent a new link to {visitor.visitor.email}.")


def _security(
    request: Request,
    visitor: CurrentVisitor,
    errors: dict | None = None,  # type: ignore[type-arg]
    status: int = 200,
) -> HTMLResponse:
    setup = people.totp_setup(visitor.visitor)
    ctx: dict[str, object] = {"visitor": visitor.visitor, "setup": setup, "errors": errors or {}}
    if setup is not None:
        import segno

        ctx["qr_svg"] = segno.make(setup.otpauth_uri).svg_inline(scale=4)
    return render(request, "people/security.html", ctx, status_code=status)


@pages.get("/account/security", response_class=HTMLResponse)
def security_page(request: Request, visitor: CurrentVisitor) -> HTMLResponse:
    return _security(request, visitor)


@pages.post("/account/security/start")
def security_start(request: Request, visitor: CurrentVisitor, db: DbSession) -> Response:
    try:
        people.start_totp(db, visitor.visitor)
    except DomainError as exc:
        db.rollback()
        return flash_redirect(request, "/account/security", exc.message, kind="info")
    return redirect("/account/security")


@pages.post("/account/security/confirm", response_class=HTMLResponse)
def security_confirm(
    request: Request,
    visitor: CurrentVisitor,
    db: DbSession,
    clock: ClockDep,
    totp_code: Annotated[str, Form(max_length=12)] = "",
) -> Response:
    try:
        people.confirm_totp(db, clock, visitor.visitor, code=totp_code, ip=visitor.ip)
    except DomainError as exc:
        db.rollback()
        return _security(
            request, visitor, exc.fields or {"totp_code": exc.message}, exc.http_status
        )
    return flash_redirect(
        request,
        "/account/security",
        "Two-step sign-in is on. You'll need a code from your app each time you sign in.",
    )


@pages.post("/account/security/disable", response_class=HTMLResponse)
def security_disable(
    request: Request,
    visitor: CurrentVisitor,
    db: DbSession,
    clock: ClockDep,
    totp_code: Annotated[str, Form(max_length=12)] = "",
) -> Response:
    try:
        people.disable_totp(db, clock, visitor.visitor, code=totp_code, ip=visitor.ip)
    except DomainError as exc:
        db.rollback()
        return _security(
            request, visitor, exc.fields or {"totp_code": exc.message}, exc.http_status
        )
    return flash_redirect(request, "/account/security", "Two-step sign-in is off.")


def _facility_options(db: DbSession) -> list[tuple[str, str]]:
    return [("", "Choose a facility")] + [(str(f.id), f.name) for f in people.list_facilities(db)]


@pages.get("/account/identity", response_class=HTMLResponse)
def identity_page(request: Request, visitor: CurrentVisitor, db: DbSession) -> HTMLResponse:
    return render(
        request,
        "people/identity.html",
        {
            "visitor": visitor.visitor,
            "facilities": _facility_options(db),
            "latest": people.latest_identity_submission(db, visitor.visitor),
        },
    )


@pages.post("/account/identity", response_class=HTMLResponse)
def identity_submit(
    request: Request,
    visitor: CurrentVisitor,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
    facility_id: Annotated[str, Form(max_length=20)] = "",
    photo_id: Annotated[UploadFile | None, File()] = None,
    selfie: Annotated[UploadFile | None, File()] = None,
) -> Response:
    try:
        people.submit_identity(
            db,
            clock,
            settings,
            visitor.visitor,
            facility_id=_int_or_none(facility_id),
            photo_id=_read(photo_id, settings),
            selfie=_read(selfie, settings),
            ip=visitor.ip,
        )
    except DomainError as exc:
        return form_error(
            request,
            db,
            "people/identity.html",
            {
                "visitor": visitor.visitor,
                "facilities": _facility_options(db),
                "form": {"facility_id": facility_id},
                "latest": None,
            },
            exc,
            field="photo_id",
        )
    return flash_redirect(
        request,
        "/account",
        "Thank you. We've sent your photos to the facility. We'll e-mail you "
        "when they have checked them.",
    )


@pages.get("/account/credentials", response_class=HTMLResponse)
def credentials_page(request: Request, visitor: CurrentVisitor, db: DbSession) -> HTMLResponse:
    return render(
        request,
        "people/credentials.html",
        {
            "visitor": visitor.visitor,
            "facilities": _facility_options(db),
            "credentials": people.list_my_credentials(db, visitor.visitor),
        },
    )


@pages.post("/account/credentials", response_class=HTMLResponse)
def credentials_submit(
    request: Request,
    visitor: CurrentVisitor,
    db: DbSession,
    clock: ClockDep,
    facility_id: Annotated[str, Form(max_length=20)] = "",
    kind: Annotated[str, Form(max_length=20)] = "",
    number: Annotated[str, Form(max_length=60)] = "",
    issuer: Annotated[str, Form(max_length=120)] = "",
) -> Response:
    try:
        people.submit_credential(
            db,
            clock,
            visitor.visitor,
            facility_id=_int_or_none(facility_id),
            kind=kind,
            number=number,
            issuer=issuer,
            ip=visitor.ip,
        )
    except DomainError as exc:
        return form_error(
            request,
            db,
            "people/credentials.html",
            {
                "visitor": visitor.visitor,
                "facilities": _facility_options(db),
                "credentials": people.list_my_credentials(db, visitor.visitor),
                "form": {
                    "facility_id": facility_id,
                    "kind": kind,
                    "number": number,
                    "issuer": issuer,
                },
            },
            exc,
            field="number",
        )
    return flash_redirect(
        request,
        "/account/credentials",
        "Thank you. The facility will check your credential and we'll e-mail you when they have.",
    )


api.include_router(review_routes.api)
pages.include_router(review_routes.pages)
