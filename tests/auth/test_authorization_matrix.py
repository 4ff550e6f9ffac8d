"""Every staff endpoint x every role x our facility / another facility.

Routes declare the permission they need (``openapi_extra={"x-permission": ...}``);
this test reads that declaration from the app itself, so a new endpoint is
covered the day it is added, and checks that:
* another facility's staff get 404 (never 403: ids elsewhere stay secret);
* our staff without the permission get 403;
* our staff with it get past authorization (anything but 401/403, and not
  the facility's 404).
"""

from __future__ import annotations

import re

import pytest

from openvisit.auth.permissions import ROLE_PERMISSIONS, Permission
from openvisit.people.models import StaffRoleName
from tests.factories import sign_in_staff

FACILITY_ROLES = [r for r in StaffRoleName if r != StaffRoleName.PROVIDER_ADMIN]


def operations(app):
    for path, item in app.openapi()["paths"].items():
        for method, operation in item.items():
            yield method.upper(), path, operation


def declared_routes(app) -> list[tuple[str, str, Permission]]:
    return [
        (method, path, Permission(op["x-permission"]))
        for method, path, op in operations(app)
        if "x-permission" in op
    ]


def test_every_facility_scoped_staff_api_route_declares_a_permission(app):
    undeclared = [
        f"{method} {path}"
        for method, path, op in operations(app)
        if "{facility_id}" in path and "x-permission" not in op
    ]
    assert undeclared == []


@pytest.fixture
def signed_in(app, personas, clock):
    """One browser per role at our facility, already signed in."""
    from fastapi.testclient import TestClient

    personas_by_role = {role: personas.staff(role) for role in FACILITY_ROLES}
    personas.commit()
    clients = {}
    for role, persona in personas_by_role.items():
        c = TestClient(app, base_url="https://testserver")
        sign_in_staff(c, persona, clock)
        clients[role] = c
    yield clients
    for c in clients.values():
        c.close()


def _fill(path: str, facility_id: int, ids: dict[str, int]) -> str:
    path = path.replace("{facility_id}", str(facility_id))
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: str(ids.get(m.group(1), 987654)), path)


def test_staff_reach_only_what_their_role_allows_at_their_own_facility(app, personas, signed_in):
    routes = declared_routes(app)
    assert len(routes) >= 10, "expected the facility endpoints to be declared"
    ids = {
        "unit_id": personas.unit.id,
        "kiosk_id": personas.kiosk.id,
        "resident_id": personas.resident.id,
    }
    personas.commit()
    own, other = personas.facility.id, personas.other_facility.id
    failures = []
    for method, path, permission in routes:
        for role, client in signed_in.items():
            allowed = permission in ROLE_PERMISSIONS[role]
            if "{facility_id}" in path:
                theirs = client.request(method, _fill(path, other, ids), json={})
                if theirs.status_code != 404:
                    failures.append(
                        f"{role} {method} {path} other facility -> {theirs.status_code}"
                    )
            ours = client.request(method, _fill(path, own, ids), json={})
            if allowed:
                bad = ours.status_code in (401, 403) or (
                    ours.status_code == 404 and "facility" in ours.text
                )
            else:
                bad = ours.status_code != 403
            if bad:
                failures.append(
                    f"{role} {method} {path} own facility (allowed={allowed}) -> "
                    f"{ours.status_code} {ours.text[:120]}"
                )
    assert failures == []


def test_signed_out_requests_to_staff_endpoints_are_refused(app, client, personas):
    personas.commit()
    for method, path, _permission in declared_routes(app):
        r = client.request(method, _fill(path, personas.facility.id, {}), json={})
        assert r.status_code == 401, (method, path, r.status_code)
