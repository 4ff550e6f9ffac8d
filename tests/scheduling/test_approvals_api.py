"""Who may visit whom: requests, decisions, limits, revocation, blocks and the kiosk's say."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from openvisit.approvals.models import Approval, ApprovalStatus, Block
from openvisit.auth.service import start_session, token_digest
from openvisit.facilities.models import FacilitySettings
from openvisit.notifications.models import Notification
from tests.factories import sign_in_staff, sign_in_visitor

from .conftest import FRIDAY_9AM, approve, book


def proof(resident) -> dict:
    """What a visitor gives to name a resident: never their id."""
    return {
        "facility_id": resident.facility_id,
        "booking_number": resident.booking_number,
        "last_name": resident.last_name,
    }


def ask(client, resident, relationship="sister", minors=()):
    return client.post(
        "/api/v1/me/approvals",
        json={**proof(resident), "relationship": relationship, "minors": list(minors)},
    )


def test_a_visitor_finds_a_resident_only_with_the_right_last_name(client, personas):
    personas.resident  # noqa: B018
    personas.visitor  # noqa: B018
    personas.commit()
    sign_in_visitor(client, personas.visitor)
    params = {"facility_id": personas.facility.id, "booking_number": "b-1001"}
    found = client.get("/api/v1/resident-lookup", params={**params, "last_name": "lopez"})
    assert found.status_code == 200
    assert found.json() == {
        "first_name": "James",
        "last_initial": "L",
        "facility_id": personas.facility.id,
        "facility_name": "Riverside Jail",
    }
    wrong = client.get("/api/v1/resident-lookup", params={**params, "last_name": "Smith"})
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (404, "resident_not_found")


def test_a_request_is_decided_once_and_the_visitor_is_told(
    client, other_client, personas, db, clock
):
    scheduler = personas.scheduler
    personas.commit()
    sign_in_visitor(client, personas.visitor)
    r = ask(
        client, personas.resident, minors=[{"name": "Lily Lopez", "date_of_birth": "2016-05-01"}]
    )
    assert r.status_code == 201 and r.json()["status"] == "pending"
    again = ask(client, personas.resident)
    assert (again.status_code, again.json()["error"]["code"]) == (409, "already_requested")

    sign_in_staff(other_client, scheduler, clock)
    base = f"/api/v1/facilities/{personas.facility.id}/approvals"
    queue = other_client.get(base).json()
    assert [a["id"] for a in queue] == [r.json()["id"]]
    no_reason = other_client.post(f"{base}/{r.json()['id']}/deny", json={})
    assert no_reason.status_code == 422
    ok = other_client.post(f"{base}/{r.json()['id']}/approve", json={})
    assert ok.json()["status"] == "approved"
    twice = other_client.post(f"{base}/{r.json()['id']}/deny", json={"reason": "no"})
    assert (twice.status_code, twice.json()["error"]["code"]) == (409, "already_decided")
    mail = db.scalars(
        select(Notification).where(Notification.to_address == personas.visitor.email)
    ).all()
    assert any(m.subject.startswith("Approved") for m in mail)


def test_children_over_17_are_refused_and_nothing_is_requested(client, personas, db):
    personas.resident  # noqa: B018
    personas.commit()
    sign_in_visitor(client, personas.visitor)
    r = ask(client, personas.resident, minors=[{"name": "Tom", "date_of_birth": "2000-01-01"}])
    assert r.status_code == 422 and "minors.0.date_of_birth" in r.json()["error"]["fields"]
    assert db.scalars(select(Approval)).all() == []


def test_unverified_or_blocked_visitors_cannot_ask(client, other_client, personas, db, clock):
    personas.resident  # noqa: B018
    personas.commit()
    sign_in_visitor(client, personas.new_visitor)
    r = ask(client, personas.resident)
    assert (r.status_code, r.json()["error"]["code"]) == (403, "identity_not_verified")
    db.add(
        Block(
            facility_id=personas.facility.id,
            visitor_id=personas.visitor.id,
            resident_id=personas.resident.id,
            reason="Threats",
            until=None,
            created_at=clock.now(),
        )
    )
    personas.commit()
    sign_in_visitor(other_client, personas.visitor)
    r = ask(other_client, personas.resident)
    assert (r.status_code, r.json()["error"]["code"]) == (403, "visitor_blocked")
    assert db.scalars(select(Approval)).all() == []


def test_the_facility_limit_on_approved_visitors_holds(client, personas, db, clock):
    db.get(FacilitySettings, personas.facility.id).approved_visitors_per_resident = 1
    approve(db, personas.visitor, personas.resident)
    other = personas.make_visitor("cousin@example.com")
    personas.commit()
    sign_in_visitor(client, other)
    r = ask(client, personas.resident)
    assert (r.status_code, r.json()["error"]["code"]) == (409, "approval_limit_reached")


def test_revoking_an_approval_stops_new_bookings(client, other_client, personas, db, clock):
    approval = approve(db, personas.visitor, personas.resident)
    personas.kiosk  # noqa: B018
    scheduler = personas.scheduler
    personas.commit()
    sign_in_staff(other_client, scheduler, clock)
    r = other_client.post(
        f"/api/v1/facilities/{personas.facility.id}/approvals/{approval.id}/revoke",
        json={"reason": "Letter from the resident"},
    )
    assert r.status_code == 200 and r.json()["status"] == "revoked"
    sign_in_visitor(client, personas.visitor)
    r = book(client, personas.resident.id, FRIDAY_9AM)
    assert (r.status_code, r.json()["error"]["code"]) == (403, "visitor_not_approved")


def test_staff_block_a_visitor_until_a_date_and_can_lift_it(
    client, other_client, personas, db, clock
):
    approve(db, personas.visitor, personas.resident)
    personas.kiosk  # noqa: B018
    scheduler = personas.scheduler
    personas.commit()
    sign_in_staff(other_client, scheduler, clock)
    base = f"/api/v1/facilities/{personas.facility.id}/blocks"
    past = other_client.post(
        base,
        json={
            "visitor_id": personas.visitor.id,
            "reason": "x",
            "until": "2020-01-01T00:00:00+00:00",
        },
    )
    assert past.status_code == 422
    r = other_client.post(
        base,
        json={
            "visitor_id": personas.visitor.id,
            "reason": "Contraband",
            "until": (clock.now() + dt.timedelta(days=60)).isoformat(),
        },
    )
    assert r.status_code == 201
    sign_in_visitor(client, personas.visitor)
    assert book(client, personas.resident.id, FRIDAY_9AM).json()["error"]["code"] == (
        "visitor_blocked"
    )
    lifted = other_client.delete(f"{base}/{r.json()['id']}")
    assert lifted.status_code == 200
    assert book(client, personas.resident.id, FRIDAY_9AM).status_code == 201


def _kiosk_with_resident(client, personas, db, clock):
    kiosk = personas.kiosk
    kiosk.credential_hash = token_digest("device")
    new = start_session(
        db, actor_type="kiosk", actor_id=kiosk.id, now=clock.now(), lifetime=dt.timedelta(days=1)
    )
    new.row.resident_id = personas.resident.id
    personas.commit()
    client.cookies.set("ov_kiosk", new.token)
    client.get("/kiosk")
    client.headers["X-CSRF-Token"] = client.cookies["ov_csrf"]


def test_a_resident_sees_requests_and_visits_at_the_kiosk_and_may_decline(
    client, other_client, personas, db, clock
):
    personas.resident  # noqa: B018
    personas.commit()
    sign_in_visitor(other_client, personas.visitor)
    request_id = ask(other_client, personas.resident).json()["id"]
    _kiosk_with_resident(client, personas, db, clock)
    home = client.get("/kiosk")
    assert "People asking to visit you" in home.text and "Maria Lopez" in home.text
    pending = client.get("/api/v1/kiosk/approval-requests").json()
    assert [a["id"] for a in pending] == [request_id]
    r = client.post(f"/api/v1/kiosk/approval-requests/{request_id}/decline")
    assert r.status_code == 200 and r.json()["status"] == "declined"
    db.expire_all()
    assert db.get(Approval, request_id).status == ApprovalStatus.DECLINED
    assert client.get("/api/v1/kiosk/approval-requests").json() == []


def test_asking_to_visit_takes_the_booking_number_and_last_name_never_a_raw_resident_id(
    client, personas, db
):
    """The API needs the page's proof. A raw id is refused, and every wrong pair answers
    the same "not found", whether or not the number, the name or the facility exists, so
    no answer tells which facility holds whom."""
    ours, theirs = personas.resident, personas.other_resident
    # Lakeview checked her identity too, so only the proof decides the answers below.
    personas.verify_identity(personas.visitor, personas.other_facility)
    personas.commit()
    sign_in_visitor(client, personas.visitor)

    by_id = client.post(
        "/api/v1/me/approvals", json={"resident_id": theirs.id, "relationship": "sister"}
    )
    assert by_id.status_code == 422
    assert db.scalars(select(Approval)).all() == []

    wrong_pairs = [
        {**proof(ours), "last_name": "Ray"},  # the other resident's name
        {**proof(theirs), "facility_id": ours.facility_id},  # right pair, wrong facility
        {**proof(ours), "booking_number": "B-9999"},  # no such number
        {**proof(ours), "facility_id": 987654321},  # no such facility
    ]
    answers = set()
    for body in wrong_pairs:
        r = client.post("/api/v1/me/approvals", json={**body, "relationship": "sister"})
        answers.add((r.status_code, r.text))
        looked_up = client.get("/api/v1/resident-lookup", params=body)
        answers.add((looked_up.status_code, looked_up.text))
    assert len(answers) == 1
    status, text = answers.pop()
    assert status == 404 and '"resident_not_found"' in text
    assert db.scalars(select(Approval)).all() == []

    right = client.post(
        "/api/v1/me/approvals",
        json={**proof(theirs), "booking_number": "l-2002 ", "relationship": "sister"},
    )
    assert right.status_code == 201, right.text
    assert right.json()["facility_id"] == theirs.facility_id
    assert right.json()["resident_id"] == theirs.id  # theirs now: they proved who they mean


def test_a_resident_id_the_visitor_never_asked_about_is_not_found_like_one_that_does_not_exist(
    client, personas, db
):
    """Availability and booking take the id of a resident the visitor asked to visit; any
    other id answers the same 404, telling nothing of that resident's facility (its visit
    lengths, its dates, whether the resident is still held)."""
    ours, theirs = personas.resident, personas.other_resident
    approve(db, personas.visitor, ours)
    personas.commit()
    sign_in_visitor(client, personas.visitor)
    answers = set()
    for resident_id in (theirs.id, theirs.id + 1000, 987654321):
        for length in (30, 7):  # 7 minutes is offered nowhere
            found = client.get(
                "/api/v1/me/availability", params={"resident_id": resident_id, "length": length}
            )
            booked = book(client, resident_id, FRIDAY_9AM, length=length)
            answers |= {(found.status_code, found.text), (booked.status_code, booked.text)}
    assert len(answers) == 1
    status, text = answers.pop()
    assert status == 404 and '"resident_not_found"' in text
    mine = client.get("/api/v1/me/availability", params={"resident_id": ours.id, "length": 30})
    assert mine.status_code == 200
