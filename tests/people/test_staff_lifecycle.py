"""A staff member's life through the API (issue 10, item 8): invited by e-mail, joining
with their own password and authenticator (never seen by the admin), roles changed within
what the admin holds, second factor reset, deactivated, and their own password changed.
Every change is audited; another facility's staff are "not found"."""

from __future__ import annotations

import pyotp
from sqlalchemy import select

from openvisit.audit.models import AuditEvent
from openvisit.notifications.service import deliver_pending
from openvisit.people.models import StaffMember, StaffRoleName
from tests.factories import PASSWORD, sign_in_staff

from .helpers import STRONG, link_token, mails_to


def audited(db, tag: str) -> list[AuditEvent]:  # type: ignore[no-untyped-def]
    db.expire_all()
    return list(db.scalars(select(AuditEvent).where(AuditEvent.tag == tag)))


def invite(client, personas, email="dana@riverside.example", roles=("officer",)):  # type: ignore[no-untyped-def]
    return client.post(
        f"/api/v1/facilities/{personas.facility.id}/staff",
        json={"email": email, "name": "Dana Reyes", "roles": list(roles)},
    )


def test_an_invited_officer_chooses_their_own_password_and_authenticator(
    client, other_client, personas, clock, db, settings, smtp_server
):
    controller, inbox = smtp_server
    settings.smtp_host, settings.smtp_port = "127.0.0.1", controller.port
    admin = personas.admin
    personas.commit()
    sign_in_staff(client, admin, clock)

    r = invite(client, personas, email="Dana@Riverside.example")
    assert r.status_code == 201, r.text
    body = r.json()
    # The admin gets neither factor: no password was given, no secret comes back.
    assert body["status"] == "invited" and not body["second_factor_enrolled"]
    assert "totp_secret" not in body and "otpauth_uri" not in body
    assert deliver_pending(db, clock, settings) == 1
    [(recipients, message)] = inbox.messages
    assert recipients == ["dana@riverside.example"]
    assert "Riverside Jail" in message["Subject"]
    token = link_token(mails_to(db, "dana@riverside.example")[0], "/staff/invitation")
    member = db.scalars(select(StaffMember).where(StaffMember.email == "dana@riverside.example"))
    member = member.one()
    assert member.password_hash and len(member.password_hash) > 20  # unusable, not empty

    # Nobody can sign in as the invited member before they join.
    early = other_client.post(
        "/api/v1/staff-session",
        json={"email": "dana@riverside.example", "password": "", "totp_code": "000000"},
    )
    assert early.status_code == 401

    weak = other_client.post("/api/v1/staff-invitation", json={"token": token, "password": "x"})
    assert weak.status_code == 422 and weak.json()["error"]["code"] == "password_too_weak"
    joined = other_client.post(
        "/api/v1/staff-invitation", json={"token": token, "password": STRONG}
    )
    assert joined.status_code == 200, joined.text
    secret = joined.json()["totp_secret"]
    assert joined.json()["otpauth_uri"].startswith("otpauth://totp/")
    again = other_client.post("/api/v1/staff-invitation", json={"token": token, "password": STRONG})
    assert again.status_code == 410 and again.json()["error"]["code"] == "token_used"

    signed_in = other_client.post(
        "/api/v1/staff-session",
        json={
            "email": "dana@riverside.example",
            "password": STRONG,
            "totp_code": pyotp.TOTP(secret).at(clock.now()),
        },
    )
    assert signed_in.status_code == 200, signed_in.text
    assert signed_in.json()["staff"]["roles"] == [
        {"facility_id": personas.facility.id, "role": "officer"}
    ]
    assert signed_in.json()["staff"]["second_factor_enrolled"] is True
    listed = {m["email"]: m["status"] for m in client.get(r.request.url).json()}
    assert listed["dana@riverside.example"] == "active"

    [invited] = audited(db, "staff:invited")
    assert invited.actor_id == admin.member.id and invited.facility_id == personas.facility.id
    assert invited.data == {"email": "dana@riverside.example", "roles": ["officer"]}
    [joined_event] = audited(db, "staff:joined")
    assert joined_event.actor_id == member.id
    # The e-mailed token is nowhere in the audit log.
    assert all(token not in str(e.data) for e in audited(db, "staff:invited"))


def test_an_invitation_expires_after_72_hours(client, other_client, personas, clock, db):
    personas.admin  # noqa: B018 - build it
    personas.commit()
    sign_in_staff(client, personas.admin, clock)
    assert invite(client, personas).status_code == 201
    token = link_token(mails_to(db, "dana@riverside.example")[0], "/staff/invitation")
    clock.advance(hours=73)
    late = other_client.post("/api/v1/staff-invitation", json={"token": token, "password": STRONG})
    assert late.status_code == 410 and late.json()["error"]["code"] == "token_expired"


def test_an_admin_grants_only_roles_they_hold_and_only_at_their_facility(
    client, personas, clock, db
):
    admin, officer = personas.admin, personas.officer
    stranger = personas.staff(StaffRoleName.OFFICER, other=True)
    personas.commit()
    sign_in_staff(client, admin, clock)
    base = f"/api/v1/facilities/{personas.facility.id}/staff"

    boss = invite(client, personas, email="boss@riverside.example", roles=["provider_admin"])
    assert boss.status_code == 403
    raise_to_provider = client.put(
        f"{base}/{officer.member.id}/roles", json={"roles": ["officer", "provider_admin"]}
    )
    assert raise_to_provider.status_code == 403
    none = client.put(f"{base}/{officer.member.id}/roles", json={"roles": []})
    assert none.status_code == 422

    # Another facility's officer: "not found" through our facility, and theirs is not ours.
    theirs_here = client.put(f"{base}/{stranger.member.id}/roles", json={"roles": ["scheduler"]})
    assert theirs_here.status_code == 404
    other_base = f"/api/v1/facilities/{personas.other_facility.id}/staff"
    theirs_there = client.put(
        f"{other_base}/{stranger.member.id}/roles", json={"roles": ["scheduler"]}
    )
    assert theirs_there.status_code == 404
    assert client.post(f"{base}/{stranger.member.id}/deactivate").status_code == 404

    ok = client.put(f"{base}/{officer.member.id}/roles", json={"roles": ["scheduler", "officer"]})
    assert ok.status_code == 200, ok.text
    assert sorted(r["role"] for r in ok.json()["roles"]) == ["officer", "scheduler"]
    [changed] = audited(db, "staff:roles_changed")
    assert changed.data == {"from": ["officer"], "to": ["officer", "scheduler"]}
    assert changed.actor_id == admin.member.id and changed.subject_id == officer.member.id


def test_a_provider_admin_manages_staff_at_any_facility(client, personas, clock, db):
    provider = personas.staff(StaffRoleName.PROVIDER_ADMIN)
    stranger = personas.staff(StaffRoleName.OFFICER, other=True)
    personas.commit()
    sign_in_staff(client, provider, clock)
    base = f"/api/v1/facilities/{personas.other_facility.id}/staff/{stranger.member.id}"
    r = client.put(base + "/roles", json={"roles": ["investigator"]})
    assert r.status_code == 200, r.text
    assert client.post(base + "/deactivate").json()["status"] == "deactivated"


def test_deactivating_an_officer_signs_them_out_at_once_and_for_good(
    client, other_client, personas, clock, db
):
    admin, officer = personas.admin, personas.officer
    personas.commit()
    sign_in_staff(client, admin, clock)
    sign_in_staff(other_client, officer, clock)
    assert other_client.get("/api/v1/staff/me").status_code == 200

    base = f"/api/v1/facilities/{personas.facility.id}/staff"
    myself = client.post(f"{base}/{admin.member.id}/deactivate")
    assert myself.status_code == 403
    r = client.post(f"{base}/{officer.member.id}/deactivate")
    assert r.status_code == 200 and r.json()["status"] == "deactivated"
    assert other_client.get("/api/v1/staff/me").status_code == 401
    back = other_client.post(
        "/api/v1/staff-session",
        json={
            "email": officer.member.email,
            "password": PASSWORD,
            "totp_code": officer.code(clock),
        },
    )
    assert back.status_code == 401
    assert client.post(f"{base}/{officer.member.id}/deactivate").status_code == 409
    [event] = audited(db, "staff:deactivated")
    assert event.actor_id == admin.member.id and event.subject_id == officer.member.id


def test_a_facility_admin_cannot_deactivate_someone_who_also_works_elsewhere(
    client, personas, clock, db
):
    from openvisit.people.models import StaffRole

    admin, officer = personas.admin, personas.officer
    db.add(
        StaffRole(
            staff_id=officer.member.id,
            facility_id=personas.other_facility.id,
            role=StaffRoleName.OFFICER,
        )
    )
    personas.commit()
    sign_in_staff(client, admin, clock)
    base = f"/api/v1/facilities/{personas.facility.id}/staff/{officer.member.id}"
    refused = client.post(base + "/deactivate")
    assert refused.status_code == 403 and "provider admin" in refused.json()["error"]["message"]
    assert client.post(base + "/second-factor-reset").status_code == 403
    db.expire_all()
    assert db.get(StaffMember, officer.member.id).is_active


def test_a_second_factor_reset_forces_a_new_enrolment_at_next_sign_in(
    client, other_client, personas, clock, db
):
    admin, officer = personas.admin, personas.officer
    old_secret = officer.member.totp_secret
    personas.commit()
    sign_in_staff(client, admin, clock)
    sign_in_staff(other_client, officer, clock)

    r = client.post(
        f"/api/v1/facilities/{personas.facility.id}/staff/{officer.member.id}/second-factor-reset"
    )
    assert r.status_code == 200 and r.json()["second_factor_enrolled"] is False
    assert "totp_secret" not in r.json()
    assert other_client.get("/api/v1/staff/me").status_code == 401  # signed out everywhere

    # The old authenticator no longer works.
    old = other_client.post(
        "/api/v1/staff-session",
        json={
            "email": officer.member.email,
            "password": PASSWORD,
            "totp_code": pyotp.TOTP(old_secret).at(clock.now()),
        },
    )
    assert old.status_code == 401

    # After the password, the code page shows a new secret to scan.
    clock.advance(minutes=1)
    other_client.headers.pop("X-CSRF-Token")  # a browser now: forms carry the token
    other_client.get("/staff/sign-in")
    csrf = other_client.cookies.get("ov_csrf")
    step = other_client.post(
        "/staff/sign-in",
        data={"email": officer.member.email, "password": PASSWORD, "csrf_token": csrf},
    )
    assert step.status_code == 200
    assert "Set up your authenticator app" in step.text
    db.expire_all()
    new_secret = db.get(StaffMember, officer.member.id).totp_secret
    assert new_secret != old_secret and new_secret in step.text
    done = other_client.post(
        "/staff/sign-in/code",
        data={
            "totp_code": pyotp.TOTP(new_secret).at(clock.now()),
            "csrf_token": other_client.cookies.get("ov_csrf"),
        },
    )
    assert done.status_code == 200 and "Riverside Jail" in done.text
    db.expire_all()
    assert db.get(StaffMember, officer.member.id).totp_confirmed_at is not None
    [event] = audited(db, "staff:second_factor_reset")
    assert event.actor_id == admin.member.id and event.subject_id == officer.member.id


def test_staff_change_their_own_password_with_the_current_one(
    client, other_client, personas, clock, db
):
    officer = personas.officer
    personas.commit()
    sign_in_staff(client, officer, clock)
    clock.advance(seconds=30)  # a code works once: the next sign-in uses the next one
    sign_in_staff(other_client, officer, clock)  # the same officer, another browser

    wrong = client.post(
        "/api/v1/staff/me/password",
        json={"current_password": "not my password", "new_password": STRONG},
    )
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "sign_in_failed"
    weak = client.post(
        "/api/v1/staff/me/password",
        json={"current_password": PASSWORD, "new_password": "short"},
    )
    assert weak.status_code == 422 and "new_password" in weak.json()["error"]["fields"]
    ok = client.post(
        "/api/v1/staff/me/password",
        json={"current_password": PASSWORD, "new_password": STRONG},
    )
    assert ok.status_code == 204, ok.text
    assert client.get("/api/v1/staff/me").status_code == 200  # this browser stays
    assert other_client.get("/api/v1/staff/me").status_code == 401  # the other one ends

    def sign_in(password: str) -> int:
        return other_client.post(
            "/api/v1/staff-session",
            json={
                "email": officer.member.email,
                "password": password,
                "totp_code": officer.code(clock),
            },
        ).status_code

    clock.advance(seconds=30)  # the code used in this browser above is spent
    assert sign_in(PASSWORD) == 401
    assert sign_in(STRONG) == 200
    [event] = audited(db, "staff:password_changed")
    assert event.actor_id == officer.member.id and event.subject_id == officer.member.id


# --- the same on the pages --------------------------------------------------------------


def _page_client(client):  # type: ignore[no-untyped-def]
    """A browser: forms carry the CSRF token, not a header."""
    client.headers.pop("X-CSRF-Token", None)
    return client.cookies.get("ov_csrf")


def test_on_the_pages_an_admin_changes_roles_only_within_their_facility(
    client, personas, clock, db
):
    admin, officer = personas.admin, personas.officer
    stranger = personas.staff(StaffRoleName.OFFICER, other=True)
    personas.commit()
    sign_in_staff(client, admin, clock)
    csrf = _page_client(client)
    base = f"/staff/facilities/{personas.facility.id}/staff"

    listed = client.get(base)
    assert listed.status_code == 200 and officer.member.name in listed.text
    assert stranger.member.email not in listed.text
    assert client.get(f"{base}/{stranger.member.id}").status_code == 404

    refused = client.post(
        f"{base}/{officer.member.id}/roles",
        data={"roles": ["officer", "provider_admin"], "csrf_token": csrf},
    )
    assert refused.status_code == 403 and "only the provider can make one" in refused.text
    none = client.post(f"{base}/{officer.member.id}/roles", data={"csrf_token": csrf})
    assert none.status_code == 422 and "Choose at least one role" in none.text
    ok = client.post(
        f"{base}/{officer.member.id}/roles",
        data={"roles": ["officer", "investigator"], "csrf_token": csrf},
    )
    assert ok.status_code == 200 and "roles are saved" in ok.text
    assert "staff:roles_changed" in [e.tag for e in audited(db, "staff:roles_changed")]

    gone = client.post(f"{base}/{officer.member.id}/deactivate", data={"csrf_token": csrf})
    assert gone.status_code == 200 and "is deactivated and signed out everywhere" in gone.text
    assert (
        client.post(
            f"{base}/{stranger.member.id}/deactivate", data={"csrf_token": csrf}
        ).status_code
        == 404
    )


def test_on_the_pages_staff_change_their_own_password(client, personas, clock, db):
    officer = personas.officer
    personas.commit()
    sign_in_staff(client, officer, clock)
    csrf = _page_client(client)
    wrong = client.post(
        "/staff/account/password",
        data={"current_password": "nope", "new_password": STRONG, "csrf_token": csrf},
    )
    assert wrong.status_code == 401 and "Enter your current password" in wrong.text
    ok = client.post(
        "/staff/account/password",
        data={"current_password": PASSWORD, "new_password": STRONG, "csrf_token": csrf},
    )
    assert ok.status_code == 200 and "Your password is changed" in ok.text
    assert len(audited(db, "staff:password_changed")) == 1
