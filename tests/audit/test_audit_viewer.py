from __future__ import annotations

from openvisit import audit
from openvisit.audit.service import AuditActor
from tests.factories import sign_in_staff

ACTOR = AuditActor("staff", 1, "someone@example.com", "10.0.0.9")


def _record(personas, tag, facility, n=1):
    for i in range(n):
        audit.service.record(
            personas.db,
            tag=tag,
            actor=ACTOR,
            at=personas.clock.now(),
            facility_id=facility.id,
            subject=("resident", i + 1),
            data={"n": i},
        )


def test_the_audit_api_lists_this_facilitys_events_newest_first(client, personas, clock):
    investigator = personas.investigator
    _record(personas, "resident:created", personas.facility, 2)
    _record(personas, "resident:created", personas.other_facility, 1)
    _record(personas, "roster:imported", personas.facility, 1)
    personas.commit()
    sign_in_staff(client, investigator, clock)
    r = client.get(f"/api/v1/facilities/{personas.facility.id}/audit")
    assert r.status_code == 200
    events = r.json()["events"]
    assert [e["tag"] for e in events] == ["roster:imported", "resident:created", "resident:created"]
    assert events[0]["id"] > events[1]["id"]
    assert events[0]["ip"] == "10.0.0.9"
    only = client.get(f"/api/v1/facilities/{personas.facility.id}/audit?tag=roster:").json()
    assert [e["tag"] for e in only["events"]] == ["roster:imported"]


def test_the_audit_api_pages_back_with_before_id(client, personas, clock):
    investigator = personas.investigator
    _record(personas, "resident:updated", personas.facility, 55)
    personas.commit()
    sign_in_staff(client, investigator, clock)
    url = f"/api/v1/facilities/{personas.facility.id}/audit"
    first = client.get(url).json()
    assert len(first["events"]) == 50 and first["older_before_id"]
    second = client.get(f"{url}?before_id={first['older_before_id']}").json()
    assert len(second["events"]) == 5 and second["older_before_id"] is None
    assert not {e["id"] for e in first["events"]} & {e["id"] for e in second["events"]}


def test_the_audit_page_shows_only_this_facility_and_the_chain_check(client, personas, clock):
    investigator = personas.investigator
    _record(personas, "resident:pin_set", personas.facility)
    _record(personas, "secret:other_facility", personas.other_facility)
    personas.commit()
    sign_in_staff(client, investigator, clock)
    page = client.get(f"/staff/facilities/{personas.facility.id}/audit")
    assert page.status_code == 200
    assert "resident:pin_set" in page.text
    assert "secret:other_facility" not in page.text
    assert "Chain check" in page.text and "Intact" in page.text
    assert "EST" in page.text  # times in the facility's zone (New York)
    filtered = client.get(f"/staff/facilities/{personas.facility.id}/audit?tag=nothing:")
    assert "No events match" in filtered.text


def test_the_audit_log_needs_the_view_audit_permission(client, personas, clock):
    officer = personas.officer
    personas.commit()
    sign_in_staff(client, officer, clock)
    assert client.get(f"/api/v1/facilities/{personas.facility.id}/audit").status_code == 403


def test_another_facilitys_audit_log_answers_not_found(client, personas, clock):
    investigator = personas.investigator
    personas.other_facility  # noqa: B018
    personas.commit()
    sign_in_staff(client, investigator, clock)
    r = client.get(f"/api/v1/facilities/{personas.other_facility.id}/audit")
    assert r.status_code == 404
    page = client.get(f"/staff/facilities/{personas.other_facility.id}/audit")
    assert page.status_code == 404


def test_the_resident_actions_appear_in_the_facility_audit_log(client, personas, clock):
    resident = personas.resident
    admin = personas.admin
    personas.commit()
    sign_in_staff(client, admin, clock)
    base = f"/api/v1/facilities/{personas.facility.id}/residents/{resident.id}"
    assert client.post(f"{base}/pin", json={"pin": "730519"}).status_code == 204
    events = client.get(f"/api/v1/facilities/{personas.facility.id}/audit?tag=resident:").json()
    assert events["events"][0]["tag"] == "resident:pin_set"
    assert events["events"][0]["actor_label"] == admin.member.email
