"""create_app(settings): routers, exception handlers, middleware, lifespan."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

import anyio.to_thread
import swagger_ui_bundle
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.routing import iter_route_contexts
from fastapi.staticfiles import StaticFiles
from sqlalchemy.engine import Engine
from starlette.exceptions import HTTPException as StarletteHTTPException

from openvisit import worker
from openvisit.auth.cookies import KIOSK_COOKIE, SESSION_COOKIE, check_csrf
from openvisit.billing.gateway import gateway_for
from openvisit.clock import Clock, SystemClock
from openvisit.config import Settings
from openvisit.db import RequestGate, make_engine, make_sessionmaker, sqlite_file
from openvisit.deps import declared_access
from openvisit.errors import Busy, Code, DomainError, NotAuthenticated, NotFound
from openvisit.media.backend import MediaBackend
from openvisit.media.embedded import EmbeddedBackend
from openvisit.routing import include_routers
from openvisit.signaling import live
from openvisit.web.middleware import SecurityMiddleware
from openvisit.web.render import STATIC_DIR, render

log = logging.getLogger(__name__)

_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


class CsrfFailed(DomainError):
    code = Code.CSRF_FAILED
    message = "This page has expired. Go back, reload the page and try again."


async def csrf_protect(request: Request) -> None:
    """The CSRF check on every unsafe request.

    A browser form sends ``csrf_token``, a script the ``X-CSRF-Token`` header;
    either must equal the ov_csrf cookie and be bound to the request's session
    (``auth.cookies.check_csrf``). A JSON request that carries no session cookie
    has nothing to ride on (and a cross-site page cannot send JSON without a CORS
    preflight), so an API client can sign in with JSON.
    """
    if request.method in _SAFE_METHODS:
        return
    has_session = SESSION_COOKIE in request.cookies or KIOSK_COOKIE in request.cookies
    content_type = request.headers.get("content-type", "")
    if not has_session and content_type.startswith("application/json"):
        return
    given = request.headers.get("x-csrf-token")
    if given is None and content_type.startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get("csrf_token")
        given = value if isinstance(value, str) else None
    if not check_csrf(request.app.state.settings.secret_key, given, request.cookies):
        raise CsrfFailed()


def wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/")


_SIGN_IN_PAGES = {"visitor": "/sign-in", "staff": "/staff/sign-in", "kiosk": "/kiosk"}


def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    retry_after = exc.details.get("retry_after_seconds")
    headers = {"Retry-After": str(int(retry_after))} if retry_after is not None else None
    if wants_json(request):
        return JSONResponse(exc.to_json(), status_code=exc.http_status, headers=headers)
    if isinstance(exc, Busy):
        booking = request.method == "POST" and request.url.path.startswith("/visits/")
        response = render(
            request, "busy.html", {"error": exc, "booking": booking}, status_code=exc.http_status
        )
        response.headers["Retry-After"] = str(int(retry_after or 2))
        return response
    if isinstance(exc, NotAuthenticated):
        target = _SIGN_IN_PAGES.get(exc.details.get("audience", "visitor"), "/sign-in")
        next_url = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.method == "GET" and target != "/kiosk":
            target += f"?next={quote(next_url)}"
        return RedirectResponse(target, status_code=303)
    return render(request, "error.html", {"error": exc}, status_code=exc.http_status)


def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        err = DomainError("The request body is not valid JSON.", code=Code.MALFORMED_JSON)
    else:
        fields = {
            ".".join(str(p) for p in e.get("loc", ())[1:]) or "body": e.get("msg", "invalid")
            for e in errors
        }
        err = DomainError(
            "Some of the information given is not valid.",
            code=Code.INVALID_INPUT,
            fields=fields,
        )
    return _domain_error(request, err)


def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        return _domain_error(request, NotFound("We couldn't find that page."))
    code = Code.METHOD_NOT_ALLOWED if exc.status_code == 405 else Code.HTTP_ERROR
    return _domain_error(request, DomainError(str(exc.detail), code=code))


def _unexpected_error(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    if wants_json(request):
        return JSONResponse(
            {
                "error": {
                    "code": "internal_error",
                    "message": "Sorry, there is a problem with the service.",
                }
            },
            status_code=500,
        )
    return render(request, "problem.html", status_code=500)


def media_backend(settings: Settings, clock: Clock) -> MediaBackend:
    """The media backend, chosen once here: the embedded one (aiortc, in this process)
    is the only one so far; a Janus backend would be chosen from settings."""
    return EmbeddedBackend(
        clock, addresses=settings.media_address_list, max_bitrate=settings.media_max_bitrate
    )


def server_engine(settings: Settings) -> Engine:
    """The server's engine: db_pool_size connections for requests (one per turn of the
    RequestGate) plus db_pool_overflow for the worker and signaling; every wait bounded."""
    pooled = not settings.is_sqlite or sqlite_file(settings.database_url) is not None
    pool = {
        "pool_size": settings.db_pool_size,
        "max_overflow": settings.db_pool_overflow,
        "pool_timeout": settings.db_wait_seconds,
    }
    return make_engine(
        settings.database_url,
        wait_seconds=settings.db_wait_seconds,
        statement_seconds=settings.db_statement_seconds,
        bounded_locks=True,
        **(pool if pooled else {}),
    )


def create_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    engine: Engine | None = None,
    sessionmaker: Any = None,
    start_worker: bool = False,
) -> FastAPI:
    """The app. ``start_worker`` runs the worker loop (mail, deadlines) beside it, as
    `openvisit serve` does; tests drive the jobs themselves."""
    settings.ensure_secret_key()
    if sessionmaker is None:
        engine = engine or server_engine(settings)
        sessionmaker = make_sessionmaker(engine)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Sync dependencies and endpoints run on this pool; sized with the connection
        # pool (Settings: worker_threads >= db_pool_size, db.RequestGate says why).
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.worker_threads
        live.start_media(app)
        tasks: list[asyncio.Task[None]] = []
        if start_worker:
            tasks.append(
                asyncio.create_task(
                    worker.run_forever(
                        app.state.sessionmaker,
                        app.state.clock,
                        settings,
                        gateway=app.state.payment_gateway,
                    )
                )
            )
            tasks.append(asyncio.create_task(live.watch(app)))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await live.stop_media(app)
            if engine is not None:
                engine.dispose()

    app = FastAPI(
        title="OpenVisit",
        version="0.1.0",
        description="Video visitation for jails and prisons. JSON API; the same services "
        "back the pages.",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
        dependencies=[Depends(csrf_protect)],
    )
    app.state.settings = settings
    app.state.clock = clock or SystemClock()
    app.state.sessionmaker = sessionmaker
    app.state.db_gate = RequestGate(settings.db_pool_size, settings.db_wait_seconds)
    # Chosen once, here; the routes and the worker use this one.
    app.state.payment_gateway = gateway_for(settings)
    app.state.media = media_backend(settings, app.state.clock)
    live.close_sockets_when_access_ends(app)

    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
    app.add_middleware(
        SecurityMiddleware,
        max_body=settings.request_max_bytes,
        secure_cookies=settings.cookie_secure,
        hsts=settings.env == "production",
    )

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.mount(
        "/docs-assets", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="docs-assets"
    )

    @app.get("/docs", include_in_schema=False)
    def docs(request: Request) -> HTMLResponse:
        # FastAPI's own page starts Swagger UI with an inline script, which the
        # Content-Security-Policy forbids: this one loads it from a file.
        return render(request, "api_docs.html")

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    include_routers(app)
    _document_permissions(app)
    return app


def _document_permissions(app: FastAPI) -> None:
    """OpenAPI names each operation's permission (``x-permission``), read from the
    ``FacilityFor``/``StaffWith`` the route declares: one declaration, two readers."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        schema = generate()
        for route in iter_route_contexts(app.routes):
            dependant = getattr(route, "dependant", None)
            permission = declared_access(dependant) if dependant is not None else None
            operations = schema["paths"].get(route.path or "", {})
            for method in route.methods or ():
                if permission is not None and method.lower() in operations:
                    operations[method.lower()]["x-permission"] = permission.value
        return schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented override
