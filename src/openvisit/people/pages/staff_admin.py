"""Staff accounts on the pages: a facility's staff list, inviting a colleague, a member's
roles, second factor and deactivation (facility admins at their facility, provider admins
anywhere); joining from the e-mailed invitation; changing one's own password. Each page
calls the service its JSON route calls (people.staff_lifecycle)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from fastapi import APIRouter, Form, Path, Request, Response
from fastapi.responses import HTMLResponse

from openvisit.auth.cookies import set_signed_in
from openvisit.auth.permissions import StaffRoleName
from openvisit.deps import MAX_ID, CurrentStaff, DbSession, StaffingFacility, client_ip
from openvisit.errors import DomainError
from openvisit.facilities.models import Facility
from openvisit.people import staff_lifecycle, staff_service
from openvisit.people.context import StaffContext
from openvisit.people.pages.shared import Email, Password, show
from openvisit.people.routes import user_agent
from openvisit.web.answers import FormPage, Page
from openvisit.web.render import redirect, render

router = APIRouter(include_in_schema=False)

PAGES = "/staff/facilities/{facility_id}/staff"
ONE = PAGES + "/{staff_id}"
StaffId = Annotated[int, Path(ge=1, le=MAX_ID)]
Roles = Annotated[list[StaffRoleName], Form(max_length=len(StaffRoleName))]
Name = Annotated[str, Form(max_length=200)]
Token = Annotated[str, Form(max_length=200)]

# The roles a facility grants, in words: (value, name, what it allows).
ROLE_CHOICES = [
    (StaffRoleName.OFFICER.value, "Officer", "monitor live visits, lockdowns"),
    (StaffRoleName.SCHEDULER.value, "Scheduler", "residents, approvals, bookings, money reports"),
    (StaffRoleName.INVESTIGATOR.value, "Investigator", "audit log, monitoring"),
    (StaffRoleName.FACILITY_ADMIN.value, "Facility admin", "everything at this facility"),
]


def _list_url(facility: Facility) -> str:
    return PAGES.format(facility_id=facility.id)


def _member_url(facility: Facility, staff_id: int) -> str:
    return ONE.format(facility_id=facility.id, staff_id=staff_id)


@router.get(PAGES, response_class=HTMLResponse)
def staff_list_page(
    request: Request, facility: StaffingFacility, staff: CurrentStaff, db: DbSession
) -> HTMLResponse:
    return render(
        request,
        "staff/staff_list.html",
        {
            "staff": staff,
            "facility": facility,
            "members": staff_service.staff_of_facility(db, facility.id),
        },
    )


def _invite_form(staff: StaffContext, facility: Facility, form: Mapping[str, object]) -> FormPage:
    def context() -> dict[str, object]:
        return {"staff": staff, "facility": facility, "roles": ROLE_CHOICES, "form": form}

    return FormPage("staff/staff_invite.html", context, field="email")


@router.get(PAGES + "/invite", response_class=HTMLResponse)
def invite_page(request: Request, facility: StaffingFacility, staff: CurrentStaff) -> HTMLResponse:
    return show(request, _invite_form(staff, facility, {}))


@router.post(PAGES + "/invite", response_class=HTMLResponse)
def invite_submit(
    facility: StaffingFacility,
    staff: CurrentStaff,
    page: Page,
    name: Name = "",
    email: Email = "",
    roles: Roles = [],  # noqa: B006 - FastAPI copies defaults
) -> Response:
    try:
        member = staff_lifecycle.invite(
            page.db, page.clock, page.settings, staff, facility, email=email, name=name, roles=roles
        )
    except DomainError as exc:
        form = {"name": name, "email": email, "roles": [r.value for r in roles]}
        return page.refused(exc, _invite_form(staff, facility, form))
    return page.done(
        _list_url(facility),
        f"We've e-mailed {member.name} an invitation at {member.email}. "
        "They choose their own password and authenticator app.",
    )


def _member_page(
    staff: StaffContext, facility: Facility, staff_id: int, page: Page, chosen: list[str] | None
) -> FormPage:
    """A member's page; ``chosen`` is what a refused roles form ticked."""

    def context() -> dict[str, object]:
        member, held = staff_lifecycle.access_member(page.db, facility.id, staff_id)
        here = [r.role.value for r in held if r.facility_id == facility.id]
        return {
            "staff": staff,
            "facility": facility,
            "member": member,
            "roles": ROLE_CHOICES,
            "chosen": here if chosen is None else chosen,
        }

    return FormPage("staff/staff_member.html", context, field="roles")


@router.get(ONE, response_class=HTMLResponse)
def member_page(
    request: Request, facility: StaffingFacility, staff: CurrentStaff, staff_id: StaffId, page: Page
) -> HTMLResponse:
    return show(request, _member_page(staff, facility, staff_id, page, None))


@router.post(ONE + "/roles", response_class=HTMLResponse)
def roles_submit(
    facility: StaffingFacility,
    staff: CurrentStaff,
    staff_id: StaffId,
    page: Page,
    roles: Roles = [],  # noqa: B006 - FastAPI copies defaults
) -> Response:
    staff_lifecycle.access_member(page.db, facility.id, staff_id)  # another's: not found
    try:
        member = staff_lifecycle.change_roles(page.db, page.clock, staff, facility, staff_id, roles)
    except DomainError as exc:
        chosen = [r.value for r in roles]
        return page.refused(exc, _member_page(staff, facility, staff_id, page, chosen))
    return page.done(_member_url(facility, staff_id), f"{member.name}'s roles are saved.")


@router.post(ONE + "/{action}", response_class=HTMLResponse)
def member_action_submit(
    facility: StaffingFacility,
    staff: CurrentStaff,
    staff_id: StaffId,
    action: Annotated[str, Path(pattern="^(invitation|second-factor-reset|deactivate)$")],
    page: Page,
) -> Response:
    """Send a new invitation, reset the authenticator app, or deactivate."""
    staff_lifecycle.access_member(page.db, facility.id, staff_id)  # another's: not found
    db, clock = page.db, page.clock
    try:
        if action == "invitation":
            member = staff_lifecycle.resend_invitation(
                db, clock, page.settings, staff, facility, staff_id
            )
            message = f"We've e-mailed {member.name} a new invitation link."
        elif action == "second-factor-reset":
            member = staff_lifecycle.reset_second_factor(db, clock, staff, facility, staff_id)
            message = (
                f"{member.name}'s authenticator app is reset. They're signed out and set up "
                "a new one at their next sign-in."
            )
        else:
            member = staff_lifecycle.deactivate(db, clock, staff, facility, staff_id)
            message = f"{member.name} is deactivated and signed out everywhere."
    except DomainError as exc:
        return page.refused(exc, _member_page(staff, facility, staff_id, page, None))
    return page.done(_member_url(facility, staff_id), message)


# --- joining from the invitation --------------------------------------------------------------


@router.get("/staff/invitation", response_class=HTMLResponse)
def invitation_page(page: Page, token: str = "") -> Response:
    # A form that POSTs, so that mail scanners following the link don't spend it.
    try:
        member = staff_lifecycle.check_invitation(page.db, page.clock, token=token[:200])
    except DomainError as exc:
        return page.render(
            "staff/invitation.html", {"link_error": exc}, status_code=exc.http_status
        )
    return page.render("staff/invitation.html", {"token": token, "member": member})


def _invitation_form(page: Page, token: str, refusal: DomainError) -> FormPage:
    """The password form again (a weak password), or what is wrong with the link."""

    def context() -> dict[str, object]:
        if refusal.fields:
            member = staff_lifecycle.check_invitation(page.db, page.clock, token=token)
            return {"token": token, "member": member}
        return {"link_error": refusal}

    return FormPage("staff/invitation.html", context, field="password")


@router.post("/staff/invitation", response_class=HTMLResponse)
def invitation_submit(page: Page, token: Token = "", password: Password = "") -> Response:
    """The password is set and the link spent; the code step that follows shows the new
    authenticator secret to scan (the sign-in pages' own enrolment)."""
    ip = client_ip(page.request)
    try:
        member = staff_lifecycle.accept_invitation(
            page.db, page.clock, token=token, password=password, ip=ip
        )
    except DomainError as exc:
        return page.refused(exc, _invitation_form(page, token, exc))
    new = staff_lifecycle.enrolment_session(
        page.db, page.clock, member, ip=ip, user_agent=user_agent(page.request)
    )
    response = redirect("/staff/sign-in/code")
    set_signed_in(response, page.settings, new)
    return response


# --- one's own password ----------------------------------------------------------------------


@router.get("/staff/account/password", response_class=HTMLResponse)
def password_page(request: Request, staff: CurrentStaff) -> HTMLResponse:
    return render(request, "staff/password.html", {"staff": staff})


@router.post("/staff/account/password", response_class=HTMLResponse)
def password_submit(
    staff: CurrentStaff,
    page: Page,
    current_password: Password = "",
    new_password: Password = "",
) -> Response:
    try:
        staff_lifecycle.change_own_password(
            page.db,
            page.clock,
            page.settings,
            staff,
            current_password=current_password,
            new_password=new_password,
        )
    except DomainError as exc:
        form = FormPage("staff/password.html", lambda: {"staff": staff}, field="current_password")
        return page.refused(exc, form)
    return page.done("/staff", "Your password is changed. Your other devices are signed out.")
