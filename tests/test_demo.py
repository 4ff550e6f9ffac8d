"""`openvisit demo` (run by `make run`): every printed login works, and a rerun reuses the data."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from openvisit.app import create_app
from openvisit.clock import SystemClock
from openvisit.config import Settings
from openvisit.dbadmin import upgrade
from openvisit.demo import seed_demo


def test_the_demo_prints_logins_that_work_and_a_second_run_reuses_the_data(tmp_path):
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    settings = Settings(
        env="development", var_dir=tmp_path, database_url=url, staff_totp_required=False
    )
    upgrade(url)
    first = seed_demo(settings)
    assert "OpenVisit demo created" in first
    second = seed_demo(settings)
    assert "reusing the data" in second
    password = re.search(r"password (\S+)", second).group(1)
    visitor = re.search(r"e-mail (\S+)", second).group(1)
    code = re.search(r"/kiosk/activate\?code=(\S+)", second).group(1)
    booking, pin = re.search(r"booking number (\S+)\s+PIN (\d+)", second).groups()
    staff = re.findall(r"/staff/sign-in\s+(\S+)", second)
    assert len(staff) == 4
    # One visit to join right away, the same on both runs.
    visit_links = re.findall(r"/visits/(\d+)/check", first + second)
    assert len(visit_links) == 2 and visit_links[0] == visit_links[1]
    visit_id = visit_links[0]

    app = create_app(settings, clock=SystemClock())
    with TestClient(app, base_url="https://testserver") as family:
        r = family.post("/api/v1/visitor-session", json={"email": visitor, "password": password})
        assert r.status_code == 200, r.text
        approvals = family.get("/api/v1/me/approvals").json()
        assert [a["status"] for a in approvals] == ["approved"]
        slots = family.get(
            "/api/v1/me/availability",
            params={"resident_id": approvals[0]["resident_id"], "length": 20},
        ).json()["slots"]
        assert slots, "the demo visitor can book straight away"
    for email in staff:
        with TestClient(app, base_url="https://testserver") as console:
            r = console.post("/api/v1/staff-session", json={"email": email, "password": password})
            assert r.status_code == 200, (email, r.text)
    with TestClient(app, base_url="https://testserver") as kiosk:
        assert kiosk.post("/api/v1/kiosk/activate", json={"code": code}).status_code == 200
        kiosk.headers["X-CSRF-Token"] = kiosk.cookies["ov_csrf"]
        r = kiosk.post(
            "/api/v1/kiosk/resident-session", json={"booking_number": booking, "pin": pin}
        )
        assert r.status_code == 200, r.text
        page = kiosk.get(f"/kiosk/visits/{visit_id}")
        assert page.status_code == 200 and "visit-config" in page.text
        assert f'href="/kiosk/visits/{visit_id}"' in kiosk.get("/kiosk").text
