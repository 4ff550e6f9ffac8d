"""ASGI middleware: request size limit, the CSRF cookie, security headers."""

from __future__ import annotations

import json
from typing import Any

from openvisit.auth.cookies import CSRF_COOKIE

Scope = dict[str, Any]


class BodyTooLarge(Exception):
    pass


# No inline script, no inline style, nothing from elsewhere: every script is a file
# under /static (or the API docs' bundled assets). 'self' covers the page's own
# WebSocket; blob: is the local video of a visit.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "media-src 'self' blob:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
HSTS = "max-age=63072000; includeSubDomains"
# Files that are the same for everyone may be cached; everything else (staff pages,
# a visitor's account, wallet and visits, a kiosk's screen, the API) may not.
_CACHEABLE_PREFIXES = ("/static/", "/docs-assets/")


class SecurityMiddleware:
    """Refuses oversized bodies with 413, sets the CSRF cookie a page asked for,
    and adds the headers every response should carry."""

    def __init__(self, app: Any, *, max_body: int, secure_cookies: bool, hsts: bool) -> None:
        self.app = app
        self.max_body = max_body
        self.secure = secure_cookies
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            await self._too_large(scope, send)
            return
        received = 0

        async def limited_receive() -> Any:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise BodyTooLarge
            return message

        state = scope.setdefault("state", {})

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                present = message.get("headers", [])
                extra = [
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"same-origin"),
                    (b"x-frame-options", b"DENY"),
                    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
                ]
                if self.hsts:
                    extra.append((b"strict-transport-security", HSTS.encode()))
                if not scope["path"].startswith(_CACHEABLE_PREFIXES):
                    present = [(k, v) for k, v in present if k.lower() != b"cache-control"]
                    extra.append((b"cache-control", b"no-store"))
                token = state.get("new_csrf")
                if token:
                    cookie = f"{CSRF_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax"
                    if self.secure:
                        cookie += "; Secure"
                    extra.append((b"set-cookie", cookie.encode()))
                message["headers"] = list(present) + extra
            await send(message)

        try:
            await self.app(scope, limited_receive, send_with_headers)
        except BodyTooLarge:
            await self._too_large(scope, send)

    async def _too_large(self, scope: Scope, send: Any) -> None:
        body = json.dumps(
            {"error": {"code": "request_too_large", "message": "The upload is too large."}}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
