from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from openvisit.audit.models import AuditEvent
from openvisit.auth.models import UserSession
from openvisit.auth.service import token_digest
from openvisit.facilities.models import Kiosk
from tests.factories import sign_in_staff


@pytest.fixture
def admin_client(client, personas, clock):
    admin = personas.admin
    personas.kiosk, personas.other_unit  # noqa: B018
    personas.commit()
    sign_in_staff(client, admin, clock)
    return client


def _url(personas) -> str:
    return f"/api/v1/facilities/{personas.facility.id}/kiosks"


def _kiosk_sessions(db, kiosk_id: int) -> int:
    return db.scalar(
        select(func.count())
        .select_from(UserSession)
        .where(UserSession.actor_type == "kiosk", UserSession.actor_id == kiosk_id)
    )


def test_admin_adds_a_housing_kiosk_and_a_lobby_kiosk(admin_client, personas, db):
    r = admin_client.post(
        _url(personas),
        json={"name": "Unit A kiosk 2", "location": "housing", "unit_id": personas.unit.id},
    )
    assert r.status_code == 201 and r.json()["has_credential"] is False
    r = admin_client.post(_url(personas), json={"name": "Lobby 1", "location": "lobby"})
    assert r.status_code == 201 and r.json()["unit_id"] is None
    names = [k["name"] for k in admin_client.get(_url(personas)).json()]
    assert names == ["Lobby 1", "Unit A kiosk 1", "Unit A kiosk 2"]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"name": "K", "location": "housing"}, 422, "kiosk_needs_unit"),
        ({"name": "K", "location": "lobby", "unit_id": "UNIT"}, 422, "lobby_kiosk_unit"),
        ({"name": "K", "location": "housing", "unit_id": "OTHER"}, 404, "not_found"),
        ({"name": "unit a KIOSK 1", "location": "lobby"}, 409, "kiosk_name_taken"),
        ({"name": " ", "location": "lobby"}, 422, "invalid_input"),
        ({"name": "K", "location": "roof"}, 422, "invalid_input"),
    ],
)
def test_bad_kiosks_are_refused_and_nothing_is_added(
    admin_client, personas, db, body, status, code
):
    ids = {"UNIT": personas.unit.id, "OTHER": personas.other_unit.id}
    if "unit_id" in body:
        body = {**body, "unit_id": ids[body["unit_id"]]}
    r = admin_client.post(_url(personas), json=body)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code
    assert db.scalar(select(func.count()).select_from(Kiosk)) == 1


def test_taking_a_kiosk_out_of_service_needs_a_reason(admin_client, personas, db):
    url = f"{_url(personas)}/{personas.kiosk.id}/service"
    r = admin_client.put(url, json={"in_service": False, "reason": ""})
    assert r.status_code == 422
    db.refresh(personas.kiosk)
    assert personas.kiosk.in_service is True
    r = admin_client.put(url, json={"in_service": False, "reason": "Cracked screen"})
    assert r.json()["in_service"] is False
    assert r.json()["out_of_service_reason"] == "Cracked screen"
    r = admin_client.put(url, json={"in_service": True})
    assert r.json()["in_service"] is True and r.json()["out_of_service_reason"] == ""
    events = db.scalars(select(AuditEvent).where(AuditEvent.tag == "kiosk:service_changed"))
    assert [e.facility_id for e in events] == [personas.facility.id] * 2


def test_credential_issue_activate_and_revoke(admin_client, other_client, personas, db):
    kiosk = personas.kiosk
    issued = admin_client.post(f"{_url(personas)}/{kiosk.id}/credential")
    assert issued.status_code == 201
    code = issued.json()["code"]
    assert issued.json()["activation_url"] == (f"http://127.0.0.1:8000/kiosk/activate?code={code}")
    db.refresh(kiosk)
    assert kiosk.credential_hash == token_digest(code)
    assert code not in str(admin_client.get(_url(personas)).json())

    # The device (another browser) activates with the code.
    r = other_client.post("/api/v1/kiosk/activate", json={"code": code})
    assert r.status_code == 200, r.text
    assert r.json()["kiosk_id"] == kiosk.id
    assert "ov_kiosk" in other_client.cookies
    other_client.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    assert _kiosk_sessions(db, kiosk.id) == 1
    activated = db.scalar(select(AuditEvent).where(AuditEvent.tag == "kiosk:activated"))
    assert activated.facility_id == personas.facility.id

    revoked = admin_client.delete(f"{_url(personas)}/{kiosk.id}/credential")
    assert revoked.status_code == 204
    assert _kiosk_sessions(db, kiosk.id) == 0
    db.refresh(kiosk)
    assert kiosk.credential_hash is None
    again = other_client.post("/api/v1/kiosk/activate", json={"code": code})
    assert again.status_code == 401 and again.json()["error"]["code"] == "sign_in_failed"
    tags = set(db.scalars(select(AuditEvent.tag)))
    assert {"kiosk:credential_issued", "kiosk:credential_revoked"} <= tags
    twice = admin_client.delete(f"{_url(personas)}/{kiosk.id}/credential")
    assert twice.status_code == 409


def test_reissuing_replaces_the_old_code_and_signs_the_device_out(
    admin_client, other_client, personas, db
):
    kiosk = personas.kiosk
    old = admin_client.post(f"{_url(personas)}/{kiosk.id}/credential").json()["code"]
    first = other_client.post("/api/v1/kiosk/activate", json={"code": old})
    assert first.status_code == 200
    other_client.headers["X-CSRF-Token"] = first.json()["csrf_token"]
    new = admin_client.post(f"{_url(personas)}/{kiosk.id}/credential").json()["code"]
    assert new != old
    assert _kiosk_sessions(db, kiosk.id) == 0
    assert other_client.post("/api/v1/kiosk/activate", json={"code": old}).status_code == 401
    assert other_client.post("/api/v1/kiosk/activate", json={"code": new}).status_code == 200


def test_an_out_of_service_kiosk_still_activates(admin_client, other_client, personas):
    kiosk = personas.kiosk
    admin_client.put(
        f"{_url(personas)}/{kiosk.id}/service",
        json={"in_service": False, "reason": "Being repaired"},
    )
    code = admin_client.post(f"{_url(personas)}/{kiosk.id}/credential").json()["code"]
    r = other_client.post("/api/v1/kiosk/activate", json={"code": code})
    assert r.status_code == 200 and r.json()["in_service"] is False


def test_guessing_activation_codes_is_throttled(other_client, personas, db, clock):
    kiosk = personas.kiosk
    kiosk.credential_hash = token_digest("the-right-code")
    kiosk.credential_issued_at = clock.now()
    personas.commit()
    for _ in range(5):
        r = other_client.post("/api/v1/kiosk/activate", json={"code": "a-guess"})
        assert r.status_code == 401
    r = other_client.post("/api/v1/kiosk/activate", json={"code": "the-right-code"})
    assert r.status_code == 429
    assert _kiosk_sessions(db, kiosk.id) == 0
    failures = db.scalars(select(AuditEvent).where(AuditEvent.tag == "kiosk:activation_failed"))
    assert len(list(failures)) == 5
    clock.advance(minutes=16)
    r = other_client.post("/api/v1/kiosk/activate", json={"code": "the-right-code"})
    assert r.status_code == 200


def test_activation_page_signs_the_device_in_and_goes_to_the_kiosk(client, personas, db, clock):
    kiosk = personas.kiosk
    kiosk.credential_hash = token_digest("page-code")
    kiosk.credential_issued_at = clock.now()
    personas.commit()
    page = client.get("/kiosk/activate?code=page-code")
    assert page.status_code == 200 and 'value="page-code"' in page.text
    bad = client.post(
        "/kiosk/activate", data={"code": "wrong", "csrf_token": client.cookies["ov_csrf"]}
    )
    assert bad.status_code == 401 and "isn&#39;t valid" in bad.text
    r = client.post(
        "/kiosk/activate",
        data={"code": "page-code", "csrf_token": client.cookies["ov_csrf"]},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/kiosk"
    assert "ov_kiosk" in r.cookies or "ov_kiosk" in client.cookies
    assert _kiosk_sessions(db, kiosk.id) == 1


def test_another_facilitys_kiosk_is_not_found(admin_client, personas, db, clock):
    other_kiosk = Kiosk(
        facility_id=personas.other_facility.id,
        name="Block 1 kiosk",
        location="lobby",
        created_at=clock.now(),
    )
    db.add(other_kiosk)
    personas.commit()
    base = _url(personas)
    assert admin_client.post(f"{base}/{other_kiosk.id}/credential").status_code == 404
    assert admin_client.delete(f"{base}/{other_kiosk.id}/credential").status_code == 404
    r = admin_client.put(
        f"{base}/{other_kiosk.id}/service", json={"in_service": False, "reason": "x"}
    )
    assert r.status_code == 404
    db.refresh(other_kiosk)
    assert other_kiosk.credential_hash is None and other_kiosk.in_service is True


def test_an_officer_cannot_issue_kiosk_credentials(client, personas, clock, db):
    officer = personas.officer
    kiosk = personas.kiosk
    personas.commit()
    sign_in_staff(client, officer, clock)
    assert client.post(f"{_url(personas)}/{kiosk.id}/credential").status_code == 403
    db.refresh(kiosk)
    assert kiosk.credential_hash is None


def test_kiosks_page_issues_a_code_shown_once(admin_client, personas, db):
    fid, kiosk = personas.facility.id, personas.kiosk
    page = admin_client.get(f"/staff/facilities/{fid}/kiosks")
    assert page.status_code == 200 and "Unit A kiosk 1" in page.text and "Not set up" in page.text
    r = admin_client.post(
        f"/staff/facilities/{fid}/kiosks/{kiosk.id}/credential",
        data={"csrf_token": admin_client.cookies["ov_csrf"]},
    )
    assert r.status_code == 200
    assert r.headers["cache-control"] == "no-store"
    db.refresh(kiosk)
    code = r.text.split("/kiosk/activate?code=")[1].split("<")[0]
    assert token_digest(code) == kiosk.credential_hash
    assert code not in admin_client.get(f"/staff/facilities/{fid}/kiosks").text
    r = admin_client.post(
        f"/staff/facilities/{fid}/kiosks/{kiosk.id}/revoke",
        data={"csrf_token": admin_client.cookies["ov_csrf"]},
        follow_redirects=True,
    )
    assert "credential revoked" in r.text


def test_an_activation_code_makes_one_kiosk_only(admin_client, other_client, app, personas, db):
    kiosk = personas.kiosk
    code = admin_client.post(f"{_url(personas)}/{kiosk.id}/credential").json()["code"]
    first = other_client.post("/api/v1/kiosk/activate", json={"code": code})
    assert first.status_code == 200, first.text
    other_client.headers["X-CSRF-Token"] = first.json()["csrf_token"]

    with TestClient(app, base_url="https://testserver") as second_device:
        again = second_device.post("/api/v1/kiosk/activate", json={"code": code})
        assert again.status_code == 401 and again.json()["error"]["code"] == "sign_in_failed"
        assert "already been used" in again.json()["error"]["message"]
        assert "ov_kiosk" not in second_device.cookies
        # And by the page, with the code in the link.
        page = second_device.get(f"/kiosk/activate?code={code}")
        form = {"code": code, "csrf_token": second_device.cookies["ov_csrf"]}
        refused = second_device.post("/kiosk/activate", data=form, follow_redirects=False)
        assert page.status_code == 200 and refused.status_code == 401
        assert "already been used" in refused.text and "ov_kiosk" not in second_device.cookies
    assert _kiosk_sessions(db, kiosk.id) == 1
    failures = db.scalars(
        select(AuditEvent).where(AuditEvent.tag == "kiosk:activation_failed")
    ).all()
    assert [e.facility_id for e in failures] == [personas.facility.id] * 2
    # A new code (issued by an administrator) works once again.
    new = admin_client.post(f"{_url(personas)}/{kiosk.id}/credential").json()["code"]
    assert other_client.post("/api/v1/kiosk/activate", json={"code": new}).status_code == 200


def test_an_activation_code_expires_after_the_configured_hours(
    admin_client, other_client, personas, db, clock, settings
):
    assert settings.kiosk_code_hours == 24  # the default
    kiosk = personas.kiosk
    settings.kiosk_code_hours = 2
    code = admin_client.post(f"{_url(personas)}/{kiosk.id}/credential").json()["code"]
    clock.advance(hours=2)
    late = other_client.post("/api/v1/kiosk/activate", json={"code": code})
    assert late.status_code == 401 and "has expired" in late.json()["error"]["message"]
    assert _kiosk_sessions(db, kiosk.id) == 0

    settings.kiosk_code_hours = 24
    fresh = admin_client.post(f"{_url(personas)}/{kiosk.id}/credential").json()["code"]
    clock.advance(hours=23, minutes=59)
    assert other_client.post("/api/v1/kiosk/activate", json={"code": fresh}).status_code == 200
    assert _kiosk_sessions(db, kiosk.id) == 1
