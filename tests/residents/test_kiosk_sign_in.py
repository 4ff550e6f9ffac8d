from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from openvisit.audit.models import AuditEvent
from openvisit.auth import service as auth
from openvisit.auth.cookies import KIOSK_COOKIE
from openvisit.auth.models import UserSession
from openvisit.facilities.models import Kiosk, KioskLocation
from openvisit.residents.models import CustodyStatus, Resident
from tests.factories import PIN, sign_in_staff


def _activate(client, personas, kiosk=None):
    """Give this browser the kiosk's device session, as /kiosk/activate would."""
    kiosk = kiosk or personas.kiosk
    kiosk.credential_hash = auth.token_digest(f"x-{kiosk.id}")
    new = auth.start_session(
        personas.db,
        actor_type="kiosk",
        actor_id=kiosk.id,
        now=personas.clock.now(),
        lifetime=dt.timedelta(days=365),
    )
    personas.commit()
    client.cookies.set(KIOSK_COOKIE, new.token)
    client.get("/kiosk")
    client.headers["X-CSRF-Token"] = client.cookies.get("ov_csrf")
    return new.row


def _sign_in(client, booking, pin=PIN):
    return client.post(
        "/api/v1/kiosk/resident-session", json={"booking_number": booking, "pin": pin}
    )


def test_a_browser_without_a_device_session_is_told_to_ask_an_officer(client):
    page = client.get("/kiosk")
    assert page.status_code == 200
    assert "This kiosk isn't set up. Ask an officer." in page.text
    assert 'href="/kiosk/activate"' in page.text
    assert client.get("/api/v1/kiosk/me").status_code == 401


def test_the_sign_in_page_has_one_numeric_pin_field_and_big_targets(client, personas):
    personas.resident  # noqa: B018
    _activate(client, personas)
    page = client.get("/kiosk")
    assert '<body class="kiosk">' in page.text
    assert 'name="booking_number"' in page.text
    assert page.text.count('name="pin"') == 1
    assert 'inputmode="numeric"' in page.text and 'type="number"' not in page.text


def test_a_resident_signs_in_on_the_device_session_and_sees_home(client, personas, db):
    resident = personas.resident
    row = _activate(client, personas)
    cookies_before = dict(client.cookies)
    r = _sign_in(client, " b-1001 ", "482 916")
    assert r.status_code == 200, r.text
    assert r.json()["resident"]["first_name"] == "James"
    assert r.json()["kiosk"]["id"] == personas.kiosk.id
    assert "set-cookie" not in {k.lower() for k in r.headers}
    assert dict(client.cookies) == cookies_before
    db.expire_all()
    assert db.get(UserSession, row.id).resident_id == resident.id
    home = client.get("/kiosk")
    assert "Hello James" in home.text and "No upcoming visits" in home.text
    assert "Sign out" in home.text
    assert client.get("/api/v1/kiosk/me").json()["resident"]["id"] == resident.id
    assert db.scalars(select(AuditEvent).where(AuditEvent.tag == "resident:signed_in")).one()

    out = client.delete("/api/v1/kiosk/resident-session")
    assert out.status_code == 204
    assert client.get("/api/v1/kiosk/me").json()["resident"] is None
    assert "Sign in" in client.get("/kiosk").text


def test_the_sign_in_form_signs_in_and_the_sign_out_button_signs_out(client, personas):
    personas.resident  # noqa: B018
    _activate(client, personas)
    token = client.cookies.get("ov_csrf")
    del client.headers["X-CSRF-Token"]
    home = client.post(
        "/kiosk/sign-in", data={"booking_number": "B-1001", "pin": PIN, "csrf_token": token}
    )
    assert "Hello James" in home.text
    signed_out = client.post("/kiosk/sign-out", data={"csrf_token": token})
    assert "Sign in" in signed_out.text and "Hello James" not in signed_out.text
    bad = client.post(
        "/kiosk/sign-in", data={"booking_number": "B-1001", "pin": "000000", "csrf_token": token}
    )
    assert bad.status_code == 401
    assert "Check your booking number and PIN" in bad.text


def test_a_wrong_pin_is_refused_and_audited_as_a_security_event(client, personas, db):
    personas.resident  # noqa: B018
    row = _activate(client, personas)
    r = _sign_in(client, "B-1001", "0000")
    assert r.status_code == 401 and r.json()["error"]["code"] == "sign_in_failed"
    db.expire_all()
    assert db.get(UserSession, row.id).resident_id is None
    failed = db.scalars(select(AuditEvent).where(AuditEvent.tag == "resident:sign_in_failed")).one()
    assert failed.facility_id == personas.facility.id
    assert failed.data["why"] == "wrong_credentials"


def test_a_residents_failures_back_off_exponentially(client, personas, clock):
    personas.resident  # noqa: B018
    _activate(client, personas)
    for _ in range(3):
        assert _sign_in(client, "B-1001", "111333").status_code == 401
    # 3 failures: even the right PIN waits 2**3 seconds after the last one.
    held = _sign_in(client, "B-1001", PIN)
    assert held.status_code == 429 and held.json()["error"]["code"] == "too_many_attempts"
    assert held.json()["error"]["details"]["retry_after_seconds"] == 8
    assert "Try again in 8 seconds" in held.json()["error"]["message"]
    clock.advance(seconds=8)
    assert _sign_in(client, "B-1001", "111333").status_code == 401
    # 4 failures: 16 seconds, then 32: each failure doubles the wait.
    clock.advance(seconds=15)
    assert _sign_in(client, "B-1001", PIN).json()["error"]["details"]["retry_after_seconds"] == 1
    clock.advance(seconds=1)
    assert _sign_in(client, "B-1001", "111333").status_code == 401
    assert _sign_in(client, "B-1001", PIN).json()["error"]["details"]["retry_after_seconds"] == 32
    clock.advance(seconds=32)
    assert _sign_in(client, "B-1001", PIN).status_code == 200


def test_the_backoff_is_capped(client, personas, clock, settings):
    personas.resident  # noqa: B018
    _activate(client, personas)
    for _ in range(12):
        assert _sign_in(client, "B-1001", "111333").status_code == 401
        clock.advance(seconds=settings.resident_backoff_max_seconds)
    clock.advance(seconds=-settings.resident_backoff_max_seconds)
    held = _sign_in(client, "B-1001", PIN)
    assert held.json()["error"]["details"]["retry_after_seconds"] == 900
    clock.advance(seconds=900)
    assert _sign_in(client, "B-1001", PIN).status_code == 200


def test_a_new_pin_ends_the_backoff(client, other_client, personas, clock):
    resident = personas.resident
    scheduler = personas.scheduler
    _activate(client, personas)
    for _ in range(4):
        _sign_in(client, "B-1001", "111333")
    assert _sign_in(client, "B-1001", PIN).status_code == 429
    sign_in_staff(other_client, scheduler, clock)
    r = other_client.post(
        f"/api/v1/facilities/{personas.facility.id}/residents/{resident.id}/pin",
        json={"pin": "730 518"},
    )
    assert r.status_code == 204, r.text
    assert _sign_in(client, "B-1001", "730518").status_code == 200


def test_a_resident_of_another_unit_gets_the_same_answer_as_a_wrong_pin(client, personas, db):
    personas.resident  # noqa: B018
    unit_b = personas.make_unit(personas.facility, "Unit B")
    personas.make_resident(personas.facility, unit_b, "B-5005", "Tom", "Hart")
    row = _activate(client, personas)
    wrong_pin = _sign_in(client, "B-1001", "111333")
    # Tom's PIN is right, but this is Unit A's kiosk: the answer must not say so.
    other_unit = _sign_in(client, "B-5005", PIN)
    assert other_unit.status_code == wrong_pin.status_code == 401
    assert other_unit.json() == wrong_pin.json()
    assert "another housing unit" not in other_unit.text
    db.expire_all()
    assert db.get(UserSession, row.id).resident_id is None
    why = [
        e.data["why"]
        for e in db.scalars(
            select(AuditEvent)
            .where(AuditEvent.tag == "resident:sign_in_failed")
            .order_by(AuditEvent.id)
        )
    ]
    assert why == ["wrong_credentials", "other_unit"]


def test_a_released_residents_right_pin_gets_the_same_answer_as_a_wrong_one(client, personas):
    resident = personas.resident
    resident.custody_status = CustodyStatus.RELEASED
    _activate(client, personas)
    assert _sign_in(client, "B-1001", PIN).json() == _sign_in(client, "B-1001", "111333").json()


def _lobby(personas):
    lobby = Kiosk(
        facility_id=personas.facility.id,
        unit_id=None,
        name="Lobby 1",
        location=KioskLocation.LOBBY,
        created_at=personas.clock.now(),
    )
    personas.db.add(lobby)
    personas.db.flush()
    return lobby


def test_a_resident_is_refused_at_a_lobby_terminal(client, personas, db):
    personas.resident  # noqa: B018
    row = _activate(client, personas, _lobby(personas))
    page = client.get("/kiosk")
    assert "This is a lobby terminal" in page.text
    assert 'name="pin"' not in page.text
    r = _sign_in(client, "B-1001")
    assert r.status_code == 403
    assert "Residents sign in at a kiosk in their own housing unit" in r.json()["error"]["message"]
    assert client.get("/api/v1/kiosk/me").json()["resident"] is None
    db.expire_all()
    assert db.get(UserSession, row.id).resident_id is None
    refused = db.scalars(
        select(AuditEvent).where(AuditEvent.tag == "resident:sign_in_failed")
    ).one()
    assert refused.data["why"] == "lobby_kiosk"


def test_a_resident_left_signed_in_at_a_lobby_terminal_is_not(client, personas):
    resident = personas.resident
    row = _activate(client, personas, _lobby(personas))
    row.resident_id = resident.id
    personas.commit()
    assert client.get("/api/v1/kiosk/me").json()["resident"] is None
    assert "Hello James" not in client.get("/kiosk").text


def test_a_pin_set_under_the_old_rules_no_longer_signs_in_and_is_cleared(client, personas, db):
    resident = personas.resident
    resident.pin_hash = auth.hash_secret("1234")
    _activate(client, personas)
    right_but_short = _sign_in(client, "B-1001", "1234")
    assert right_but_short.status_code == 401
    assert right_but_short.json() == _sign_in(client, "B-1001", "9876").json()
    db.expire_all()
    assert db.get(Resident, resident.id).pin_hash is None
    cleared = db.scalars(select(AuditEvent).where(AuditEvent.tag == "resident:pin_cleared")).one()
    assert cleared.data["why"] == "too_weak"


def test_a_released_resident_is_refused(client, personas):
    resident = personas.resident
    resident.custody_status = CustodyStatus.RELEASED
    _activate(client, personas)
    r = _sign_in(client, "B-1001")
    assert r.status_code == 401
    assert client.get("/api/v1/kiosk/me").json()["resident"] is None


def test_a_resident_of_another_facility_cannot_sign_in_here(client, personas):
    other = personas.other_resident
    _activate(client, personas)
    assert _sign_in(client, other.booking_number).status_code == 401


def test_releasing_a_resident_signs_them_out_of_the_kiosk(client, other_client, personas, clock):
    resident = personas.resident
    scheduler = personas.scheduler
    _activate(client, personas)
    assert _sign_in(client, "B-1001").status_code == 200
    sign_in_staff(other_client, scheduler, clock)
    r = other_client.post(
        f"/api/v1/facilities/{personas.facility.id}/residents/{resident.id}/custody",
        json={"status": "transferred", "reason": "Moved to state prison"},
    )
    assert r.status_code == 200
    assert client.get("/api/v1/kiosk/me").json()["resident"] is None


def test_an_out_of_service_kiosk_says_so_and_refuses_sign_in(client, personas):
    personas.resident  # noqa: B018
    personas.kiosk.in_service = False
    personas.kiosk.out_of_service_reason = "Screen broken"
    _activate(client, personas)
    assert "This kiosk is out of service" in client.get("/kiosk").text
    r = _sign_in(client, "B-1001")
    assert r.status_code == 403 and r.json()["error"]["code"] == "kiosk_out_of_service"
