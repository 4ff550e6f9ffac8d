from __future__ import annotations

from sqlalchemy import select

from openvisit.audit.models import AuditEvent
from tests.factories import sign_in_staff


def test_staff_sign_in_needs_the_current_totp_code(client, personas, clock):
    officer = personas.officer
    personas.commit()
    bad = client.post(
        "/api/v1/staff-session",
        json={"email": officer.member.email, "password": officer.password, "totp_code": "000000"},
    )
    assert bad.status_code == 401
    assert bad.json()["error"]["code"] == "sign_in_failed"
    assert client.get("/api/v1/staff/me").status_code == 401

    sign_in_staff(client, officer, clock)
    me = client.get("/api/v1/staff/me")
    assert me.status_code == 200
    assert me.json()["roles"] == [{"facility_id": personas.facility.id, "role": "officer"}]


def test_staff_are_locked_out_after_repeated_failures_and_it_is_audited(
    client, personas, clock, db
):
    officer = personas.officer
    personas.commit()
    for _ in range(5):
        r = client.post(
            "/api/v1/staff-session",
            json={
                "email": officer.member.email,
                "password": "wrong password!",
                "totp_code": "123456",
            },
        )
        assert r.status_code == 401
    locked = client.post(
        "/api/v1/staff-session",
        json={
            "email": officer.member.email,
            "password": officer.password,
            "totp_code": officer.code(clock),
        },
    )
    assert locked.status_code == 429
    assert locked.json()["error"]["code"] == "too_many_attempts"
    failures = db.scalars(select(AuditEvent).where(AuditEvent.tag == "staff:sign_in_failed")).all()
    assert len(failures) == 5

    clock.advance(minutes=16)
    sign_in_staff(client, officer, clock)


def test_staff_sign_in_page_asks_for_the_code_then_lands_on_the_facility(client, personas, clock):
    officer = personas.officer
    personas.commit()
    page = client.get("/staff/sign-in")
    token = client.cookies.get("ov_csrf")
    assert token and 'name="csrf_token"' in page.text
    r = client.post(
        "/staff/sign-in",
        data={"email": officer.member.email, "password": officer.password, "csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"].startswith("/staff/sign-in/code")
    token = client.cookies.get("ov_csrf")
    wrong = client.post("/staff/sign-in/code", data={"totp_code": "111111", "csrf_token": token})
    assert wrong.status_code == 401 and "Enter the 6-digit code" in wrong.text
    ok = client.post(
        "/staff/sign-in/code", data={"totp_code": officer.code(clock), "csrf_token": token}
    )
    assert ok.status_code == 200
    assert "Riverside Jail" in ok.text


def test_a_form_post_without_the_csrf_token_is_refused(client, personas):
    officer = personas.officer
    personas.commit()
    client.get("/staff/sign-in")
    r = client.post(
        "/staff/sign-in", data={"email": officer.member.email, "password": officer.password}
    )
    assert r.status_code == 403
    assert "This page has expired" in r.text
