"""Staff sign-in (API and pages) and the staff console's home."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from openvisit.auth import service as auth
from openvisit.auth.cookies import SESSION_COOKIE, clear_session_cookie, set_session_cookie
from openvisit.auth.permissions import Permission, StaffRoleName
from openvisit.deps import ClockDep, CurrentStaff, DbSession, SettingsDep, client_ip
from openvisit.errors import DomainError, Forbidden
from openvisit.facilities.service import access_facility
from openvisit.people import staff_service
from openvisit.web.render import form_error, redirect, render

api = APIRouter(prefix="/api/v1", tags=["staff"])
pages = APIRouter(include_in_schema=False)


class StaffSignInBody(BaseModel):
    email: str = Field(max_length=254)
    password: str = Field(max_length=256)
    totp_code: str | None = Field(default=None, max_length=12)


class StaffOut(BaseModel):
    id: int
    email: str
    name: str
    roles: list[dict[str, object]]


class StaffSessionOut(BaseModel):
    staff: StaffOut
    csrf_token: str


def _max_age(settings: SettingsDep) -> int:
    return settings.session_hours * 3600


@api.post("/staff-session", response_model=StaffSessionOut)
def api_sign_in(
    body: StaffSignInBody,
    request: Request,
    response: Response,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
) -> StaffSessionOut:
    """Sign in with e-mail, password and (unless relaxed) the current TOTP code."""
    result = staff_service.sign_in(
        db,
        settings,
        clock,
        email=body.email,
        password=body.password,
        totp_code=body.totp_code or ("" if settings.staff_totp_required else None),
        ip=client_ip(request),
        user_agent=request.headers.get("user-agent", ""),
    )
    csrf = set_session_cookie(
        response, settings, SESSION_COOKIE, result.session.token, _max_age(settings)
    )
    roles = [
        {"facility_id": r.facility_id, "role": r.role.value} for r in _roles(db, result.member.id)
    ]
    return StaffSessionOut(
        staff=StaffOut(
            id=result.member.id, email=result.member.email, name=result.member.name, roles=roles
        ),
        csrf_token=csrf,
    )


def _roles(db: DbSession, staff_id: int):  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from openvisit.people.models import StaffRole

    return db.scalars(select(StaffRole).where(StaffRole.staff_id == staff_id)).all()


@api.delete("/staff-session", status_code=204)
def api_sign_out(staff: CurrentStaff, db: DbSession, clock: ClockDep, response: Response) -> None:
    staff_service.sign_out(db, clock, staff.session, staff.ip)
    clear_session_cookie(response, SESSION_COOKIE)


@api.get("/staff/me", response_model=StaffOut)
def api_me(staff: CurrentStaff, db: DbSession) -> StaffOut:
    return StaffOut(
        id=staff.member.id,
        email=staff.member.email,
        name=staff.member.name,
        roles=[
            {"facility_id": r.facility_id, "role": r.role.value}
            for r in _roles(db, staff.member.id)
        ],
    )


class StaffCreate(BaseModel):
    email: str = Field(max_length=254)
    name: str = Field(max_length=200)
    password: str = Field(max_length=256)
    role: StaffRoleName


class StaffCreated(BaseModel):
    staff: StaffOut
    totp_secret: str
    otpauth_uri: str


@api.get(
    "/facilities/{facility_id}/staff",
    response_model=list[StaffOut],
    openapi_extra={"x-permission": Permission.MANAGE_STAFF.value},
)
def api_list_staff(facility_id: int, staff: CurrentStaff, db: DbSession) -> list[StaffOut]:
    access_facility(db, staff, facility_id, Permission.MANAGE_STAFF)
    return [
        StaffOut(id=m.id, email=m.email, name=m.name, roles=roles)
        for m, roles in staff_service.staff_of_facility(db, facility_id)
    ]


@api.post(
    "/facilities/{facility_id}/staff",
    response_model=StaffCreated,
    status_code=201,
    openapi_extra={"x-permission": Permission.MANAGE_STAFF.value},
)
def api_create_staff(
    facility_id: int, body: StaffCreate, staff: CurrentStaff, db: DbSession, clock: ClockDep
) -> StaffCreated:
    """A facility admin adds a colleague; the TOTP secret is shown once, to hand over."""
    access_facility(db, staff, facility_id, Permission.MANAGE_STAFF)
    if body.role == StaffRoleName.PROVIDER_ADMIN:
        raise Forbidden("Only the provider can create provider admins.")
    created = staff_service.create_staff(
        db,
        clock,
        staff.actor,
        email=body.email,
        name=body.name,
        password=body.password,
        role=body.role,
        facility_id=facility_id,
    )
    member = created.member
    return StaffCreated(
        staff=StaffOut(
            id=member.id,
            email=member.email,
            name=member.name,
            roles=[{"facility_id": facility_id, "role": body.role.value}],
        ),
        totp_secret=member.totp_secret,
        otpauth_uri=created.otpauth_uri,
    )


# --- pages ---------------------------------------------------------------------------


def _safe_next(next_url: str | None) -> str:
    if next_url and next_url.startswith("/staff") and not next_url.startswith("//"):
        return next_url
    return "/staff"


@pages.get("/staff/sign-in", response_class=HTMLResponse)
def sign_in_page(request: Request, next: str = "") -> HTMLResponse:
    return render(request, "staff/sign_in.html", {"next": next})


@pages.post("/staff/sign-in", response_class=HTMLResponse)
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
        result = staff_service.sign_in(
            db,
            settings,
            clock,
            email=email,
            password=password,
            totp_code=None,
            ip=client_ip(request),
            user_agent=request.headers.get("user-agent", ""),
        )
    except DomainError as exc:
        return form_error(
            request,
            db,
            "staff/sign_in.html",
            {"next": next, "form": {"email": email}},
            exc,
            field="email",
        )
    target = "/staff/sign-in/code" if result.needs_code else _safe_next(next)
    if result.needs_code and next:
        target += f"?next={next}"
    response = redirect(target)
    set_session_cookie(response, settings, SESSION_COOKIE, result.session.token, _max_age(settings))
    return response


def _pending(request: Request, db: DbSession, clock: ClockDep):  # type: ignore[no-untyped-def]
    row = auth.find_session(db, request.cookies.get(SESSION_COOKIE), clock.now())
    return row, staff_service.pending_sign_in(db, row)


def _code_page(
    request: Request,
    member,
    next: str,
    errors: dict | None = None,  # type: ignore[no-untyped-def]
    status: int = 200,
) -> HTMLResponse:
    enrol = member.totp_confirmed_at is None
    ctx = {"next": next, "enrol": enrol, "errors": errors or {}}
    if enrol:
        import segno

        uri = auth.totp_uri(member.totp_secret, member.email)
        ctx.update(secret=member.totp_secret, qr_svg=segno.make(uri).svg_inline(scale=4))
    return render(request, "staff/code.html", ctx, status_code=status)


@pages.get("/staff/sign-in/code", response_class=HTMLResponse)
def code_page(request: Request, db: DbSession, clock: ClockDep, next: str = "") -> Response:
    _row, member = _pending(request, db, clock)
    if member is None:
        return redirect("/staff/sign-in")
    return _code_page(request, member, next)


@pages.post("/staff/sign-in/code", response_class=HTMLResponse)
def code_submit(
    request: Request,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
    totp_code: Annotated[str, Form(max_length=12)] = "",
    next: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    row, member = _pending(request, db, clock)
    if row is None or member is None:
        return redirect("/staff/sign-in")
    try:
        new = staff_service.confirm_code(
            db,
            settings,
            clock,
            row=row,
            code=totp_code,
            ip=client_ip(request),
            user_agent=request.headers.get("user-agent", ""),
        )
    except DomainError as exc:
        if not exc.keep_changes:
            db.rollback()
        return _code_page(
            request, member, next, exc.fields or {"totp_code": exc.message}, exc.http_status
        )
    response = redirect(_safe_next(next))
    set_session_cookie(response, settings, SESSION_COOKIE, new.token, _max_age(settings))
    return response


@pages.post("/staff/sign-out")
def sign_out_submit(staff: CurrentStaff, db: DbSession, clock: ClockDep) -> Response:
    staff_service.sign_out(db, clock, staff.session, staff.ip)
    response = redirect("/staff/sign-in")
    clear_session_cookie(response, SESSION_COOKIE)
    return response


@pages.get("/staff", response_class=HTMLResponse)
def staff_home(request: Request, staff: CurrentStaff, db: DbSession) -> Response:
    facilities = staff_service.list_facilities_for(db, staff.facility_ids())
    if len(facilities) == 1 and not staff.is_provider_admin:
        return redirect(f"/staff/facilities/{facilities[0].id}")
    return render(request, "staff/home.html", {"staff": staff, "facilities": facilities})


@pages.get("/staff/facilities/{facility_id}", response_class=HTMLResponse)
def facility_home(
    request: Request, facility_id: int, staff: CurrentStaff, db: DbSession
) -> HTMLResponse:
    facility = access_facility(db, staff, facility_id, Permission.VIEW_FACILITY)
    return render(
        request, "staff/facility.html", {"staff": staff, "facility": facility, "P": Permission}
    )
