"""Facility administration pages (settings, units and hours, closures, kiosks) and the
kiosk device's activation page."""

from __future__ import annotations

from dataclasses import asdict
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from openvisit import bounds
from openvisit.auth.cookies import KIOSK_COOKIE, set_session_cookie
from openvisit.clock import Clock
from openvisit.deps import (
    ClosuresFacility,
    CurrentStaff,
    DbSession,
    ManagedFacility,
    client_ip,
)
from openvisit.errors import Code, DomainError, InvalidInput
from openvisit.facilities import closures, kiosks, units
from openvisit.facilities.models import Facility, HousingUnit
from openvisit.facilities.routes import (
    ManagedClosure,
    ManagedKiosk,
    ManagedUnit,
    kiosk_session_seconds,
)
from openvisit.facilities.schemas import SettingsBody
from openvisit.facilities.settings import (
    BOOL_SETTINGS,
    INT_SETTINGS,
    facility_settings,
    settings_data,
    update_settings,
)
from openvisit.flows import closures as closure_flow
from openvisit.flows import housing
from openvisit.people.context import StaffContext
from openvisit.scheduling import service as scheduling
from openvisit.web.answers import FormPage, Page
from openvisit.web.render import redirect, render

router = APIRouter(include_in_schema=False)

BASE = "/staff/facilities/{facility_id}"
FormText = Annotated[str, Form(max_length=200)]
FormId = Annotated[str, Form(max_length=20)]


def _url(facility: Facility, rest: str) -> str:
    return f"/staff/facilities/{facility.id}/{rest}"


def _optional_id(text: str) -> int | None:
    """A chosen row's id, or None for the form's "none" choice (an empty value)."""
    return bounds.parse_id(text)


def _with_units(
    db: Session, staff: StaffContext, facility: Facility, **extra: Any
) -> dict[str, Any]:
    """What every page of a facility shows, and its units for the forms' unit choice."""
    found = units.list_units(db, facility)
    return {
        "staff": staff,
        "facility": facility,
        "units": found,
        "unit_names": {u.id: u.name for u in found},
        **extra,
    }


# --- settings ------------------------------------------------------------------------


class SettingsForm(BaseModel):
    visit_lengths_minutes: str = Field(default="", max_length=100)
    slot_step_minutes: str = Field(default="", max_length=20)
    min_notice_minutes: str = Field(default="", max_length=20)
    booking_horizon_days: str = Field(default="", max_length=20)
    weekly_remote_visits: str = Field(default="", max_length=20)
    weekly_onsite_visits: str = Field(default="", max_length=20)
    weekly_privileged_visits: str = Field(default="", max_length=20)
    visitors_per_visit: str = Field(default="", max_length=20)
    approved_visitors_per_resident: str = Field(default="", max_length=20)
    join_window_minutes: str = Field(default="", max_length=20)
    reconnect_grace_seconds: str = Field(default="", max_length=20)
    bookings_need_approval: str = Field(default="", max_length=10)
    recording_retention_days: str = Field(default="", max_length=20)
    free_minutes_per_week: str = Field(default="", max_length=20)
    onsite_visits_free: str = Field(default="", max_length=10)
    remote_rate_cents_per_minute: str = Field(default="", max_length=20)
    accepts_other_identity_checks: str = Field(default="", max_length=10)
    # Whole dollars on the page; cents in the API and the database.
    lobby_deposit_daily_cap: str = Field(default="", max_length=20)


_CAP = "lobby_deposit_daily_cap_cents"


def _whole(text: str) -> int | None:
    text = text.strip()
    digits = text.removeprefix("-")
    if not (digits.isascii() and digits.isdigit() and len(digits) < 10):
        return None
    return -int(digits) if text.startswith("-") else int(digits)


def _settings_from_form(form: SettingsForm) -> SettingsBody:
    """Parse the form's text into settings; a value that isn't a number is a field error.

    The ranges are the service's to check, so the numbers are handed over as typed."""
    errors: dict[str, str] = {}
    values: dict[str, Any] = {}
    lengths = [_whole(p) for p in form.visit_lengths_minutes.replace(",", " ").split()]
    if any(n is None for n in lengths):
        errors["visit_lengths_minutes"] = "Enter whole minutes separated by commas, like 20, 30"
    values["visit_lengths_minutes"] = [n for n in lengths if n is not None]
    for name in INT_SETTINGS:
        if name == _CAP:
            continue
        number = _whole(getattr(form, name))
        if number is None:
            errors[name] = "Enter a whole number"
        values[name] = number or 0
    for name in BOOL_SETTINGS:
        values[name] = getattr(form, name) in ("yes", "on", "true")
    cap = _whole(form.lobby_deposit_daily_cap.replace(",", "").strip().lstrip("$"))
    if cap is None:
        errors["lobby_deposit_daily_cap"] = "Enter a whole number of dollars, like 2500"
    values[_CAP] = (cap or 0) * 100
    try:
        values["remote_rate_cents_per_minute"] = Decimal(form.remote_rate_cents_per_minute.strip())
    except InvalidOperation:
        errors["remote_rate_cents_per_minute"] = "Enter a rate in cents, like 15 or 15.50"
    if errors:
        raise InvalidInput(
            "Some settings are not valid.", code=Code.INVALID_SETTINGS, fields=errors
        )
    return SettingsBody.model_construct(**values)


@router.get(BASE + "/settings", response_class=HTMLResponse)
def settings_page(
    request: Request, facility: ManagedFacility, staff: CurrentStaff, db: DbSession
) -> HTMLResponse:
    form = settings_data(facility_settings(db, facility))
    form["visit_lengths_minutes"] = ", ".join(str(n) for n in form["visit_lengths_minutes"])
    form["lobby_deposit_daily_cap"] = str(form.pop(_CAP) // 100)
    return render(
        request, "facilities/settings.html", {"staff": staff, "facility": facility, "form": form}
    )


@router.post(BASE + "/settings", response_class=HTMLResponse)
def settings_submit(
    facility: ManagedFacility,
    form: Annotated[SettingsForm, Form()],
    staff: CurrentStaff,
    page: Page,
) -> Response:
    try:
        update_settings(page.db, page.clock, staff.actor, facility, _settings_from_form(form))
    except DomainError as exc:
        if _CAP in exc.fields:  # the page asks for dollars
            exc.fields = {
                ("lobby_deposit_daily_cap" if k == _CAP else k): (
                    "Enter a daily limit from 0 to 100000 dollars" if k == _CAP else v
                )
                for k, v in exc.fields.items()
            }
        context = {"staff": staff, "facility": facility, "form": form.model_dump()}
        return page.refused(exc, FormPage("facilities/settings.html", lambda: context))
    return page.done(
        _url(facility, "settings"), "Settings saved. New bookings use them from now on."
    )


# --- units and hours -----------------------------------------------------------------


def _unit_context(
    staff: StaffContext,
    facility: Facility,
    unit: HousingUnit,
    *,
    name: str,
    rows: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The unit's page: its hours as rows (or the rows as typed), three empty rows to add
    more, and the rename form holding ``name``."""
    if rows is None:
        rows = [asdict(w) for w in units.hours_of(unit)]
    blank = {"weekday": "", "start": "", "end": ""}
    return {
        "staff": staff,
        "facility": facility,
        "unit": unit,
        "rows": rows + [blank] * 3,
        "form": {"name": name},
    }


def _unit_form(
    staff: StaffContext,
    facility: Facility,
    unit: HousingUnit,
    *,
    field: str,
    name: str,
    rows: list[dict[str, Any]] | None = None,
) -> FormPage:
    """The unit's page again, with a refusal against its hours or its rename form."""
    return FormPage(
        "facilities/unit.html",
        lambda: _unit_context(staff, facility, unit, name=name, rows=rows),
        field=field,
    )


@router.get(BASE + "/units", response_class=HTMLResponse)
def units_page(
    request: Request, facility: ManagedFacility, staff: CurrentStaff, db: DbSession
) -> HTMLResponse:
    return render(request, "facilities/units.html", _with_units(db, staff, facility))


@router.post(BASE + "/units", response_class=HTMLResponse)
def unit_create_submit(
    facility: ManagedFacility,
    staff: CurrentStaff,
    page: Page,
    name: FormText = "",
) -> Response:
    try:
        unit = units.create_unit(page.db, page.clock, staff.actor, facility, name=name)
    except DomainError as exc:
        return page.refused(
            exc,
            FormPage(
                "facilities/units.html",
                lambda: _with_units(page.db, staff, facility, form={"name": name}),
                field="name",
            ),
        )
    return page.done(
        _url(facility, f"units/{unit.id}"), f"{unit.name} added. Now set its visiting hours."
    )


@router.get(BASE + "/units/{unit_id}", response_class=HTMLResponse)
def unit_page(
    request: Request,
    facility: ManagedFacility,
    unit: ManagedUnit,
    staff: CurrentStaff,
) -> HTMLResponse:
    return render(
        request, "facilities/unit.html", _unit_context(staff, facility, unit, name=unit.name)
    )


@router.post(BASE + "/units/{unit_id}/hours", response_class=HTMLResponse)
def unit_hours_submit(
    facility: ManagedFacility,
    unit: ManagedUnit,
    staff: CurrentStaff,
    page: Page,
    weekday: Annotated[list[str], Form(max_length=200)] = [],  # noqa: B006
    start: Annotated[list[str], Form(max_length=200)] = [],  # noqa: B006
    end: Annotated[list[str], Form(max_length=200)] = [],  # noqa: B006
) -> Response:
    rows = [
        {"weekday": d, "start": s.strip()[:5], "end": e.strip()[:5]}
        for d, s, e in zip(weekday, start, end, strict=False)
        if s.strip() or e.strip()
    ]
    windows = [
        units.HoursWindow(
            "0123456".find(r["weekday"]) if len(r["weekday"]) == 1 else -1, r["start"], r["end"]
        )
        for r in rows
    ]
    try:
        units.replace_hours(page.db, page.clock, staff.actor, unit, windows)
    except DomainError as exc:
        return page.refused(
            exc, _unit_form(staff, facility, unit, field="windows", name=unit.name, rows=rows)
        )
    return page.done(_url(facility, "units"), f"Visiting hours for {unit.name} saved.")


@router.post(BASE + "/units/{unit_id}/rename", response_class=HTMLResponse)
def unit_rename_submit(
    facility: ManagedFacility,
    unit: ManagedUnit,
    staff: CurrentStaff,
    page: Page,
    name: FormText = "",
) -> Response:
    try:
        units.rename_unit(page.db, page.clock, staff.actor, facility, unit, name=name)
    except DomainError as exc:
        return page.refused(exc, _unit_form(staff, facility, unit, field="name", name=name))
    return page.done(_url(facility, f"units/{unit.id}"), f"Unit renamed to {unit.name}.")


@router.post(BASE + "/units/{unit_id}/delete", response_class=HTMLResponse)
def unit_delete_submit(
    facility: ManagedFacility,
    unit: ManagedUnit,
    staff: CurrentStaff,
    page: Page,
) -> Response:
    name = unit.name
    try:
        housing.delete_unit(page.db, page.clock, staff.actor, unit)
    except DomainError as exc:
        return page.refused_to(exc, _url(facility, f"units/{unit.id}"))
    return page.done(_url(facility, "units"), f"{name} deleted.")


# --- closures ------------------------------------------------------------------------


def _closures_context(
    db: Session, clock: Clock, staff: StaffContext, facility: Facility, **extra: Any
) -> dict[str, Any]:
    lists = closures.list_closures(db, clock, facility)
    return _with_units(db, staff, facility, lists=lists, now=clock.now(), **extra)


@router.get(BASE + "/closures", response_class=HTMLResponse)
def closures_page(
    page: Page,
    facility: ClosuresFacility,
    staff: CurrentStaff,
) -> HTMLResponse:
    return page.render(
        "facilities/closures.html",
        _closures_context(page.db, page.clock, staff, facility),
    )


class ClosureForm(BaseModel):
    kind: str = Field(default="", max_length=20)
    unit_id: str = Field(default="", max_length=20)
    starts_date: str = Field(default="", max_length=20)
    starts_time: str = Field(default="", max_length=10)
    ends_date: str = Field(default="", max_length=20)
    ends_time: str = Field(default="", max_length=10)
    reason: str = Field(default="", max_length=2000)
    confirm: str = Field(default="", max_length=10)


@router.post(BASE + "/closures", response_class=HTMLResponse)
def closure_create_submit(
    page: Page,
    facility: ClosuresFacility,
    form: Annotated[ClosureForm, Form()],
    staff: CurrentStaff,
) -> Response:
    try:
        starts_at = closures.local_to_utc(
            form.starts_date, form.starts_time, facility.timezone, "starts"
        )
        ends_at = None
        if form.ends_date.strip() or form.ends_time.strip():
            ends_at = closures.local_to_utc(
                form.ends_date, form.ends_time, facility.timezone, "ends"
            )
        new = closures.NewClosure(
            form.kind, starts_at, ends_at, form.reason, _optional_id(form.unit_id)
        )
        if form.confirm != "yes":
            affected = scheduling.visits_affected_by(
                page.db,
                facility_id=facility.id,
                unit_id=new.unit_id,
                starts_at=starts_at,
                ends_at=ends_at,
            )
            if affected:
                # Show the effect before it happens: "12 visits will be cancelled".
                ctx = _closures_context(
                    page.db,
                    page.clock,
                    staff,
                    facility,
                    form=form.model_dump(),
                    confirm_count=len(affected),
                )
                return page.render("facilities/closures.html", ctx)
        closure, cancelled = closure_flow.declare_closure(
            page.db, page.clock, page.settings, staff.actor, facility, new, staff_id=staff.member.id
        )
    except DomainError as exc:
        return page.refused(
            exc,
            FormPage(
                "facilities/closures.html",
                lambda: _closures_context(
                    page.db, page.clock, staff, facility, form=form.model_dump()
                ),
                field="reason",
                rename={"starts_at": "starts_date", "ends_at": "ends_date"},
            ),
        )
    what = "Lockdown" if closure.kind.value == "lockdown" else "Blackout"
    told = (
        f" {len(cancelled)} visit{'s' if len(cancelled) != 1 else ''} cancelled; "
        "the families were told."
        if cancelled
        else ""
    )
    return page.done(_url(facility, "closures"), f"{what} recorded.{told}")


@router.post(BASE + "/closures/{closure_id}/lift", response_class=HTMLResponse)
def closure_lift_submit(
    facility: ClosuresFacility,
    closure: ManagedClosure,
    staff: CurrentStaff,
    page: Page,
) -> Response:
    try:
        closures.lift_lockdown(page.db, page.clock, staff.actor, closure)
    except DomainError as exc:
        return page.refused_to(exc, _url(facility, "closures"))
    return page.done(_url(facility, "closures"), "Lockdown lifted. Visiting can resume.")


# --- kiosks --------------------------------------------------------------------------


def _kiosks_context(
    db: Session, staff: StaffContext, facility: Facility, **extra: Any
) -> dict[str, Any]:
    return _with_units(db, staff, facility, kiosks=kiosks.list_kiosks(db, facility), **extra)


@router.get(BASE + "/kiosks", response_class=HTMLResponse)
def kiosks_page(
    request: Request, facility: ManagedFacility, staff: CurrentStaff, db: DbSession
) -> HTMLResponse:
    return render(request, "facilities/kiosks.html", _kiosks_context(db, staff, facility))


@router.post(BASE + "/kiosks", response_class=HTMLResponse)
def kiosk_create_submit(
    facility: ManagedFacility,
    staff: CurrentStaff,
    page: Page,
    name: FormText = "",
    location: FormId = "",
    unit_id: FormId = "",
) -> Response:
    try:
        kiosk = kiosks.create_kiosk(
            page.db,
            page.clock,
            staff.actor,
            facility,
            name=name,
            location=location,
            unit_id=_optional_id(unit_id),
        )
    except DomainError as exc:
        form = {"name": name, "location": location, "unit_id": unit_id}
        return page.refused(
            exc,
            FormPage(
                "facilities/kiosks.html",
                lambda: _kiosks_context(page.db, staff, facility, form=form),
                field="name",
            ),
        )
    return page.done(
        _url(facility, "kiosks"), f"{kiosk.name} added. Issue a device credential to set it up."
    )


@router.post(BASE + "/kiosks/{kiosk_id}/service", response_class=HTMLResponse)
def kiosk_service_submit(
    facility: ManagedFacility,
    kiosk: ManagedKiosk,
    staff: CurrentStaff,
    page: Page,
    in_service: Annotated[Literal["yes", "no"], Form()],
    reason: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    try:
        kiosks.set_kiosk_service(
            page.db, page.clock, staff.actor, kiosk, in_service=in_service == "yes", reason=reason
        )
    except DomainError as exc:
        return page.refused_to(exc, _url(facility, "kiosks"), prefix=f"{kiosk.name}: ")
    state = "back in service" if kiosk.in_service else "out of service"
    return page.done(_url(facility, "kiosks"), f"{kiosk.name} is {state}.")


@router.post(BASE + "/kiosks/{kiosk_id}/credential", response_class=HTMLResponse)
def kiosk_credential_submit(
    page: Page,
    facility: ManagedFacility,
    kiosk: ManagedKiosk,
    staff: CurrentStaff,
) -> Response:
    """Shows the new code on this response only: it is never stored nor put in a cookie."""
    issued = kiosks.issue_kiosk_credential(page.db, page.settings, page.clock, staff.actor, kiosk)
    response = page.render(
        "facilities/kiosk_credential.html",
        {"staff": staff, "facility": facility, "issued": issued},
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post(BASE + "/kiosks/{kiosk_id}/revoke", response_class=HTMLResponse)
def kiosk_revoke_submit(
    facility: ManagedFacility,
    kiosk: ManagedKiosk,
    staff: CurrentStaff,
    page: Page,
) -> Response:
    try:
        kiosks.revoke_kiosk_credential(page.db, page.clock, staff.actor, kiosk)
    except DomainError as exc:
        return page.refused_to(exc, _url(facility, "kiosks"))
    return page.done(
        _url(facility, "kiosks"), f"{kiosk.name}'s credential revoked. The device is signed out."
    )


# --- the kiosk device's activation ---------------------------------------------------


@router.get("/kiosk/activate", response_class=HTMLResponse)
def activate_page(request: Request, code: str = "") -> HTMLResponse:
    return render(request, "facilities/kiosk_activate.html", {"form": {"code": code[:200]}})


@router.post("/kiosk/activate", response_class=HTMLResponse)
def activate_submit(
    page: Page,
    code: FormText = "",
) -> Response:
    try:
        done = kiosks.activate_kiosk(
            page.db,
            page.settings,
            page.clock,
            code=code,
            ip=client_ip(page.request),
            user_agent=page.request.headers.get("user-agent", ""),
        )
    except DomainError as exc:
        return page.refused(
            exc,
            FormPage(
                "facilities/kiosk_activate.html", lambda: {"form": {"code": ""}}, field="code"
            ),
        )
    response = redirect("/kiosk")
    set_session_cookie(
        response,
        page.settings,
        KIOSK_COOKIE,
        done.session.token,
        kiosk_session_seconds(page.settings),
    )
    return response
