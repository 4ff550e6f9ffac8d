"""The pages of people: visitors signing up, in and out and keeping their account, staff
signing in, and the staff's identity and credential review queues.

Each page calls the service its JSON route (routes.py) calls. A refused action goes to
PageAnswer, which undoes the request's changes (a counted failed sign-in stays).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Generic, Literal

import segno
from fastapi import APIRouter, File, Form, Request, Response, UploadFile
from fastapi.responses import HTMLResponse

from openvisit.auth import service as auth
from openvisit.auth import sign_in as signing_in
from openvisit.auth.cookies import SESSION_COOKIE, clear_session_cookie, set_signed_in
from openvisit.auth.models import UserSession
from openvisit.auth.permissions import Permission
from openvisit.billing.ledger import dollars
from openvisit.deps import (
    ClockDep,
    CurrentStaff,
    CurrentVisitor,
    DbSession,
    FacilityFor,
    OptionalVisitor,
    SettingsDep,
    client_ip,
)
from openvisit.errors import Code, DomainError
from openvisit.facilities import service as facilities
from openvisit.facilities.models import Facility
from openvisit.flows import account_closure
from openvisit.people import accounts, credentials, identity, sign_in, staff_service
from openvisit.people.models import IdentityStatus, StaffMember, Visitor
from openvisit.people.routes import (
    Gateway,
    ReviewingFacility,
    int_or_none,
    read_upload,
    user_agent,
)
from openvisit.web.answers import Answer, FormPage
from openvisit.web.render import flash_redirect, redirect, render

router = APIRouter(include_in_schema=False)

ViewedFacility = Annotated[Facility, FacilityFor(Permission.VIEW_FACILITY)]

_LOCAL_PATH = re.compile(r"^/[A-Za-z0-9/_\-?=&.%~]*$")


def _show(request: Request, page: FormPage) -> HTMLResponse:
    return render(request, page.template, dict(page.context()))


def _qr_svg(uri: str) -> str:
    svg: str = segno.make(uri).svg_inline(scale=4)
    return svg


def _signed_in(url: str, settings: SettingsDep, new: auth.NewSession) -> Response:
    response = redirect(url)
    set_signed_in(response, settings, new)
    return response


def _visitor_next(next_url: str | None) -> str:
    """Only a path on this site (never //evil.example or a staff page)."""
    if (
        next_url
        and _LOCAL_PATH.match(next_url)
        and not next_url.startswith("//")
        and not next_url.startswith("/staff")
    ):
        return next_url
    return "/account"


def _staff_next(next_url: str | None) -> str:
    if next_url and next_url.startswith("/staff") and not next_url.startswith("//"):
        return next_url
    return "/staff"


# --- the second step of signing in, visitors' and staff's alike ------------------------


@dataclass(frozen=True)
class _SecondStep(Generic[signing_in.A]):
    """Where an account that owes a code gives it."""

    kind: signing_in.AccountType[signing_in.A]
    sign_in_url: str  # where to start again when there is no half session
    page: Callable[[signing_in.A, str], FormPage]  # the code form, given ``next``
    landing: Callable[[str], str]  # where ``next`` may lead


def _half_signed_in(
    request: Request, db: DbSession, clock: ClockDep, kind: signing_in.AccountType[signing_in.A]
) -> tuple[UserSession, signing_in.A] | None:
    row = auth.find_session(db, request.cookies.get(SESSION_COOKIE), clock.now())
    account = signing_in.pending_account(db, kind, row)
    return (row, account) if row is not None and account is not None else None


def _code_page(
    request: Request, db: DbSession, clock: ClockDep, step: _SecondStep[Any], next: str
) -> Response:
    pending = _half_signed_in(request, db, clock, step.kind)
    if pending is None:
        return redirect(step.sign_in_url)
    return _show(request, step.page(pending[1], next))


def _code_submit(
    request: Request,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
    answer: Answer,
    step: _SecondStep[Any],
    code: str,
    next: str,
) -> Response:
    pending = _half_signed_in(request, db, clock, step.kind)
    if pending is None:
        return redirect(step.sign_in_url)
    row, account = pending
    try:
        _account, new = signing_in.confirm_code(
            db,
            settings,
            clock,
            step.kind,
            row=row,
            code=code,
            ip=client_ip(request),
            user_agent=user_agent(request),
        )
    except DomainError as exc:
        return answer.refused(exc, step.page(account, next))
    return _signed_in(step.landing(next), settings, new)


def _visitor_code_form(_visitor: Visitor, next: str) -> FormPage:
    return FormPage("people/code.html", lambda: {"next": next}, field="totp_code")


def _staff_code_form(member: StaffMember, next: str) -> FormPage:
    def context() -> dict[str, object]:
        enrol = member.totp_confirmed_at is None
        ctx: dict[str, object] = {"next": next, "enrol": enrol}
        if enrol:
            uri = auth.totp_uri(member.totp_secret, member.email)
            ctx.update(secret=member.totp_secret, qr_svg=_qr_svg(uri))
        return ctx

    return FormPage("staff/code.html", context, field="totp_code")


VISITOR_STEP = _SecondStep(sign_in.VISITORS, "/sign-in", _visitor_code_form, _visitor_next)
STAFF_STEP = _SecondStep(staff_service.STAFF, "/staff/sign-in", _staff_code_form, _staff_next)

Email = Annotated[str, Form(max_length=254)]
Password = Annotated[str, Form(max_length=256)]
Next = Annotated[str, Form(max_length=500)]
TotpCode = Annotated[str, Form(max_length=12)]


# --- visitors: signing up and in -------------------------------------------------------


@router.get("/sign-up", response_class=HTMLResponse)
def sign_up_page(request: Request, visitor: OptionalVisitor) -> Response:
    if visitor is not None:
        return redirect("/account")
    return render(request, "people/sign_up.html")


@router.post("/sign-up", response_class=HTMLResponse)
def sign_up_submit(
    request: Request,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
    answer: Answer,
    email: Email = "",
    password: Password = "",
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
        visitor = accounts.register(
            db,
            clock,
            settings,
            email=email,
            password=password,
            legal_name=legal_name,
            date_of_birth=accounts.DateParts(dob_day, dob_month, dob_year),
            phone=phone,
            ip=client_ip(request),
        )
    except DomainError as exc:
        if exc.code == Code.EMAIL_TAKEN:
            exc.fields = {
                "email": "You already have an account with this e-mail address. "
                "Sign in, or reset your password if you've forgotten it"
            }
        return answer.refused(exc, FormPage("people/sign_up.html", lambda: {"form": form}))
    return answer.done(
        "/sign-in",
        f"Account created. We've sent a link to {visitor.email}: open it to "
        "confirm your e-mail address. You can sign in now.",
    )


@router.get("/verify-email", response_class=HTMLResponse)
def verify_email_page(request: Request, token: str = "") -> HTMLResponse:
    # A button that POSTs, so that mail scanners following links don't spend the token.
    return render(request, "people/verify_email.html", {"token": token[:200]})


@router.post("/verify-email", response_class=HTMLResponse)
def verify_email_submit(
    request: Request,
    db: DbSession,
    clock: ClockDep,
    visitor: OptionalVisitor,
    answer: Answer,
    token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    try:
        accounts.verify_email(db, clock, token=token, ip=client_ip(request))
    except DomainError as exc:
        failed = FormPage(
            "people/verify_email.html", lambda: {"token": "", "failed": True}, field="token"
        )
        return answer.refused(exc, failed)
    target = "/account" if visitor is not None else "/sign-in"
    return answer.done(target, "Thank you: your e-mail address is confirmed.")


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in_page(request: Request, visitor: OptionalVisitor, next: str = "") -> Response:
    if visitor is not None:
        return redirect(_visitor_next(next))
    return render(request, "people/sign_in.html", {"next": next[:500]})


@router.post("/sign-in", response_class=HTMLResponse)
def sign_in_submit(
    request: Request,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
    answer: Answer,
    email: Email = "",
    password: Password = "",
    next: Next = "",
) -> Response:
    try:
        result = sign_in.sign_in(
            db,
            settings,
            clock,
            email=email,
            password=password,
            totp_code=None,
            ip=client_ip(request),
            user_agent=user_agent(request),
            allow_second_step=True,
        )
    except DomainError as exc:
        return answer.refused(exc, _sign_in_form("people/sign_in.html", email, next))
    if result.needs_code:
        target = "/sign-in/code" + (f"?next={_visitor_next(next)}" if next else "")
        return _signed_in(target, settings, result.session)
    return _signed_in(_visitor_next(next), settings, result.session)


def _sign_in_form(template: str, email: str, next: str) -> FormPage:
    return FormPage(template, lambda: {"next": next, "form": {"email": email}}, field="email")


@router.get("/sign-in/code", response_class=HTMLResponse)
def code_page(request: Request, db: DbSession, clock: ClockDep, next: str = "") -> Response:
    return _code_page(request, db, clock, VISITOR_STEP, next[:500])


@router.post("/sign-in/code", response_class=HTMLResponse)
def code_submit(
    request: Request,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
    answer: Answer,
    totp_code: TotpCode = "",
    next: Next = "",
) -> Response:
    return _code_submit(request, db, settings, clock, answer, VISITOR_STEP, totp_code, next)


@router.post("/sign-out")
def sign_out_submit(
    request: Request, visitor: CurrentVisitor, db: DbSession, clock: ClockDep
) -> Response:
    sign_in.sign_out(db, clock, visitor.session, visitor.ip)
    response = flash_redirect(request, "/", "You have signed out.")
    clear_session_cookie(response, SESSION_COOKIE)
    return response


@router.get("/forgot-password", response_class=HTMLResponse)
def forgot_page(request: Request) -> HTMLResponse:
    return render(request, "people/forgot_password.html")


@router.post("/forgot-password", response_class=HTMLResponse)
def forgot_submit(
    request: Request, db: DbSession, settings: SettingsDep, clock: ClockDep, email: Email = ""
) -> Response:
    if not email.strip():
        msg = "Enter the e-mail address you signed up with"
        return render(
            request, "people/forgot_password.html", {"errors": {"email": msg}}, status_code=422
        )
    accounts.request_password_reset(db, clock, settings, email=email, ip=client_ip(request))
    return flash_redirect(
        request,
        "/sign-in",
        f"If there is an account for {email.strip()}, we've sent it a link to "
        "reset the password. The link works for 1 hour.",
        kind="info",
    )


@router.get("/reset-password", response_class=HTMLResponse)
def reset_page(request: Request, db: DbSession, clock: ClockDep, token: str = "") -> Response:
    try:
        accounts.check_reset_link(db, clock, token=token[:200])
    except DomainError as exc:
        return render(
            request,
            "people/reset_password.html",
            {"token": "", "link_error": exc},
            status_code=exc.http_status,
        )
    return render(request, "people/reset_password.html", {"token": token})


@router.post("/reset-password", response_class=HTMLResponse)
def reset_submit(
    request: Request,
    db: DbSession,
    clock: ClockDep,
    answer: Answer,
    token: Annotated[str, Form(max_length=200)] = "",
    password: Password = "",
) -> Response:
    try:
        accounts.complete_password_reset(
            db, clock, token=token, password=password, ip=client_ip(request)
        )
    except DomainError as exc:
        ctx = {"token": token} if exc.fields else {"token": "", "link_error": exc}
        return answer.refused(
            exc, FormPage("people/reset_password.html", lambda: ctx, field="password")
        )
    response = answer.done(
        "/sign-in", "Your password has been changed. Sign in with your new password."
    )
    clear_session_cookie(response, SESSION_COOKIE)
    return response


# --- visitors: the account -------------------------------------------------------------

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
    return _show(request, _closing(db, visitor.visitor))


@router.post("/account/close", response_class=HTMLResponse)
def close_account_submit(
    request: Request,
    visitor: CurrentVisitor,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
    gateway: Gateway,
    answer: Answer,
    choice: Annotated[Literal["", "yes", "no"], Form(alias="answer")] = "",
    password: Password = "",
) -> Response:
    if choice == "no":
        return flash_redirect(request, "/account", "Your account is still open.", "info")
    try:
        closed = account_closure.close_account(
            db,
            clock,
            settings,
            gateway,
            visitor.visitor,
            confirm=choice == "yes",
            password=password,
            ip=visitor.ip,
        )
    except DomainError as exc:
        return answer.refused(exc, _closing(db, visitor.visitor))
    paid = (
        f" {dollars(closed.refunded_cents)} is on its way back to your payment method."
        if closed.refunded_cents
        else ""
    )
    response = answer.done("/", f"Your account is closed.{paid}")
    clear_session_cookie(response, SESSION_COOKIE)
    return response


@router.post("/account/resend-verification")
def resend_submit(
    visitor: CurrentVisitor, db: DbSession, settings: SettingsDep, clock: ClockDep, answer: Answer
) -> Response:
    try:
        accounts.resend_verification(db, clock, settings, visitor.visitor)
    except DomainError as exc:
        return answer.refused_to(exc, "/account", kind="info")
    return answer.done("/account", f"We've sent a new link to {visitor.visitor.email}.")


def _security(visitor: Visitor) -> FormPage:
    def context() -> dict[str, object]:
        setup = sign_in.totp_setup(visitor)
        ctx: dict[str, object] = {"visitor": visitor, "setup": setup}
        if setup is not None:
            ctx["qr_svg"] = _qr_svg(setup.otpauth_uri)
        return ctx

    return FormPage("people/security.html", context, field="totp_code")


@router.get("/account/security", response_class=HTMLResponse)
def security_page(request: Request, visitor: CurrentVisitor) -> HTMLResponse:
    return _show(request, _security(visitor.visitor))


@router.post("/account/security/start")
def security_start(visitor: CurrentVisitor, db: DbSession, answer: Answer) -> Response:
    try:
        sign_in.start_totp(db, visitor.visitor)
    except DomainError as exc:
        return answer.refused_to(exc, "/account/security", kind="info")
    return redirect("/account/security")


TOTP_CHANGED = {
    "confirm": "Two-step sign-in is on. You'll need a code from your app each time you sign in.",
    "disable": "Two-step sign-in is off.",
}


@router.post("/account/security/{change}", response_class=HTMLResponse)
def security_change(
    change: Literal["confirm", "disable"],
    visitor: CurrentVisitor,
    db: DbSession,
    clock: ClockDep,
    answer: Answer,
    totp_code: TotpCode = "",
) -> Response:
    """Turn two-step sign-in on (a first code confirms the app) or off (a code again)."""
    try:
        if change == "confirm":
            sign_in.confirm_totp(db, clock, visitor.visitor, code=totp_code, ip=visitor.ip)
        else:
            sign_in.disable_totp(db, clock, visitor.visitor, code=totp_code, ip=visitor.ip)
    except DomainError as exc:
        return answer.refused(exc, _security(visitor.visitor))
    return answer.done("/account/security", TOTP_CHANGED[change])


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
        },
    )


@router.post("/account/identity", response_class=HTMLResponse)
def identity_submit(
    visitor: CurrentVisitor,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
    answer: Answer,
    facility_id: Annotated[str, Form(max_length=20)] = "",
    photo_id: Annotated[UploadFile | None, File()] = None,
    selfie: Annotated[UploadFile | None, File()] = None,
) -> Response:
    try:
        identity.submit_identity(
            db,
            clock,
            settings,
            visitor.visitor,
            facility_id=int_or_none(facility_id),
            photo_id=read_upload(photo_id, settings),
            selfie=read_upload(selfie, settings),
            ip=visitor.ip,
        )
    except DomainError as exc:
        page = FormPage(
            "people/identity.html",
            lambda: {
                "visitor": visitor.visitor,
                "facilities": _facility_options(db),
                "form": {"facility_id": facility_id},
                "latest": None,
            },
            field="photo_id",
        )
        return answer.refused(exc, page)
    return answer.done(
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
    return _show(request, _credentials(db, visitor.visitor))


@router.post("/account/credentials", response_class=HTMLResponse)
def credentials_submit(
    visitor: CurrentVisitor,
    db: DbSession,
    clock: ClockDep,
    answer: Answer,
    facility_id: Annotated[str, Form(max_length=20)] = "",
    kind: Annotated[str, Form(max_length=20)] = "",
    number: Annotated[str, Form(max_length=60)] = "",
    issuer: Annotated[str, Form(max_length=120)] = "",
) -> Response:
    try:
        credentials.submit_credential(
            db,
            clock,
            visitor.visitor,
            facility_id=int_or_none(facility_id),
            kind=kind,
            number=number,
            issuer=issuer,
            ip=visitor.ip,
        )
    except DomainError as exc:
        form = {"facility_id": facility_id, "kind": kind, "number": number, "issuer": issuer}
        return answer.refused(exc, _credentials(db, visitor.visitor, form))
    return answer.done(
        "/account/credentials",
        "Thank you. The facility will check your credential and we'll e-mail you when they have.",
    )


# --- staff: signing in, and the console's home -----------------------------------------


@router.get("/staff/sign-in", response_class=HTMLResponse)
def staff_sign_in_page(request: Request, next: str = "") -> HTMLResponse:
    return render(request, "staff/sign_in.html", {"next": next})


@router.post("/staff/sign-in", response_class=HTMLResponse)
def staff_sign_in_submit(
    request: Request,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
    answer: Answer,
    email: Email = "",
    password: Password = "",
    next: Next = "",
) -> Response:
    try:
        result = staff_service.sign_in(
            db,
            settings,
            clock,
            email=email,
            password=password,
            totp_code=None,
            ip=client_ip(request),
            user_agent=user_agent(request),
            allow_second_step=True,
        )
    except DomainError as exc:
        return answer.refused(exc, _sign_in_form("staff/sign_in.html", email, next))
    if result.needs_code:
        target = "/staff/sign-in/code" + (f"?next={next}" if next else "")
        return _signed_in(target, settings, result.session)
    return _signed_in(_staff_next(next), settings, result.session)


@router.get("/staff/sign-in/code", response_class=HTMLResponse)
def staff_code_page(request: Request, db: DbSession, clock: ClockDep, next: str = "") -> Response:
    return _code_page(request, db, clock, STAFF_STEP, next)


@router.post("/staff/sign-in/code", response_class=HTMLResponse)
def staff_code_submit(
    request: Request,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
    answer: Answer,
    totp_code: TotpCode = "",
    next: Next = "",
) -> Response:
    return _code_submit(request, db, settings, clock, answer, STAFF_STEP, totp_code, next)


@router.post("/staff/sign-out")
def staff_sign_out_submit(staff: CurrentStaff, db: DbSession, clock: ClockDep) -> Response:
    staff_service.sign_out(db, clock, staff.session, staff.ip)
    response = redirect("/staff/sign-in")
    clear_session_cookie(response, SESSION_COOKIE)
    return response


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


# --- staff: identity and credential reviews --------------------------------------------

IDENTITY_QUEUE = "/staff/facilities/{facility_id}/identity-reviews"
CREDENTIAL_QUEUE = "/staff/facilities/{facility_id}/credential-reviews"


@router.get(IDENTITY_QUEUE, response_class=HTMLResponse)
def identity_queue_page(
    request: Request, facility: ReviewingFacility, staff: CurrentStaff, db: DbSession
) -> HTMLResponse:
    pending = identity.list_identity_reviews(db, facility)
    return render(
        request,
        "people/staff_identity_reviews.html",
        {"staff": staff, "facility": facility, "reviews": pending},
    )


def _identity_review(
    db: DbSession, staff: CurrentStaff, facility: Facility, review_id: int, reason: str | None
) -> FormPage:
    def context() -> dict[str, object]:
        submission, visitor = identity.access_identity_review(db, facility, review_id)
        ctx: dict[str, object] = {
            "staff": staff,
            "facility": facility,
            "submission": submission,
            "visitor": visitor,
        }
        if reason is not None:
            ctx["form"] = {"reason": reason}
        return ctx

    field = "form" if reason is None else "reason"
    return FormPage("people/staff_identity_review.html", context, field=field)


@router.get(IDENTITY_QUEUE + "/{review_id}", response_class=HTMLResponse)
def identity_review_page(
    request: Request,
    facility: ReviewingFacility,
    review_id: int,
    staff: CurrentStaff,
    db: DbSession,
) -> HTMLResponse:
    return _show(request, _identity_review(db, staff, facility, review_id, None))


def _decide_identity(
    facility: Facility,
    review_id: int,
    staff: CurrentStaff,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
    answer: Answer,
    *,
    reason: str | None,
) -> Response:
    """Verify (no reason) or reject (a reason) an identity check, back to the queue."""
    verified = reason is None
    try:
        _submission, visitor = identity.decide_identity(
            db,
            clock,
            settings,
            staff.actor,
            facility,
            review_id,
            verified=verified,
            reason=reason or "",
        )
    except DomainError as exc:
        return answer.refused(exc, _identity_review(db, staff, facility, review_id, reason))
    queue = IDENTITY_QUEUE.format(facility_id=facility.id)
    if verified:
        return answer.done(
            queue, f"{visitor.legal_name}'s identity is confirmed. We've e-mailed them."
        )
    return answer.done(
        queue, f"{visitor.legal_name}'s identity was not confirmed. We've e-mailed them the reason."
    )


@router.post(IDENTITY_QUEUE + "/{review_id}/verify", response_class=HTMLResponse)
def identity_verify_submit(
    facility: ReviewingFacility,
    review_id: int,
    staff: CurrentStaff,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
    answer: Answer,
) -> Response:
    return _decide_identity(facility, review_id, staff, db, settings, clock, answer, reason=None)


@router.post(IDENTITY_QUEUE + "/{review_id}/reject", response_class=HTMLResponse)
def identity_reject_submit(
    facility: ReviewingFacility,
    review_id: int,
    staff: CurrentStaff,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
    answer: Answer,
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    return _decide_identity(facility, review_id, staff, db, settings, clock, answer, reason=reason)


def _credential_queue(
    db: DbSession, staff: CurrentStaff, facility: Facility, failed: tuple[int, str] | None = None
) -> FormPage:
    """The queue; ``failed`` is the review whose decision was refused, and the reason typed."""

    def context() -> dict[str, object]:
        ctx: dict[str, object] = {
            "staff": staff,
            "facility": facility,
            "reviews": credentials.list_credential_reviews(db, facility),
        }
        if failed is not None:
            ctx.update(failed_id=failed[0], form={"reason": failed[1]})
        return ctx

    if failed is None:
        return FormPage("people/staff_credential_reviews.html", context)
    field = f"reason-{failed[0]}"
    return FormPage(
        "people/staff_credential_reviews.html", context, field=field, rename={"reason": field}
    )


@router.get(CREDENTIAL_QUEUE, response_class=HTMLResponse)
def credential_queue_page(
    request: Request, facility: ReviewingFacility, staff: CurrentStaff, db: DbSession
) -> HTMLResponse:
    return _show(request, _credential_queue(db, staff, facility))


@router.post(CREDENTIAL_QUEUE + "/{review_id}/{decision}", response_class=HTMLResponse)
def credential_decide_submit(
    facility: ReviewingFacility,
    review_id: int,
    decision: Literal["verify", "reject"],
    staff: CurrentStaff,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
    answer: Answer,
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    try:
        _credential, visitor = credentials.decide_credential(
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
        return answer.refused(exc, _credential_queue(db, staff, facility, (review_id, reason)))
    word = "verified" if decision == "verify" else "not verified"
    return answer.done(
        CREDENTIAL_QUEUE.format(facility_id=facility.id),
        f"{visitor.legal_name}'s credential is {word}. We've e-mailed them.",
    )
