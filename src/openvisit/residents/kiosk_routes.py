"""The resident side of a kiosk: sign in with booking number and PIN, home, sign out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from openvisit.deps import ClockDep, CurrentKiosk, DbSession, OptionalKiosk, SettingsDep
from openvisit.errors import DomainError
from openvisit.facilities.models import Facility
from openvisit.people.models import Visitor
from openvisit.residents import service
from openvisit.residents.schemas import (
    KioskMeOut,
    KioskOut,
    KioskResidentOut,
    ResidentSignInIn,
)
from openvisit.web.render import form_error, redirect, render

api = APIRouter(prefix="/api/v1", tags=["kiosk"])
pages = APIRouter(include_in_schema=False)


def _me(view: service.KioskView) -> KioskMeOut:
    kiosk, resident = view.kiosk, view.resident
    return KioskMeOut(
        kiosk=KioskOut(
            id=kiosk.id,
            name=kiosk.name,
            facility_id=kiosk.facility_id,
            location=kiosk.location.value,
            unit_id=kiosk.unit_id,
            in_service=kiosk.in_service,
        ),
        resident=KioskResidentOut(
            id=resident.id, first_name=resident.first_name, booking_number=resident.booking_number
        )
        if resident
        else None,
    )


@api.get("/kiosk/me", response_model=KioskMeOut)
def api_me(kiosk: CurrentKiosk, db: DbSession) -> KioskMeOut:
    """This kiosk, and the resident signed in on it if any."""
    return _me(service.kiosk_view(db, kiosk))


@api.post("/kiosk/resident-session", response_model=KioskMeOut)
def api_sign_in(
    body: ResidentSignInIn,
    kiosk: CurrentKiosk,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
) -> KioskMeOut:
    """Sign a resident in on this kiosk (booking number + PIN); no new cookie."""
    service.resident_sign_in(
        db, settings, clock, kiosk, booking_number=body.booking_number, pin=body.pin
    )
    return _me(service.kiosk_view(db, kiosk))


@api.delete("/kiosk/resident-session", status_code=204)
def api_sign_out(kiosk: CurrentKiosk, db: DbSession, clock: ClockDep) -> Response:
    service.resident_sign_out(db, clock, kiosk)
    return Response(status_code=204)


# --- pages ---------------------------------------------------------------------------


@pages.get("/kiosk", response_class=HTMLResponse)
def kiosk_home(
    request: Request, kiosk: OptionalKiosk, db: DbSession, clock: ClockDep
) -> HTMLResponse:
    if kiosk is None:
        return render(request, "kiosk/not_set_up.html")
    view = service.kiosk_view(db, kiosk)
    if not view.kiosk.in_service:
        return render(request, "kiosk/out_of_service.html", {"kiosk": view.kiosk})
    if view.resident is None:
        return render(request, "kiosk/sign_in.html", {"kiosk": view.kiosk})
    from openvisit.approvals import service as approvals
    from openvisit.scheduling import presenters
    from openvisit.scheduling import service as scheduling

    visits = scheduling.upcoming_for_resident(db, view.resident.id, clock.now())
    requests = approvals.pending_for_resident(db, view.resident.id)
    names = {
        v.id: v.legal_name
        for v in db.scalars(
            select(Visitor).where(
                Visitor.id.in_({v.visitor_id for v in visits} | {a.visitor_id for a in requests})
            )
        )
    }
    facility = db.get(Facility, view.resident.facility_id)
    return render(
        request,
        "kiosk/home.html",
        {
            "kiosk": view.kiosk,
            "resident": view.resident,
            "visits": visits,
            "requests": requests,
            "names": names,
            "facility": facility,
            "span": presenters.span_label,
            "type_names": presenters.TYPE_NAMES,
        },
    )


@pages.post("/kiosk/sign-in", response_class=HTMLResponse)
def sign_in_submit(
    request: Request,
    kiosk: CurrentKiosk,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
    booking_number: Annotated[str, Form(max_length=60)] = "",
    pin: Annotated[str, Form(max_length=30)] = "",
) -> Response:
    try:
        service.resident_sign_in(db, settings, clock, kiosk, booking_number=booking_number, pin=pin)
    except service.KioskOutOfService:
        return redirect("/kiosk")
    except DomainError as exc:
        view = service.kiosk_view(db, kiosk)
        return form_error(
            request,
            db,
            "kiosk/sign_in.html",
            {"kiosk": view.kiosk, "form": {"booking_number": booking_number}},
            exc,
            field="booking_number",
        )
    return redirect("/kiosk")


@pages.post("/kiosk/sign-out")
def sign_out_submit(kiosk: CurrentKiosk, db: DbSession, clock: ClockDep) -> Response:
    service.resident_sign_out(db, clock, kiosk)
    return redirect("/kiosk")
