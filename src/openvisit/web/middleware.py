"""ASGI middleware: request size limit, the CSRF cookie, security headers."""

from __future__ import annotations

import json
from typing import Any

from openvisit.auth.cookies import CSRF_COOKIE

Scope = dict[str, Any]


class BodyTooLarge(Exception):
    pass


class SecurityMiddleware:
    """Refuses oversized bodies with 413, sets the CSRF cookie a page asked for,
    and adds the headers every response should carry."""

    def __init__(self, app: Any, *, max_body: int, secure_cookies: bool) -> None:
        self.app = app
        self.max_body = max_body
        self.secure = secure_cookies

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
                extra = [
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"same-origin"),
                    (b"x-frame-options", b"DENY"),
                ]
                token = state.get("new_csrf")
                if token:
                    cookie = f"{CSRF_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax"
                    if self.secure:
                        cookie += "; Secure"
                    extra.append((b"set-cookie", cookie.encode()))
                message["headers"] = list(message.get("headers", [])) + extra
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
