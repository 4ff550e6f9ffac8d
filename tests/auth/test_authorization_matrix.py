"""Every facility-scoped route, JSON and page alike, x every staff role x our
facility / another facility / nobody signed in.

Routes declare the access they need with ``FacilityFor(Permission.X)`` (or
``StaffWith`` when no one facility is concerned); this test enumerates
``app.routes`` and reads that declaration from each route's dependencies, so a
new route is covered the day it is added, and a facility-scoped route that
forgets its declaration fails the first test below. For each route it proves:
* another facility's staff get 404 (never 403: ids elsewhere stay secret);
* our staff without the permission get 403;
* our staff with it get past authorization (anything but 401/403, and not the
  facility's 404);
* nobody signed in gets 401 (JSON) or a redirect to the staff sign-in (pages).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts

from openvisit.auth.permissions import ROLE_PERMISSIONS, Permission, StaffRoleName
from openvisit.deps import declared_access
from tests.factories import sign_in_staff

FACILITY_ROLES = [r for r in StaffRoleName if r != StaffRoleName.PROVIDER_ADMIN]


def routes(app: FastAPI) -> Iterator[tuple[str, str, Permission | None]]:
    """(method, path, declared permission) for every HTTP route, pages included."""
    for route in iter_route_contexts(app.routes):
        dependant = getattr(route, "dependant", None)
        if dependant is None or not route.path:
            continue
        for method in sorted(route.methods or ()):
            if method != "HEAD":
                yield method, route.path, declared_access(dependant)


def facility_routes(app: FastAPI) -> list[tuple[str, str, Permission]]:
    return [(m, p, perm) for m, p, perm in routes(app) if "{facility_id}" in p and perm]


def test_every_facility_scoped_route_declares_its_access(app):
    undeclared = [
        f"{method} {path}"
        for method, path, permission in routes(app)
        if "{facility_id}" in path and permission is None
    ]
    assert undeclared == []


def test_the_matrix_covers_pages_as_well_as_the_api(app):
    paths = [path for _m, path, _p in facility_routes(app)]
    assert any(p.startswith("/staff/") for p in paths)
    assert any(p.startswith("/api/v1/") for p in paths)
    assert len(paths) >= 100


@pytest.fixture
def signed_in(app, personas, clock):
    """One browser per role at our facility, already signed in."""
    from fastapi.testclient import TestClient

    personas_by_role = {role: personas.staff(role) for role in FACILITY_ROLES}
    personas.commit()
    clients = {}
    for role, persona in personas_by_role.items():
        c = TestClient(app, base_url="https://testserver", follow_redirects=False)
        sign_in_staff(c, persona, clock)
        clients[role] = c
    yield clients
    for c in clients.values():
        c.close()


def _fill(path: str, facility_id: int, ids: dict[str, int]) -> str:
    path = path.replace("{facility_id}", str(facility_id))
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: str(ids.get(m.group(1), 987654)), path)


def _facility_not_found(status: int, text: str) -> bool:
    return status == 404 and "facility" in text


def test_staff_reach_only_what_their_role_allows_at_their_own_facility(app, personas, signed_in):
    ids = {
        "unit_id": personas.unit.id,
        "kiosk_id": personas.kiosk.id,
        "resident_id": personas.resident.id,
    }
    personas.commit()
    own, other = personas.facility.id, personas.other_facility.id
    failures = []
    for method, path, permission in facility_routes(app):
        for role, client in signed_in.items():
            allowed = permission in ROLE_PERMISSIONS[role]
            theirs = client.request(method, _fill(path, other, ids), json={})
            if not _facility_not_found(theirs.status_code, theirs.text):
                failures.append(f"{role} {method} {path} other facility -> {theirs.status_code}")
            ours = client.request(method, _fill(path, own, ids), json={})
            if allowed:
                bad = ours.status_code in (401, 403) or _facility_not_found(
                    ours.status_code, ours.text
                )
            else:
                bad = ours.status_code != 403
            if bad:
                failures.append(
                    f"{role} {method} {path} own facility (allowed={allowed}) -> "
                    f"{ours.status_code} {ours.text[:120]}"
                )
    assert failures == []


def test_nobody_signed_in_is_sent_to_sign_in(app, personas):
    from fastapi.testclient import TestClient

    personas.commit()
    failures = []
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        # A CSRF pair, so that what is refused is the missing sign-in and not the form.
        client.cookies.set("ov_csrf", "matrix-token")
        client.headers["X-CSRF-Token"] = "matrix-token"
        for method, path, _permission in facility_routes(app):
            r = client.request(method, _fill(path, personas.facility.id, {}), json={})
            if path.startswith("/api/"):
                ok = r.status_code == 401
            else:
                ok = r.status_code == 303 and r.headers["location"].startswith("/staff/sign-in")
            if not ok:
                failures.append(f"{method} {path} -> {r.status_code}")
    assert failures == []
