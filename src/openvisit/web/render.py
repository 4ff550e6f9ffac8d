"""Server-rendered pages: templates, the CSRF token, flash messages, local times."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime, format_time
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from itsdangerous import BadSignature, URLSafeSerializer

from openvisit.auth.cookies import new_csrf_token, page_csrf_token, session_of

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"
FLASH_COOKIE = "ov_flash"

templates = Jinja2Templates(directory=str(TEMPLATES_DIR))


def local_datetime(
    value: dt.datetime | None, tz: str, fmt: str = "EEE d MMM yyyy, h:mm a zzz"
) -> str:
    """A UTC datetime as the facility's wall-clock time, its zone named."""
    if value is None:
        return ""
    return format_datetime(value, fmt, tzinfo=ZoneInfo(tz), locale="en_US")


def local_time(value: dt.time) -> str:
    return format_time(value, "h:mm a", locale="en_US")


def long_date(value: dt.date | None) -> str:
    return format_date(value, "d MMMM yyyy", locale="en_US") if value else ""


templates.env.filters["local"] = local_datetime
templates.env.filters["clock"] = local_time
templates.env.filters["long_date"] = long_date
templates.env.globals["WEEKDAYS"] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
]


def csrf_token(request: Request) -> str:
    """The page's CSRF token: the ov_csrf cookie's, while it is bound to the request's
    session; else a new one, bound to it, that the middleware sets as the cookie."""
    secret_key = request.app.state.settings.secret_key
    token = page_csrf_token(secret_key, request.cookies) or getattr(request.state, "new_csrf", None)
    if not token:
        token = new_csrf_token(secret_key, session_of(request.cookies))
        request.state.new_csrf = token
    return str(token)


def _serializer(request: Request) -> URLSafeSerializer:
    return URLSafeSerializer(request.app.state.settings.secret_key, salt="flash")


def flash_redirect(
    request: Request, url: str, message: str, kind: str = "success"
) -> RedirectResponse:
    """Post/redirect/get with a message shown once on the next page."""
    response = RedirectResponse(url, status_code=303)
    response.set_cookie(
        FLASH_COOKIE,
        _serializer(request).dumps([kind, message]),
        httponly=True,
        samesite="lax",
        secure=request.app.state.settings.cookie_secure,
        path="/",
    )
    return response


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def render(
    request: Request, template: str, context: dict[str, Any] | None = None, status_code: int = 200
) -> HTMLResponse:
    """Render a page. ``errors`` (field -> message) in the context makes it an error page."""
    ctx = dict(context or {})
    ctx.setdefault("errors", {})
    ctx.setdefault("form", {})
    flash = None
    raw = request.cookies.get(FLASH_COOKIE)
    if raw:
        try:
            flash = _serializer(request).loads(raw)
        except BadSignature:
            flash = None
    ctx.update(request=request, csrf_token=csrf_token(request), flash=flash)
    response = templates.TemplateResponse(request, template, ctx, status_code=status_code)
    if raw:
        response.delete_cookie(FLASH_COOKIE, path="/")
    return response
