"""Setting and clearing the session and CSRF cookies, and the CSRF tokens bound to a session.

A CSRF token is ``<nonce>.<mac>``, the MAC (HMAC-SHA256 under the secret key) taken
over the nonce and the session cookie it belongs to. A token made for one session
is worth nothing with another session's cookie, even when an attacker can plant
both the ``ov_csrf`` cookie and the form field. Before anyone signs in, the token is
bound to no session and to the browser's own ``ov_csrf`` cookie (the form must send
the cookie's value back): the pre-session binding that keeps signed-out forms
(sign-in, sign-up, kiosk activation) working. Starting a session makes a new token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping

from fastapi import Response

from openvisit.auth.service import NewSession
from openvisit.config import Settings

SESSION_COOKIE = "ov_session"
KIOSK_COOKIE = "ov_kiosk"
CSRF_COOKIE = "ov_csrf"
_NO_SESSION = "pre-session"


def session_of(cookies: Mapping[str, str]) -> str | None:
    """The session a request's CSRF token must be bound to: the person's, else the
    kiosk device's, else none (signed out)."""
    return cookies.get(SESSION_COOKIE) or cookies.get(KIOSK_COOKIE) or None


def _mac(secret_key: str, nonce: str, session_token: str | None) -> str:
    message = f"csrf|{session_token or _NO_SESSION}|{nonce}".encode()
    return hmac.new(secret_key.encode(), message, hashlib.sha256).hexdigest()


def new_csrf_token(secret_key: str, session_token: str | None) -> str:
    nonce = secrets.token_urlsafe(18)
    return f"{nonce}.{_mac(secret_key, nonce, session_token)}"


def is_bound(secret_key: str, token: str, session_token: str | None) -> bool:
    """Whether ``token`` was made, under this key, for this session (or for none)."""
    nonce, dot, mac = token.partition(".")
    if not dot or not nonce or not mac:
        return False
    return hmac.compare_digest(mac, _mac(secret_key, nonce, session_token))


def check_csrf(secret_key: str, given: str | None, cookies: Mapping[str, str]) -> bool:
    """An unsafe request's token is good when it equals the ``ov_csrf`` cookie and is
    bound to the request's own session."""
    expected = cookies.get(CSRF_COOKIE)
    if not given or not expected or not hmac.compare_digest(given, expected):
        return False
    return is_bound(secret_key, given, session_of(cookies))


def page_csrf_token(secret_key: str, cookies: Mapping[str, str]) -> str | None:
    """The request's ``ov_csrf`` token if it is still bound to the request's session;
    None when a new one must be made (none yet, or the session changed)."""
    token = cookies.get(CSRF_COOKIE)
    if token and is_bound(secret_key, token, session_of(cookies)):
        return token
    return None


def set_session_cookie(
    response: Response, settings: Settings, name: str, token: str, max_age: int
) -> str:
    """Set a session cookie and a fresh CSRF token bound to it; return the CSRF token."""
    response.set_cookie(
        name,
        token,
        max_age=max_age,
        httponly=True,
        samesite="lax",
        secure=settings.cookie_secure,
        path="/",
    )
    csrf = new_csrf_token(settings.ensure_secret_key(), token)
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
