"""A kiosk device exchanges its one-time activation code for a long-lived kiosk session."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse

from openvisit.auth.cookies import KIOSK_COOKIE, set_session_cookie
from openvisit.deps import ClockDep, DbSession, SettingsDep, client_ip
from openvisit.errors import DomainError
from openvisit.facilities import service
from openvisit.facilities.schemas import KioskActivateBody, KioskActivatedOut
from openvisit.web.render import form_error, redirect, render

api = APIRouter(prefix="/api/v1", tags=["kiosk"])
pages = APIRouter(include_in_schema=False)


def _max_age(settings: SettingsDep) -> int:
    return settings.kiosk_session_days * 24 * 3600


@api.post("/kiosk/activate", response_model=KioskActivatedOut)
def api_activate(
    body: KioskActivateBody,
    request: Request,
    response: Response,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
) -> KioskActivatedOut:
    """Activate this device as a kiosk with the code an administrator issued."""
    done = service.activate_kiosk(
        db,
        settings,
        clock,
        code=body.code,
        ip=client_ip(request),
        user_agent=request.headers.get("user-agent", ""),
    )
    csrf = set_session_cookie(
        response, settings, KIOSK_COOKIE, done.session.token, _max_age(settings)
    )
    return KioskActivatedOut(
        kiosk_id=done.kiosk.id,
        facility_id=done.kiosk.facility_id,
        in_service=done.kiosk.in_service,
        csrf_token=csrf,
    )


@pages.get("/kiosk/activate", response_class=HTMLResponse)
def activate_page(request: Request, code: str = "") -> HTMLResponse:
    return render(request, "facilities/kiosk_activate.html", {"form": {"code": code[:200]}})


@pages.post("/kiosk/activate", response_class=HTMLResponse)
def activate_submit(
    request: Request,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
    code: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    try:
        done = service.activate_kiosk(
            db,
            settings,
            clock,
            code=code,
            ip=client_ip(request),
            user_agent=request.headers.get("user-agent", ""),
        )
    except DomainError as exc:
        return form_error(
            request, db, "facilities/kiosk_activate.html", {"form": {"code": ""}}, exc, field="code"
        )
    response = redirect("/kiosk")
    set_session_cookie(response, settings, KIOSK_COOKIE, done.session.token, _max_age(settings))
    return response
