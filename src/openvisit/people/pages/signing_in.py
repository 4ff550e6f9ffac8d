"""Signing in and out on the pages, visitors and staff alike (a password, then a code if
one is owed), and a visitor's other ways in: signing up, confirming the e-mail address,
resetting a forgotten password."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Generic

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from openvisit.auth import service as auth
from openvisit.auth import sign_in as signing_in
from openvisit.auth.cookies import SESSION_COOKIE, clear_session_cookie, set_signed_in
from openvisit.auth.models import UserSession
from openvisit.auth.sign_in import A, AccountType, Attempt, SignedIn
from openvisit.clock import Clock
from openvisit.config import Settings
from openvisit.deps import (
    ClockDep,
    CurrentStaff,
    CurrentVisitor,
    DbSession,
    OptionalVisitor,
    client_ip,
)
from openvisit.errors import DomainError
from openvisit.people import accounts, sign_in, staff_service
from openvisit.people.models import StaffMember, Visitor
from openvisit.people.pages.shared import Email, Next, Password, TotpCode, qr_svg, show
from openvisit.people.routes import user_agent
from openvisit.web.answers import FormPage, Page
from openvisit.web.render import flash_redirect, redirect, render

router = APIRouter(include_in_schema=False)

_LOCAL_PATH = re.compile(r"^/[A-Za-z0-9/_\-?=&.%~]*$")


def _visitor_next(next_url: str) -> str:
    """Only a path on this site (never //evil.example or a staff page)."""
    if (
        next_url
        and _LOCAL_PATH.match(next_url)
        and not next_url.startswith("//")
        and not next_url.startswith("/staff")
    ):
        return next_url
    return "/account"


def _staff_next(next_url: str) -> str:
    if next_url and next_url.startswith("/staff") and not next_url.startswith("//"):
        return next_url
    return "/staff"


def _visitor_code_form(_visitor: Visitor, next: str) -> FormPage:
    return FormPage("people/code.html", lambda: {"next": next}, field="totp_code")


def _staff_code_form(member: StaffMember, next: str) -> FormPage:
    """The first time, the code page also shows the secret to enrol an authenticator app."""

    def context() -> dict[str, object]:
        enrol = member.totp_confirmed_at is None
        ctx: dict[str, object] = {"next": next, "enrol": enrol}
        if enrol:
            uri = auth.totp_uri(member.totp_secret, member.email)
            ctx.update(secret=member.totp_secret, qr_svg=qr_svg(uri))
        return ctx

    return FormPage("staff/code.html", context, field="totp_code")


@dataclass(frozen=True)
class _Door(Generic[A]):
    """How one kind of account signs in on the pages."""

    kind: AccountType[A]
    sign_in: Callable[[Session, Settings, Clock, Attempt], SignedIn[A]]
    url: str  # the password step; the code step is at url + "/code"
    form: str  # the password step's template
    code_form: Callable[[A, str], FormPage]  # the code step's page, given ``next``
    landing: Callable[[str], str]  # where ``next`` may lead once signed in
    code_next: Callable[[str], str]  # ``next`` as carried to the code step


VISITOR_DOOR = _Door(
    kind=sign_in.VISITORS,
    sign_in=sign_in.sign_in,
    url="/sign-in",
    form="people/sign_in.html",
    code_form=_visitor_code_form,
    landing=_visitor_next,
    code_next=_visitor_next,
)
STAFF_DOOR = _Door(
    kind=staff_service.STAFF,
    sign_in=staff_service.sign_in,
    url="/staff/sign-in",
    form="staff/sign_in.html",
    code_form=_staff_code_form,
    landing=_staff_next,
    code_next=str,  # checked once signed in
)


def _signed_in(url: str, settings: Settings, new: auth.NewSession) -> Response:
    response = redirect(url)
    set_signed_in(response, settings, new)
    return response


def _half_signed_in(
    request: Request, db: Session, clock: Clock, door: _Door[A]
) -> tuple[UserSession, A] | None:
    """The half session waiting for this kind of account's code, and its account."""
    row = auth.find_session(db, request.cookies.get(SESSION_COOKIE), clock.now())
    account = signing_in.pending_account(db, door.kind, row)
    return (row, account) if row is not None and account is not None else None


class _Posted:
    """A sign-in form as posted (the password step's fields, or the code step's), with
    what answering it needs."""

    def __init__(
        self,
        page: Page,
        email: Email = "",
        password: Password = "",
        totp_code: TotpCode = "",
        next: Next = "",
    ) -> None:
        self.page = page
        self.email, self.password, self.totp_code, self.next = email, password, totp_code, next

    def password_step(self, door: _Door[Any]) -> Response:
        attempt = Attempt(
            email=self.email,
            password=self.password,
            totp_code=None,
            ip=client_ip(self.page.request),
            user_agent=user_agent(self.page.request),
            from_page=True,
        )
        try:
            result = door.sign_in(self.page.db, self.page.settings, self.page.clock, attempt)
        except DomainError as exc:
            context = {"next": self.next, "form": {"email": self.email}}
            return self.page.refused(exc, FormPage(door.form, lambda: context, field="email"))
        if result.needs_code:
            carried = f"?next={door.code_next(self.next)}" if self.next else ""
            return _signed_in(f"{door.url}/code{carried}", self.page.settings, result.session)
        return _signed_in(door.landing(self.next), self.page.settings, result.session)

    def code_step(self, door: _Door[Any]) -> Response:
        pending = _half_signed_in(self.page.request, self.page.db, self.page.clock, door)
        if pending is None:
            return redirect(door.url)
        row, account = pending
        try:
            result = signing_in.confirm_code(
                self.page.db,
                self.page.settings,
                self.page.clock,
                door.kind,
                row=row,
                code=self.totp_code,
                ip=client_ip(self.page.request),
                user_agent=user_agent(self.page.request),
            )
        except DomainError as exc:
            return self.page.refused(exc, door.code_form(account, self.next))
        return _signed_in(door.landing(self.next), self.page.settings, result.session)


Posted = Annotated[_Posted, Depends()]


def _code_page(
    request: Request, db: Session, clock: Clock, door: _Door[Any], next: str
) -> Response:
    pending = _half_signed_in(request, db, clock, door)
    if pending is None:
        return redirect(door.url)
    return show(request, door.code_form(pending[1], next))


# --- visitors ---------------------------------------------------------------------------


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in_page(request: Request, visitor: OptionalVisitor, next: str = "") -> Response:
    if visitor is not None:
        return redirect(_visitor_next(next))
    return render(request, "people/sign_in.html", {"next": next[:500]})


@router.post("/sign-in", response_class=HTMLResponse)
def sign_in_submit(posted: Posted) -> Response:
    return posted.password_step(VISITOR_DOOR)


@router.get("/sign-in/code", response_class=HTMLResponse)
def code_page(page: Page, next: str = "") -> Response:
    return _code_page(page.request, page.db, page.clock, VISITOR_DOOR, next[:500])


@router.post("/sign-in/code", response_class=HTMLResponse)
def code_submit(posted: Posted) -> Response:
    return posted.code_step(VISITOR_DOOR)


@router.post("/sign-out")
def sign_out_submit(
    page: Page,
    visitor: CurrentVisitor,
) -> Response:
    sign_in.sign_out(page.db, page.clock, visitor.session, visitor.ip)
    response = page.done("/", "You have signed out.")
    clear_session_cookie(response, SESSION_COOKIE)
    return response


@router.get("/sign-up", response_class=HTMLResponse)
def sign_up_page(request: Request, visitor: OptionalVisitor) -> Response:
    if visitor is not None:
        return redirect("/account")
    return render(request, "people/sign_up.html")


@router.post("/sign-up", response_class=HTMLResponse)
def sign_up_submit(
    page: Page,
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
        email_to = accounts.register(
            page.db,
            page.clock,
            page.settings,
            email=email,
            password=password,
            legal_name=legal_name,
            date_of_birth=accounts.DateParts(dob_day, dob_month, dob_year),
            phone=phone,
            ip=client_ip(page.request),
        )
    except DomainError as exc:
        return page.refused(exc, FormPage("people/sign_up.html", lambda: {"form": form}))
    # The same answer whether or not the address already had an account.
    return page.done("/sign-in", accounts.sign_up_answer(email_to))


@router.get("/verify-email", response_class=HTMLResponse)
def verify_email_page(request: Request, token: str = "") -> HTMLResponse:
    # A button that POSTs, so that mail scanners following links don't spend the token.
    return render(request, "people/verify_email.html", {"token": token[:200]})


@router.post("/verify-email", response_class=HTMLResponse)
def verify_email_submit(
    page: Page,
    visitor: OptionalVisitor,
    token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    try:
        accounts.verify_email(page.db, page.clock, token=token, ip=client_ip(page.request))
    except DomainError as exc:
        failed = FormPage(
            "people/verify_email.html", lambda: {"token": "", "failed": True}, field="token"
        )
        return page.refused(exc, failed)
    target = "/account" if visitor is not None else "/sign-in"
    return page.done(target, "Thank you: your e-mail address is confirmed.")


@router.get("/forgot-password", response_class=HTMLResponse)
def forgot_page(request: Request) -> HTMLResponse:
    return render(request, "people/forgot_password.html")


@router.post("/forgot-password", response_class=HTMLResponse)
def forgot_submit(page: Page, email: Email = "") -> Response:
    if not email.strip():
        msg = "Enter the e-mail address you signed up with"
        return page.render(
            "people/forgot_password.html", {"errors": {"email": msg}}, status_code=422
        )
    accounts.request_password_reset(
        page.db, page.clock, page.settings, email=email, ip=client_ip(page.request)
    )
    return flash_redirect(
        page.request,
        "/sign-in",
        f"If there is an account for {email.strip()}, we've sent it a link to "
        "reset the password. The link works for 1 hour.",
        kind="info",
    )


@router.get("/reset-password", response_class=HTMLResponse)
def reset_page(page: Page, token: str = "") -> Response:
    try:
        accounts.check_reset_link(page.db, page.clock, token=token[:200])
    except DomainError as exc:
        return page.render(
            "people/reset_password.html",
            {"token": "", "link_error": exc},
            status_code=exc.http_status,
        )
    return page.render("people/reset_password.html", {"token": token})


@router.post("/reset-password", response_class=HTMLResponse)
def reset_submit(
    page: Page,
    token: Annotated[str, Form(max_length=200)] = "",
    password: Password = "",
) -> Response:
    try:
        accounts.complete_password_reset(
            page.db, page.clock, token=token, password=password, ip=client_ip(page.request)
        )
    except DomainError as exc:
        ctx = {"token": token} if exc.fields else {"token": "", "link_error": exc}
        return page.refused(
            exc, FormPage("people/reset_password.html", lambda: ctx, field="password")
        )
    response = page.done(
        "/sign-in", "Your password has been changed. Sign in with your new password."
    )
    clear_session_cookie(response, SESSION_COOKIE)
    return response


# --- staff ------------------------------------------------------------------------------


@router.get("/staff/sign-in", response_class=HTMLResponse)
def staff_sign_in_page(request: Request, next: str = "") -> HTMLResponse:
    return render(request, "staff/sign_in.html", {"next": next})


@router.post("/staff/sign-in", response_class=HTMLResponse)
def staff_sign_in_submit(posted: Posted) -> Response:
    return posted.password_step(STAFF_DOOR)


@router.get("/staff/sign-in/code", response_class=HTMLResponse)
def staff_code_page(page: Page, next: str = "") -> Response:
    return _code_page(page.request, page.db, page.clock, STAFF_DOOR, next)


@router.post("/staff/sign-in/code", response_class=HTMLResponse)
def staff_code_submit(posted: Posted) -> Response:
    return posted.code_step(STAFF_DOOR)


@router.post("/staff/sign-out")
def staff_sign_out_submit(staff: CurrentStaff, db: DbSession, clock: ClockDep) -> Response:
    staff_service.sign_out(db, clock, staff.session, staff.ip)
    response = redirect("/staff/sign-in")
    clear_session_cookie(response, SESSION_COOKIE)
    return response
