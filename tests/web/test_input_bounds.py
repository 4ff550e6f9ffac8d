"""Out-of-range input gets a 4xx, never a 500 (issue 10, item 10): ids of 2**64, dates in
year 1 or 9999, digits that are not ASCII, in every route's path, query and form fields
and JSON bodies, pages and API alike, and in the signaling socket's path."""

from __future__ import annotations

import datetime as dt
import enum
import re
import typing
from typing import Any

import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from pydantic import BaseModel
from starlette.websockets import WebSocketDisconnect

from openvisit.auth.permissions import StaffRoleName
from tests.factories import sign_in_staff, sign_in_visitor

HUGE = str(2**64)
# Each is out of range, or not a number or date at all, for any field that takes one.
NASTY = [HUGE, "²", "0001-01-01", "9999-12-31", "9999-12-31T23:59:59+00:00"]
OUT_OF_RANGE_IDS = [HUGE, "١٢٣", "１２３", "²"]
OUT_OF_RANGE_DATES = ["0001-01-01", "9999-12-31"]


class Flat:
    """A route's parameters, its dependencies' included."""

    def __init__(self, dependant: Dependant) -> None:
        self.path_params: dict[str, Any] = {}
        self.query_params: dict[str, Any] = {}
        self.body_params: dict[str, Any] = {}
        self._add(dependant)

    def _add(self, dependant: Dependant) -> None:
        for mine, theirs in (
            (self.path_params, dependant.path_params),
            (self.query_params, dependant.query_params),
            (self.body_params, dependant.body_params),
        ):
            mine.update({p.alias: p for p in theirs})
        for sub in dependant.dependencies:
            self._add(sub)


def _routes(app: Any) -> list[Any]:
    """Every HTTP route (pages and API) as mounted, with its dependant."""
    return [
        r
        for r in iter_route_contexts(app.routes)
        if isinstance(r.original_route, APIRoute) and r.path_format
    ]


def _path(route: Any, facility_id: int, override: dict[str, str] | None = None) -> str:
    override = override or {}

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in override:
            return override[name]
        return str(facility_id) if name == "facility_id" else "1"

    return re.sub(r"\{(\w+)(?::\w+)?\}", value, route.path_format)


def _takes(param: Any, *types: type) -> bool:
    """Whether a parameter is declared as one of ``types`` (or one of them or None)."""
    annotation = param.field_info.annotation
    return any(a in types for a in (annotation, *typing.get_args(annotation)))


def _sample(annotation: Any) -> Any:
    """A plausible value of a type, so that a body passes validation but for one field."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(annotation)
    if origin in (list, set, tuple):
        return []
    if origin is dict:
        return {}
    if origin is typing.Literal:
        return args[0]
    if args and origin is not None and origin is not typing.Annotated:
        return _sample(args[0])  # X | None
    if origin is typing.Annotated:
        return _sample(args[0])
    if isinstance(annotation, type):
        if issubclass(annotation, BaseModel):
            return _body(annotation)
        if issubclass(annotation, enum.Enum):
            return next(iter(annotation)).value
        if issubclass(annotation, bool):
            return False
        if issubclass(annotation, int):
            return 1
        if issubclass(annotation, dt.datetime):
            return "2026-12-01T10:00:00+00:00"
        if issubclass(annotation, dt.date):
            return "2026-12-01"
    return "x"


def _body(model: type[BaseModel]) -> dict[str, Any]:
    return {
        (field.alias or name): _sample(field.annotation)
        for name, field in model.model_fields.items()
    }


class Probe:
    """Sends one request in a savepoint that is rolled back, so each meets the same data,
    and collects the answers that are server errors (or should have been refusals)."""

    def __init__(self, client: TestClient, db: Any) -> None:
        self.client = client
        self.connection = db.info["factory"].kw["bind"]
        self.problems: list[str] = []

    def send(self, method: str, url: str, *, must_refuse: bool = False, **kwargs: Any) -> None:
        savepoint = self.connection.begin_nested()
        try:
            response = self.client.request(method, url, follow_redirects=False, **kwargs)
        except Exception as exc:  # the app raised: the person would see a 500
            self.problems.append(f"{method} {url} {kwargs}: raised {exc!r}")
            return
        finally:
            savepoint.rollback()
        if response.status_code >= 500:
            self.problems.append(f"{method} {url} {kwargs}: {response.status_code}")
        elif must_refuse and response.status_code < 300:
            self.problems.append(f"{method} {url} {kwargs}: {response.status_code}, not a refusal")


def _probe_every_route(
    app: Any, client: TestClient, db: Any, facility_id: int, *, skip: tuple[str, ...] = ()
) -> list[str]:
    """Every route but those under ``skip``: each id, number and date it reads, out of range."""
    probe = Probe(client, db)
    csrf = client.headers.get("X-CSRF-Token", "")
    for route in _routes(app):
        if route.path_format.startswith(skip):
            continue
        flat = Flat(route.dependant)
        for method in sorted(route.methods or ()):
            # Path: every parameter with every out-of-range id; an id must be refused.
            for param in flat.path_params.values():
                for bad in OUT_OF_RANGE_IDS:
                    url = _path(route, facility_id, {param.alias: bad})
                    probe.send(method, url, must_refuse=_takes(param, int))
            url = _path(route, facility_id)
            # Query: each parameter with each value; the API refuses what its types don't take.
            api = route.path_format.startswith("/api/")
            for param in flat.query_params.values():
                for bad in NASTY:
                    refuse = api and (
                        (_takes(param, int) and bad in OUT_OF_RANGE_IDS)
                        or (_takes(param, dt.date, dt.datetime) and bad in OUT_OF_RANGE_DATES)
                    )
                    probe.send(method, url, params={param.alias: bad}, must_refuse=refuse)
            # Form fields (pages): each field with each value, the CSRF token given.
            body = [p for p in flat.body_params.values() if "Form" in type(p.field_info).__name__]
            for param in body:
                for bad in NASTY:
                    probe.send(method, url, data={param.alias: bad, "csrf_token": csrf})
            # JSON bodies: each top-level field with each value.
            for param in flat.body_params.values():
                model = param.field_info.annotation
                if not api:
                    continue
                if not (isinstance(model, type) and issubclass(model, BaseModel)):
                    continue
                body = _body(model)
                for name in body:
                    for bad in NASTY:
                        value: Any = int(bad) if bad == HUGE else bad
                        probe.send(method, url, json={**body, name: value})
    return probe.problems


@pytest.fixture
def raw_client(app):  # type: ignore[no-untyped-def]
    with TestClient(app, base_url="https://testserver") as c:
        yield c


def test_out_of_range_input_is_refused_on_every_route_for_staff(raw_client, db, personas, clock):
    admin = personas.staff(StaffRoleName.PROVIDER_ADMIN)
    personas.resident  # noqa: B018
    personas.commit()
    sign_in_staff(raw_client, admin, clock)
    problems = _probe_every_route(raw_client.app, raw_client, db, personas.facility.id)
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:60])


def test_out_of_range_input_is_refused_on_every_route_for_a_visitor(raw_client, db, personas):
    personas.resident  # noqa: B018
    personas.commit()
    sign_in_visitor(raw_client, personas.visitor)
    # Staff and kiosk routes answer a visitor "please sign in" before reading anything.
    staff_only = ("/staff", "/api/v1/facilities/", "/kiosk", "/api/v1/kiosk", "/api/v1/staff")
    problems = _probe_every_route(
        raw_client.app, raw_client, db, personas.facility.id, skip=staff_only
    )
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:60])


@pytest.mark.parametrize("visit_id", [HUGE, "١٢٣", "１２３", "²", "0", "-1"])
def test_the_signaling_socket_answers_not_found_for_an_id_out_of_range(
    raw_client, personas, visit_id
):
    personas.commit()
    sign_in_visitor(raw_client, personas.visitor)
    with raw_client.websocket_connect(
        f"wss://testserver/ws/visits/{visit_id}", headers={"origin": "http://127.0.0.1:8000"}
    ) as ws:
        message = ws.receive_json()
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert (message["type"], message["code"], closed.value.code) == (
        "error",
        "visit_not_found",
        4404,
    )
