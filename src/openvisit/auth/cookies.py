"""Setting and clearing the session and CSRF cookies."""

from __future__ import annotations

from fastapi import Response

from openvisit.auth.service import NewSession, new_token
from openvisit.config import Settings

SESSION_COOKIE = "ov_session"
KIOSK_COOKIE = "ov_kiosk"
CSRF_COOKIE = "ov_csrf"


def set_session_cookie(
    response: Response, settings: Settings, name: str, token: str, max_age: int
) -> str:
    """Set a session cookie and a fresh CSRF token beside it; return the CSRF token."""
    response.set_cookie(
        name,
        token,
        max_age=max_age,
        httponly=True,
        samesite="lax",
        secure=settings.cookie_secure,
        path="/",
    )
    csrf = new_token()
    response.set_cookie(
        CSRF_COOKIE, csrf, httponly=True, samesite="lax", secure=settings.cookie_secure, path="/"
    )
    return csrf


def set_signed_in(
    response: Response, settings: Settings, new: NewSession, name: str = SESSION_COOKIE
) -> str:
    """The cookie of a session just started, kept as long as the session lasts (a half
    session waiting for a code lasts minutes); return the CSRF token."""
    lifetime = new.row.expires_at - new.row.created_at
    return set_session_cookie(response, settings, name, new.token, int(lifetime.total_seconds()))


def clear_session_cookie(response: Response, name: str) -> None:
    response.delete_cookie(name, path="/")
