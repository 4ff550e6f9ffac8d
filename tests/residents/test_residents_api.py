from __future__ import annotations

from sqlalchemy import select

from openvisit.audit.models import AuditEvent
from openvisit.auth.service import verify_secret
from openvisit.residents.models import CustodyStatus, Resident
from tests.factories import sign_in_staff


def _url(personas, rest=""):
    return f"/api/v1/facilities/{personas.facility.id}/residents{rest}"


def _new(personas, **over):
    body = {
        "booking_number": "b-2001",
        "first_name": "Rosa",
        "last_name": "Diaz",
        "date_of_birth": "1988-03-04",
        "unit_id": personas.unit.id,
        "preferred_language": "es",
    }
    body.update(over)
    return body


def _tags(db, facility_id):
    return [
        e.tag
        for e in db.scalars(
            select(AuditEvent).where(AuditEvent.facility_id == facility_id).order_by(AuditEvent.id)
        )
    ]


def _count(db):
    return len(db.scalars(select(Resident)).all())


def test_a_scheduler_adds_a_resident_and_it_is_audited(client, personas, clock, db):
    scheduler = personas.scheduler
    personas.unit  # noqa: B018
    personas.commit()
    sign_in_staff(client, scheduler, clock)
    r = client.post(_url(personas), json=_new(personas))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["booking_number"] == "B-2001"
    assert body["unit_name"] == "Unit A"
    assert body["custody_status"] == "in_custody"
    assert body["has_pin"] is False
    assert "resident:created" in _tags(db, personas.facility.id)
    got = client.get(_url(personas, f"/{body['id']}"))
    assert got.status_code == 200 and got.json()["first_name"] == "Rosa"


def test_a_booking_number_already_used_at_the_facility_is_refused(client, personas, clock, db):
    resident = personas.resident
    scheduler = personas.scheduler
    personas.commit()
    sign_in_staff(client, scheduler, clock)
    before = _count(db)
    r = client.post(_url(personas), json=_new(personas, booking_number=resident.booking_number))
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "booking_number_taken"
    assert _count(db) == before


def test_the_same_booking_number_may_exist_at_another_facility(client, personas, clock):
    other = personas.other_resident
    scheduler = personas.scheduler
    personas.unit  # noqa: B018
    personas.commit()
    sign_in_staff(client, scheduler, clock)
    r = client.post(_url(personas), json=_new(personas, booking_number=other.booking_number))
    assert r.status_code == 201


def test_each_bad_field_is_refused_with_a_reason_and_nothing_is_added(client, personas, clock, db):
    scheduler = personas.scheduler
    personas.other_unit  # noqa: B018
    personas.unit  # noqa: B018
    personas.commit()
    sign_in_staff(client, scheduler, clock)
    bad = [
        ({"booking_number": ""}, "booking_number"),
        ({"booking_number": "B 1/2"}, "booking_number"),
        ({"first_name": "   "}, "first_name"),
        ({"last_name": ""}, "last_name"),
        ({"date_of_birth": "1990-02-30"}, "date_of_birth"),
        ({"date_of_birth": "2030-01-01"}, "date_of_birth"),
        ({"date_of_birth": "02/03/1990"}, "date_of_birth"),
        ({"unit_id": personas.other_unit.id}, "unit_id"),
        ({"unit_id": 999999}, "unit_id"),
        ({"preferred_language": "English!"}, "preferred_language"),
    ]
    before = _count(db)
    for change, field in bad:
        r = client.post(_url(personas), json=_new(personas, **change))
        assert r.status_code == 422, (change, r.text)
        assert r.json()["error"]["code"] == "invalid_input"
        assert field in r.json()["error"]["fields"], change
    too_long = client.post(_url(personas), json=_new(personas, booking_number="X" * 41))
    assert too_long.status_code == 422
    assert _count(db) == before
    assert "resident:created" not in _tags(db, personas.facility.id)


def test_editing_changes_only_the_given_fields_and_records_which(client, personas, clock, db):
    resident = personas.resident
    scheduler = personas.scheduler
    unit_b = personas.make_unit(personas.facility, "Unit B")
    personas.commit()
    sign_in_staff(client, scheduler, clock)
    r = client.patch(
        _url(personas, f"/{resident.id}"), json={"last_name": "Lopez-Garcia", "unit_id": unit_b.id}
    )
    assert r.status_code == 200, r.text
    assert r.json()["last_name"] == "Lopez-Garcia" and r.json()["unit_name"] == "Unit B"
    assert r.json()["first_name"] == "James"
    event = db.scalars(select(AuditEvent).where(AuditEvent.tag == "resident:updated")).one()
    assert event.data == {"changed": ["last_name", "unit_id"]}


def test_editing_to_a_taken_booking_number_changes_nothing(client, personas, clock, db):
    resident = personas.resident
    other = personas.make_resident(personas.facility, personas.unit, "B-3003", "Lee", "Park")
    scheduler = personas.scheduler
    personas.commit()
    sign_in_staff(client, scheduler, clock)
    r = client.patch(
        _url(personas, f"/{other.id}"),
        json={"booking_number": resident.booking_number, "first_name": "Leo"},
    )
    assert r.status_code == 409 and r.json()["error"]["code"] == "booking_number_taken"
    db.expire_all()
    assert db.get(Resident, other.id).first_name == "Lee"


def test_a_pin_is_stored_hashed_with_spaces_ignored(client, personas, clock, db):
    resident = personas.resident
    scheduler = personas.scheduler
    personas.commit()
    sign_in_staff(client, scheduler, clock)
    r = client.post(_url(personas, f"/{resident.id}/pin"), json={"pin": "73 05 18"})
    assert r.status_code == 204
    db.expire_all()
    stored = db.get(Resident, resident.id).pin_hash
    assert stored.startswith("$argon2id$") and "730518" not in stored
    assert verify_secret(stored, "730518")
    assert "resident:pin_set" in _tags(db, personas.facility.id)
    assert "pin_hash" not in client.get(_url(personas, f"/{resident.id}")).text


def test_a_pin_that_is_not_6_to_12_digits_is_refused(client, personas, clock, db):
    resident = personas.resident
    scheduler = personas.scheduler
    personas.commit()
    old = resident.pin_hash
    sign_in_staff(client, scheduler, clock)
    for pin in ["1357", "73051", "7305189264137", "7305a8", "", "７３０５１８"]:
        r = client.post(_url(personas, f"/{resident.id}/pin"), json={"pin": pin})
        assert r.status_code == 422, pin
        assert r.json()["error"]["code"] == "pin_invalid"
        assert r.json()["error"]["message"] == "The PIN must be 6 to 12 digits."
    db.expire_all()
    assert db.get(Resident, resident.id).pin_hash == old


def test_a_guessable_pin_is_refused_with_the_reason(client, personas, clock, db):
    resident = personas.resident  # booking number B-1001, born 2 January 1990
    scheduler = personas.scheduler
    personas.commit()
    old = resident.pin_hash
    sign_in_staff(client, scheduler, clock)
    reasons = {
        "000000": "one digit or a short group of digits repeated",
        "777777777": "one digit or a short group of digits repeated",
        "121212": "one digit or a short group of digits repeated",
        "123123": "one digit or a short group of digits repeated",
        "123456": "digits in order",
        "654321": "digits in order",
        "2345678901": "digits in order",
        "981001": "booking number",
        "19900102": "date of birth",
        "010290": "date of birth",
    }
    for pin, reason in reasons.items():
        r = client.post(_url(personas, f"/{resident.id}/pin"), json={"pin": pin})
        assert r.status_code == 422, pin
        assert r.json()["error"]["code"] == "pin_invalid"
        assert reason in r.json()["error"]["message"], pin
        assert reason in r.json()["error"]["fields"]["pin"], pin
    db.expire_all()
    assert db.get(Resident, resident.id).pin_hash == old
    assert (
        client.post(_url(personas, f"/{resident.id}/pin"), json={"pin": "246810"}).status_code
        == 204
    )


def test_releasing_a_resident_needs_a_reason_and_is_audited(client, personas, clock, db):
    resident = personas.resident
    scheduler = personas.scheduler
    personas.commit()
    sign_in_staff(client, scheduler, clock)
    no_reason = client.post(
        _url(personas, f"/{resident.id}/custody"), json={"status": "released", "reason": " "}
    )
    assert no_reason.status_code == 422 and no_reason.json()["error"]["code"] == "reason_required"
    same = client.post(
        _url(personas, f"/{resident.id}/custody"), json={"status": "in_custody", "reason": "check"}
    )
    assert same.status_code == 409 and same.json()["error"]["code"] == "custody_unchanged"
    db.expire_all()
    assert db.get(Resident, resident.id).custody_status == CustodyStatus.IN_CUSTODY
    ok = client.post(
        _url(personas, f"/{resident.id}/custody"),
        json={"status": "released", "reason": "Sentence served"},
    )
    assert ok.status_code == 200 and ok.json()["custody_status"] == "released"
    event = db.scalars(select(AuditEvent).where(AuditEvent.tag == "resident:custody_changed")).one()
    assert event.data == {"from": "in_custody", "to": "released", "reason": "Sentence served"}
    listed = client.get(_url(personas, "?status=released")).json()
    assert [r["id"] for r in listed["items"]] == [resident.id]
    assert client.get(_url(personas, "?status=in_custody")).json()["total"] == 0


def test_a_restriction_needs_a_future_end_with_offset_and_a_reason(client, personas, clock, db):
    resident = personas.resident
    scheduler = personas.scheduler
    personas.commit()
    sign_in_staff(client, scheduler, clock)
    url = _url(personas, f"/{resident.id}/restriction")
    bad = [
        ({"until": "2026-12-01T00:00:00", "reason": "Fight"}, "invalid_input"),
        ({"until": "2026-11-01T00:00:00-05:00", "reason": "Fight"}, "restriction_in_past"),
        ({"until": "2026-12-01T00:00:00-05:00", "reason": ""}, "reason_required"),
    ]
    for body, code in bad:
        r = client.put(url, json=body)
        assert r.status_code == 422, body
        assert r.json()["error"]["code"] == code
    db.expire_all()
    assert db.get(Resident, resident.id).restricted_until is None
    ok = client.put(url, json={"until": "2026-12-01T00:00:00-05:00", "reason": "Fight"})
    assert ok.status_code == 200
    assert ok.json()["restricted_until"].startswith("2026-12-01T05:00:00")
    lifted = client.delete(url)
    assert lifted.status_code == 200 and lifted.json()["restricted_until"] is None
    again = client.delete(url)
    assert again.status_code == 409 and again.json()["error"]["code"] == "not_restricted"
    tags = _tags(db, personas.facility.id)
    assert "resident:restricted" in tags and "resident:restriction_lifted" in tags


def test_search_matches_booking_number_or_name_ignoring_case_and_pages_by_50(
    client, personas, clock
):
    personas.resident  # noqa: B018
    for i in range(55):
        personas.make_resident(personas.facility, personas.unit, f"Z-{i:03d}", "Zed", f"Z{i:03d}")
    personas.other_resident  # noqa: B018
    officer = personas.officer
    personas.commit()
    sign_in_staff(client, officer, clock)
    by_name = client.get(_url(personas, "?q=james%20LOPEZ")).json()
    assert [r["booking_number"] for r in by_name["items"]] == ["B-1001"]
    by_number = client.get(_url(personas, "?q=b-10")).json()
    assert by_number["total"] == 1
    first = client.get(_url(personas)).json()
    assert first["total"] == 56 and len(first["items"]) == 50 and first["pages"] == 2
    second = client.get(_url(personas, "?page=2")).json()
    assert len(second["items"]) == 6
    assert "L-2002" not in {r["booking_number"] for r in first["items"] + second["items"]}


def test_an_officer_can_read_residents_but_not_change_them(client, personas, clock, db):
    resident = personas.resident
    officer = personas.officer
    personas.commit()
    sign_in_staff(client, officer, clock)
    assert client.get(_url(personas, f"/{resident.id}")).status_code == 200
    r = client.patch(_url(personas, f"/{resident.id}"), json={"first_name": "X"})
    assert r.status_code == 403
    assert client.post(_url(personas), json=_new(personas)).status_code == 403
    db.expire_all()
    assert db.get(Resident, resident.id).first_name == "James"


def test_another_facilitys_residents_answer_not_found(client, personas, clock, db):
    other = personas.other_resident
    personas.resident  # noqa: B018
    scheduler = personas.scheduler
    personas.commit()
    sign_in_staff(client, scheduler, clock)
    # Their resident asked for under our facility's id.
    assert client.get(_url(personas, f"/{other.id}")).status_code == 404
    r = client.patch(_url(personas, f"/{other.id}"), json={"first_name": "Hacked"})
    assert r.status_code == 404
    assert (
        client.post(_url(personas, f"/{other.id}/pin"), json={"pin": "730518"}).status_code == 404
    )
    # Their facility's id.
    theirs = f"/api/v1/facilities/{personas.other_facility.id}/residents"
    assert client.get(theirs).status_code == 404
    assert client.get(f"{theirs}/{other.id}").status_code == 404
    db.expire_all()
    assert db.get(Resident, other.id).first_name == "Ann"


def test_every_resident_and_audit_api_route_declares_its_permission(app):
    paths = {
        path: ops
        for path, ops in app.openapi()["paths"].items()
        if path.startswith("/api/v1/facilities/{facility_id}/")
        and ("/residents" in path or path.endswith("/audit"))
    }
    operations = [(path, method, op) for path, ops in paths.items() for method, op in ops.items()]
    assert len(operations) >= 10
    for path, method, op in operations:
        assert op.get("x-permission") in {"view_residents", "manage_residents", "view_audit"}, (
            path,
            method,
        )
