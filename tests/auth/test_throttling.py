"""Throttling that cannot lock everybody out: accounts lock, addresses only slow down."""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient
from sqlalchemy import select

from openvisit.auth import service as auth
from openvisit.auth.cookies import KIOSK_COOKIE
from openvisit.auth.models import LoginAttempt
from tests.factories import PASSWORD, PIN


def _kiosk_client(client, personas):
    """This browser is the Unit A kiosk (as /kiosk/activate would make it)."""
    kiosk = personas.kiosk
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


def _thirty_wrong_pins(client):
    for n in range(30):
        r = client.post(
            "/api/v1/kiosk/resident-session",
            json={"booking_number": f"X-{n}", "pin": "111333"},
        )
        assert r.status_code == 401, r.text


def _staff_sign_in(app, persona, clock, password=None):
    """From a fresh browser at the same address as the kiosk ("testclient")."""
    with TestClient(app, base_url="https://testserver") as c:
        return c.post(
            "/api/v1/staff-session",
            json={
                "email": persona.member.email,
                "password": password or persona.password,
                "totp_code": persona.code(clock),
            },
        )


def test_30_wrong_pins_from_one_address_do_not_lock_out_the_others_there(
    app, client, personas, clock
):
    """Every browser here is at the same address (behind one proxy, say)."""
    officer = personas.officer
    maria = personas.visitor
    personas.resident  # noqa: B018
    _kiosk_client(client, personas)
    _thirty_wrong_pins(client)

    staff = _staff_sign_in(app, officer, clock)
    assert staff.status_code == 200, staff.text
    with TestClient(app, base_url="https://testserver") as c:
        visitor = c.post(
            "/api/v1/visitor-session", json={"email": maria.email, "password": PASSWORD}
        )
    assert visitor.status_code == 200, visitor.text
    resident = client.post(
        "/api/v1/kiosk/resident-session", json={"booking_number": "B-1001", "pin": PIN}
    )
    assert resident.status_code == 200, resident.text


def test_a_wrong_password_from_a_failing_address_locks_only_the_account_it_named(
    app, client, personas, clock
):
    officer = personas.officer
    scheduler = personas.scheduler
    personas.resident  # noqa: B018
    _kiosk_client(client, personas)
    _thirty_wrong_pins(client)

    # From an address already failing this much, one wrong password is one guess too many
    # for that account: it locks at once (elsewhere it takes five).
    wrong = _staff_sign_in(app, officer, clock, password="not the password")
    assert wrong.status_code == 401
    locked = _staff_sign_in(app, officer, clock)
    assert locked.status_code == 429 and locked.json()["error"]["code"] == "too_many_attempts"
    # ...while the correct password of an account that is not locked still signs in.
    assert _staff_sign_in(app, scheduler, clock).status_code == 200

    clock.advance(minutes=16)
    assert _staff_sign_in(app, officer, clock).status_code == 200


def test_an_account_is_locked_by_its_own_failures_from_anywhere(app, personas, clock):
    """Five failures from five addresses lock the account; the right password waits."""
    maria = personas.visitor
    personas.commit()
    for n in range(5):
        with TestClient(app, base_url="https://testserver", client=(f"192.0.2.{n}", 1)) as c:
            r = c.post(
                "/api/v1/visitor-session", json={"email": maria.email, "password": "wrong one!"}
            )
            assert r.status_code == 401
    with TestClient(app, base_url="https://testserver", client=("198.51.100.7", 1)) as c:
        r = c.post("/api/v1/visitor-session", json={"email": maria.email, "password": PASSWORD})
        assert r.status_code == 429


def test_failures_before_an_address_is_slowed_count_once(client, personas, db):
    personas.resident  # noqa: B018
    _kiosk_client(client, personas)
    _thirty_wrong_pins(client)
    client.post("/api/v1/kiosk/resident-session", json={"booking_number": "X-99", "pin": "111333"})
    weights = db.scalars(select(LoginAttempt.weight).order_by(LoginAttempt.id)).all()
    assert weights == [1] * 30 + [5]
