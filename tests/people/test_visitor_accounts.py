from __future__ import annotations

import pyotp
from sqlalchemy import func, select

from openvisit.audit.models import AuditEvent
from openvisit.auth.models import AccountToken, UserSession
from openvisit.people.models import Visitor
from tests.factories import PASSWORD, sign_in_visitor

from .helpers import STRONG, link_token, mails_to, sign_up


def _visitors(db) -> int:
    db.expire_all()
    return db.scalar(select(func.count()).select_from(Visitor))


def test_sign_up_mails_a_link_and_verifying_it_lets_the_visitor_in(client, db, settings):
    r = sign_up(client, "  Ana@Example.COM ")
    assert r.status_code == 202, r.text
    assert "sent a link to ana@example.com" in r.json()["message"]

    [mail] = mails_to(db, "ana@example.com")
    assert mail.body.count(f"{settings.base_url}/verify-email?token=") == 1
    token = link_token(mail, "/verify-email")
    stored = db.scalar(select(AccountToken).where(AccountToken.purpose == "verify_email"))
    assert stored.token_hash != token and token not in stored.token_hash

    verified = client.post("/api/v1/visitors/verify-email", json={"token": token})
    assert verified.status_code == 200 and verified.json()["email_verified"] is True
    again = client.post("/api/v1/visitors/verify-email", json={"token": token})
    assert again.status_code == 410 and again.json()["error"]["code"] == "token_used"

    signed = client.post(
        "/api/v1/visitor-session", json={"email": "ana@example.com", "password": STRONG}
    )
    assert signed.status_code == 200
    assert signed.json()["csrf_token"]
    client.headers["X-CSRF-Token"] = signed.json()["csrf_token"]
    me = client.get("/api/v1/me")
    assert me.status_code == 200 and me.json()["legal_name"] == "Ana Diaz"
    assert client.delete("/api/v1/visitor-session").status_code == 204
    assert client.get("/api/v1/me").status_code == 401


def test_an_expired_verification_link_says_so_and_changes_nothing(client, db, clock):
    sign_up(client)
    token = link_token(mails_to(db, "ana@example.com")[0], "/verify-email")
    clock.advance(hours=49)
    r = client.post("/api/v1/visitors/verify-email", json={"token": token})
    assert r.status_code == 410 and r.json()["error"]["code"] == "token_expired"
    db.expire_all()
    assert db.scalar(select(Visitor.email_verified_at)) is None


def test_a_made_up_verification_token_is_refused(client, db):
    r = client.post("/api/v1/visitors/verify-email", json={"token": "not-a-real-token"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "token_invalid"


def test_the_verification_page_asks_for_a_click_before_using_the_token(client, db):
    sign_up(client)
    token = link_token(mails_to(db, "ana@example.com")[0], "/verify-email")
    page = client.get(f"/verify-email?token={token}")
    assert page.status_code == 200 and "Confirm my e-mail address" in page.text
    db.expire_all()
    assert db.scalar(select(Visitor.email_verified_at)) is None  # a scanner's GET spends nothing
    done = client.post(
        "/verify-email", data={"token": token, "csrf_token": client.cookies.get("ov_csrf")}
    )
    assert done.status_code == 200 and "your e-mail address is confirmed" in done.text
    db.expire_all()
    assert db.scalar(select(Visitor.email_verified_at)) is not None


def test_signing_up_twice_with_one_email_makes_one_account(client, db):
    first = sign_up(client)
    again = sign_up(client, "ANA@example.com", legal_name="Someone Else")
    assert (again.status_code, again.json()) == (first.status_code, first.json())
    assert _visitors(db) == 1
    assert db.scalar(select(Visitor.legal_name)) == "Ana Diaz"


def test_sign_up_reports_one_clear_message_for_each_date_of_birth_problem(client, db, clock):
    cases = {
        "": "Enter your date of birth",
        "1990-02-30": "Date of birth must be a real date",
        "yesterday": "Date of birth must be a real date",
        "2030-01-01": "Date of birth must be in the past",
        "2020-01-01": "You must be 13 or older to have an account",
    }
    for given, message in cases.items():
        r = sign_up(client, date_of_birth=given)
        assert r.status_code == 422, given
        assert r.json()["error"]["fields"] == {"date_of_birth": message}
    assert _visitors(db) == 0


def test_sign_up_refuses_a_weak_password_and_a_bad_email_at_once(client, db):
    r = sign_up(client, "not-an-email", password="short")
    assert r.status_code == 422
    assert set(r.json()["error"]["fields"]) == {"email", "password"}
    only_password = sign_up(client, password="short")
    assert only_password.json()["error"]["code"] == "password_too_weak"
    assert _visitors(db) == 0 and mails_to(db, "ana@example.com") == []


def test_sign_up_page_shows_errors_then_creates_the_account(client, db):
    page = client.get("/sign-up")
    assert page.status_code == 200 and "novalidate" in page.text
    token = client.cookies.get("ov_csrf")
    form = {
        "csrf_token": token,
        "legal_name": "Ana Diaz",
        "email": "ana@example.com",
        "password": STRONG,
        "dob_day": "2",
        "dob_month": "4",
        "dob_year": "",
    }
    bad = client.post("/sign-up", data=form)
    assert bad.status_code == 422
    assert "<title>Error: " in bad.text
    assert "Date of birth must include a day, month and year" in bad.text
    assert 'value="Ana Diaz"' in bad.text  # answers are kept
    assert _visitors(db) == 0

    ok = client.post("/sign-up", data=form | {"dob_year": "1990"}, follow_redirects=False)
    assert ok.status_code == 303 and ok.headers["location"] == "/sign-in"
    landing = client.get("/sign-in")
    assert "sent a link to ana@example.com" in landing.text
    assert len(mails_to(db, "ana@example.com")) == 1

    # Signing up again answers the same (item 12); the owner is told by e-mail.
    again = client.post("/sign-up", data=form | {"dob_year": "1990"}, follow_redirects=False)
    assert (again.status_code, again.headers["location"]) == (303, "/sign-in")
    assert "sent a link to ana@example.com" in client.get("/sign-in").text
    assert _visitors(db) == 1
    assert mails_to(db, "ana@example.com")[-1].subject == "You already have an OpenVisit account"


def test_sign_in_page_goes_to_the_local_next_page_only(client, personas):
    maria = personas.visitor
    personas.commit()
    client.get("/sign-in")
    token = client.cookies.get("ov_csrf")
    r = client.post(
        "/sign-in",
        data={
            "email": maria.email,
            "password": PASSWORD,
            "next": "//evil.example/x",
            "csrf_token": token,
        },
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/account"
    token = client.cookies.get("ov_csrf")
    client.post("/sign-out", data={"csrf_token": token})
    client.get("/sign-in")
    r = client.post(
        "/sign-in",
        data={
            "email": maria.email,
            "password": PASSWORD,
            "next": "/account/security",
            "csrf_token": client.cookies.get("ov_csrf"),
        },
        follow_redirects=False,
    )
    assert r.headers["location"] == "/account/security"


def test_the_landing_page_sends_a_signed_in_visitor_to_their_account(client, personas):
    maria = personas.visitor
    personas.commit()
    sign_in_visitor(client, maria)
    r = client.get("/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/account"
    account = client.get("/account")
    assert "Maria Lopez" in account.text and "Confirmed" in account.text


def test_an_unverified_visitor_sees_what_to_do_next_on_their_account(client, personas):
    sam = personas.new_visitor
    personas.commit()
    sign_in_visitor(client, sam)
    page = client.get("/account")
    assert "Not checked yet" in page.text
    assert 'href="/account/identity"' in page.text


def test_visitors_are_locked_out_after_repeated_failures(client, personas, clock, db):
    maria = personas.visitor
    personas.commit()
    for _ in range(5):
        r = client.post(
            "/api/v1/visitor-session", json={"email": maria.email, "password": "wrong password!"}
        )
        assert r.status_code == 401 and r.json()["error"]["code"] == "sign_in_failed"
    locked = client.post(
        "/api/v1/visitor-session", json={"email": maria.email, "password": PASSWORD}
    )
    assert locked.status_code == 429 and locked.json()["error"]["code"] == "too_many_attempts"
    failures = db.scalars(select(AuditEvent).where(AuditEvent.tag == "visitor:sign_in_failed"))
    assert len(failures.all()) == 5
    clock.advance(minutes=16)
    sign_in_visitor(client, maria)


def test_password_reset_does_not_reveal_whether_an_account_exists(client, personas, db):
    maria = personas.visitor
    personas.commit()
    known = client.post("/api/v1/password-reset", json={"email": maria.email})
    unknown = client.post("/api/v1/password-reset", json={"email": "nobody@example.com"})
    assert known.status_code == unknown.status_code == 202
    assert known.json() == unknown.json()
    assert len(mails_to(db, maria.email)) == 1
    assert mails_to(db, "nobody@example.com") == []


def test_password_reset_sets_a_new_password_once_and_signs_out_everywhere(
    client, other_client, personas, db
):
    maria = personas.visitor
    personas.commit()
    sign_in_visitor(other_client, maria)
    client.post("/api/v1/password-reset", json={"email": maria.email})
    token = link_token(mails_to(db, maria.email)[-1], "/reset-password")

    weak = client.post("/api/v1/password-reset/complete", json={"token": token, "password": "x"})
    assert weak.status_code == 422 and weak.json()["error"]["code"] == "password_too_weak"
    r = client.post(
        "/api/v1/password-reset/complete",
        json={"token": token, "password": "a brand new passphrase"},
    )
    assert r.status_code == 204
    assert other_client.get("/api/v1/me").status_code == 401
    reused = client.post(
        "/api/v1/password-reset/complete",
        json={"token": token, "password": "yet another passphrase"},
    )
    assert reused.status_code == 410 and reused.json()["error"]["code"] == "token_used"

    old = client.post("/api/v1/visitor-session", json={"email": maria.email, "password": PASSWORD})
    assert old.status_code == 401
    sign_in_visitor(client, maria, password="a brand new passphrase")


def test_a_password_reset_link_expires_after_an_hour(client, personas, db, clock):
    maria = personas.visitor
    personas.commit()
    client.post("/api/v1/password-reset", json={"email": maria.email})
    token = link_token(mails_to(db, maria.email)[-1], "/reset-password")
    clock.advance(minutes=61)
    page = client.get(f"/reset-password?token={token}")
    assert page.status_code == 410 and "This link has expired" in page.text
    r = client.post(
        "/api/v1/password-reset/complete",
        json={"token": token, "password": "a brand new passphrase"},
    )
    assert r.status_code == 410 and r.json()["error"]["code"] == "token_expired"
    sign_in_visitor(client, maria)  # the old password still works


def test_forgot_password_page_answers_the_same_for_any_address(client, personas, db):
    maria = personas.visitor
    personas.commit()
    client.get("/forgot-password")
    token = client.cookies.get("ov_csrf")
    a = client.post("/forgot-password", data={"email": maria.email, "csrf_token": token})
    b = client.post("/forgot-password", data={"email": "nobody@example.com", "csrf_token": token})
    assert a.status_code == b.status_code == 200
    assert "If there is an account for" in a.text and "If there is an account for" in b.text
    assert len(mails_to(db, maria.email)) == 1


def test_turning_on_totp_makes_sign_in_need_a_code(client, other_client, personas, clock, db):
    maria = personas.visitor
    personas.commit()
    sign_in_visitor(client, maria)
    start = client.post("/api/v1/me/totp")
    assert start.status_code == 200 and start.json()["otpauth_uri"].startswith("otpauth://")
    totp = pyotp.TOTP(start.json()["secret"])
    wrong = client.post("/api/v1/me/totp/confirm", json={"code": "000000"})
    assert wrong.status_code == 422 and wrong.json()["error"]["code"] == "totp_code_wrong"
    assert client.get("/api/v1/me").json()["totp_enabled"] is False
    ok = client.post("/api/v1/me/totp/confirm", json={"code": totp.at(clock.now())})
    assert ok.status_code == 200 and ok.json()["totp_enabled"] is True

    no_code = other_client.post(
        "/api/v1/visitor-session", json={"email": maria.email, "password": PASSWORD}
    )
    assert no_code.status_code == 401 and no_code.json()["error"]["code"] == "totp_required"
    bad = other_client.post(
        "/api/v1/visitor-session",
        json={"email": maria.email, "password": PASSWORD, "totp_code": "123456"},
    )
    assert bad.status_code == 401 and bad.json()["error"]["code"] == "sign_in_failed"
    clock.advance(seconds=30)  # the code that confirmed the app has been used
    good = other_client.post(
        "/api/v1/visitor-session",
        json={"email": maria.email, "password": PASSWORD, "totp_code": totp.at(clock.now())},
    )
    assert good.status_code == 200

    clock.advance(seconds=30)
    off = client.request("DELETE", "/api/v1/me/totp", json={"code": totp.at(clock.now())})
    assert off.status_code == 200 and off.json()["totp_enabled"] is False


def test_the_sign_in_page_asks_for_the_code_as_a_second_step(client, personas, clock, db):
    maria = personas.visitor
    maria.totp_secret = pyotp.random_base32()
    maria.totp_enabled_at = clock.now()
    personas.commit()
    client.get("/sign-in")
    r = client.post(
        "/sign-in",
        data={
            "email": maria.email,
            "password": PASSWORD,
            "csrf_token": client.cookies.get("ov_csrf"),
        },
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/sign-in/code"
    # Half signed in is not signed in.
    assert client.get("/api/v1/me").status_code == 401
    token = client.cookies.get("ov_csrf")
    wrong = client.post("/sign-in/code", data={"totp_code": "111111", "csrf_token": token})
    assert wrong.status_code == 401 and "Enter the 6-digit code" in wrong.text
    ok = client.post(
        "/sign-in/code",
        data={"totp_code": pyotp.TOTP(maria.totp_secret).at(clock.now()), "csrf_token": token},
    )
    assert ok.status_code == 200 and "Your account" in ok.text
    db.expire_all()
    assert (
        db.scalar(
            select(func.count())
            .select_from(UserSession)
            .where(UserSession.second_factor_pending.is_(True))
        )
        == 0
    )


def test_the_security_page_shows_a_qr_code_while_setting_up(client, personas):
    maria = personas.visitor
    personas.commit()
    sign_in_visitor(client, maria)
    assert "Set up two-step sign-in" in client.get("/account/security").text
    client.post("/account/security/start", data={"csrf_token": client.cookies.get("ov_csrf")})
    page = client.get("/account/security")
    assert "<svg" in page.text and 'id="totp-secret"' in page.text


def test_reset_links_are_limited_to_three_an_hour_without_saying_so(client, personas, db, clock):
    maria = personas.visitor
    personas.commit()
    for _ in range(5):
        r = client.post("/api/v1/password-reset", json={"email": maria.email})
        assert r.status_code == 202
    assert len(mails_to(db, maria.email)) == 3
    clock.advance(minutes=61)
    client.post("/api/v1/password-reset", json={"email": maria.email})
    assert len(mails_to(db, maria.email)) == 4


def test_an_unconfirmed_visitor_can_ask_for_a_new_verification_link(client, db):
    sign_up(client)
    signed = client.post(
        "/api/v1/visitor-session", json={"email": "ana@example.com", "password": STRONG}
    )
    token = signed.json()["csrf_token"]
    page = client.get("/account")
    assert "Send the link again" in page.text
    r = client.post("/account/resend-verification", data={"csrf_token": token})
    assert r.status_code == 200 and "sent a new link to ana@example.com" in r.text
    first, second = mails_to(db, "ana@example.com")
    assert link_token(first, "/verify-email") != link_token(second, "/verify-email")


def test_account_pages_say_what_to_do_in_each_state(client, personas):
    maria = personas.visitor
    personas.facility  # noqa: B018
    personas.commit()
    assert "missing its code" in client.get("/verify-email").text
    sign_in_visitor(client, maria)
    assert "already confirmed" in client.get("/account/identity").text
    assert "You haven" in client.get("/account/credentials").text
    assert "Two-step sign-in is off" in client.get("/account/security").text
    assert client.get("/sign-up", follow_redirects=False).headers["location"] == "/account"


def test_account_pages_send_anonymous_people_to_sign_in(client):
    r = client.get("/account/identity", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/sign-in?next=/account/identity"
