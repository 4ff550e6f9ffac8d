"""A TOTP code works once: a replay in the same or an earlier time step is refused."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator

import pyotp
import pytest

from openvisit.auth import service as auth
from openvisit.db import make_engine, make_sessionmaker
from tests.factories import PASSWORD
from tests.pg import ADMIN_URL, throwaway_database


def _staff(client, persona, code):
    return client.post(
        "/api/v1/staff-session",
        json={"email": persona.member.email, "password": persona.password, "totp_code": code},
    )


def test_a_staff_code_signs_in_once(client, other_client, personas, clock):
    officer = personas.officer
    personas.commit()
    code = officer.code(clock)
    assert _staff(client, officer, code).status_code == 200
    replay = _staff(other_client, officer, code)
    assert replay.status_code == 401 and replay.json()["error"]["code"] == "sign_in_failed"
    assert replay.json()["error"]["fields"] == {
        "totp_code": "Enter the 6-digit code from your authenticator app."
    }
    assert other_client.get("/api/v1/staff/me").status_code == 401
    clock.advance(seconds=30)
    assert _staff(other_client, officer, officer.code(clock)).status_code == 200


def test_a_code_older_than_the_last_one_used_is_refused(client, other_client, personas, clock):
    officer = personas.officer
    personas.commit()
    totp = pyotp.TOTP(officer.member.totp_secret)
    now = clock.now()
    previous = totp.at(now, counter_offset=-1)  # still inside the drift allowed
    assert _staff(client, officer, totp.at(now)).status_code == 200
    assert _staff(other_client, officer, previous).status_code == 401


def test_the_staff_sign_in_page_refuses_a_replayed_code(client, other_client, personas, clock):
    officer = personas.officer
    personas.commit()
    code = officer.code(clock)
    assert _staff(client, officer, code).status_code == 200
    other_client.get("/staff/sign-in")
    token = other_client.cookies.get("ov_csrf")
    first = other_client.post(
        "/staff/sign-in",
        data={"email": officer.member.email, "password": officer.password, "csrf_token": token},
        follow_redirects=False,
    )
    assert first.status_code == 303 and first.headers["location"] == "/staff/sign-in/code"
    token = other_client.cookies.get("ov_csrf")
    replay = other_client.post("/staff/sign-in/code", data={"totp_code": code, "csrf_token": token})
    assert replay.status_code == 401 and "Enter the 6-digit code" in replay.text
    assert other_client.get("/api/v1/staff/me").status_code == 401


def test_a_visitor_code_signs_in_once(client, other_client, personas, clock):
    maria = personas.visitor
    maria.totp_secret = pyotp.random_base32()
    maria.totp_enabled_at = clock.now()
    personas.commit()
    code = pyotp.TOTP(maria.totp_secret).at(clock.now())
    body = {"email": maria.email, "password": PASSWORD, "totp_code": code}
    assert client.post("/api/v1/visitor-session", json=body).status_code == 200
    replay = other_client.post("/api/v1/visitor-session", json=body)
    assert replay.status_code == 401 and replay.json()["error"]["code"] == "sign_in_failed"


def test_a_new_secret_does_not_inherit_the_old_ones_last_step(personas, clock, db):
    officer = personas.officer
    member = officer.member
    code = officer.code(clock)
    use = {"scope": "staff", "account_id": member.id, "now": clock.now()}
    assert auth.use_totp_code(db, secret=member.totp_secret, code=code, **use)
    assert not auth.use_totp_code(db, secret=member.totp_secret, code=code, **use)
    # Re-enrolled with a new secret in the same 30 seconds: its first code works.
    member.totp_secret = pyotp.random_base32()
    new_code = pyotp.TOTP(member.totp_secret).at(clock.now())
    assert auth.use_totp_code(db, secret=member.totp_secret, code=new_code, **use)


@pytest.fixture
def pg_own_db(pg_url) -> Iterator[str]:
    """A database of its own (``pg_url`` only to skip, or fail in CI, without PostgreSQL)."""
    with throwaway_database(ADMIN_URL, prefix="openvisit_totp") as url:
        yield url


def test_eight_requests_racing_with_one_code_let_one_in(pg_own_db):
    """On PostgreSQL, eight transactions on their own connections, released together."""
    engine = make_engine(pg_own_db, pool_size=8, max_overflow=0)
    factory = make_sessionmaker(engine)
    secret = pyotp.random_base32()
    now = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
    code = pyotp.TOTP(secret).at(now)
    start = threading.Barrier(8)
    won: list[bool] = []
    errors: list[BaseException] = []

    def attempt() -> None:
        try:
            with factory() as s, s.begin():
                start.wait()
                won.append(
                    auth.use_totp_code(
                        s, scope="staff", account_id=1, secret=secret, code=code, now=now
                    )
                )
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    engine.dispose()
    assert not errors
    assert sorted(won) == [False] * 7 + [True]
