from __future__ import annotations

from sqlalchemy import func, select

from openvisit.audit.models import AuditEvent
from openvisit.facilities.models import Facility, FacilitySettings
from openvisit.people.models import StaffRoleName
from tests.factories import sign_in_staff

NEW = {
    "name": "Hillcrest Jail",
    "timezone": "America/Denver",
    "kind": "jail",
    "average_daily_population": 120,
}


def _facility_count(db) -> int:
    return db.scalar(select(func.count()).select_from(Facility))


def test_provider_admin_creates_a_facility_with_default_settings(client, personas, clock, db):
    provider = personas.staff(StaffRoleName.PROVIDER_ADMIN)
    personas.commit()
    sign_in_staff(client, provider, clock)
    r = client.post("/api/v1/facilities", json=NEW)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["name"] == "Hillcrest Jail" and body["timezone"] == "America/Denver"
    row = db.get(FacilitySettings, body["id"])
    assert row is not None and row.visit_lengths_minutes == [20, 30]
    settings = client.get(f"/api/v1/facilities/{body['id']}/settings").json()
    assert settings["slot_step_minutes"] == 10
    assert settings["remote_rate_cents_per_minute"] == "15.00"
    event = db.scalar(select(AuditEvent).where(AuditEvent.tag == "facility:created"))
    assert event.facility_id == body["id"]


def test_an_unknown_time_zone_is_refused_and_nothing_is_created(client, personas, clock, db):
    provider = personas.staff(StaffRoleName.PROVIDER_ADMIN)
    personas.commit()
    sign_in_staff(client, provider, clock)
    before = _facility_count(db)
    r = client.post("/api/v1/facilities", json={**NEW, "timezone": "Mars/Olympus_Mons"})
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "invalid_time_zone"
    r = client.post("/api/v1/facilities", json={**NEW, "average_daily_population": -1})
    assert r.status_code == 422
    r = client.post("/api/v1/facilities", json={**NEW, "kind": "hotel"})
    assert r.status_code == 422
    r = client.post("/api/v1/facilities", json={**NEW, "name": "Riverside Jail"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "facility_name_taken"
    assert _facility_count(db) == before


def test_a_facility_admin_cannot_create_facilities(client, personas, clock, db):
    admin = personas.admin
    personas.commit()
    sign_in_staff(client, admin, clock)
    before = _facility_count(db)
    r = client.post("/api/v1/facilities", json=NEW)
    assert r.status_code == 403
    assert _facility_count(db) == before


def test_staff_list_only_their_own_facilities(client, personas, clock):
    officer = personas.officer
    personas.other_facility  # noqa: B018 - exists, but not ours
    personas.commit()
    sign_in_staff(client, officer, clock)
    names = [f["name"] for f in client.get("/api/v1/facilities").json()]
    assert names == ["Riverside Jail"]


def test_visitors_can_list_facilities_without_signing_in(client, personas):
    personas.facility, personas.other_facility  # noqa: B018
    personas.commit()
    r = client.get("/api/v1/public/facilities")
    assert r.status_code == 200
    assert {f["name"] for f in r.json()} == {"Riverside Jail", "Lakeview Prison"}
    assert set(r.json()[0]) == {"id", "name", "timezone", "kind"}


def test_facility_admin_edits_the_facility_and_it_is_audited(client, personas, clock, db):
    admin = personas.admin
    personas.commit()
    sign_in_staff(client, admin, clock)
    fid = personas.facility.id
    r = client.patch(
        f"/api/v1/facilities/{fid}",
        json={"average_daily_population": 45, "timezone": "America/Detroit"},
    )
    assert r.status_code == 200
    assert r.json()["average_daily_population"] == 45
    event = db.scalar(select(AuditEvent).where(AuditEvent.tag == "facility:updated"))
    assert event.data["before"]["timezone"] == "America/New_York"
    assert event.data["after"]["timezone"] == "America/Detroit"

    bad = client.patch(f"/api/v1/facilities/{fid}", json={"timezone": "Nowhere/Atlantis"})
    assert bad.json()["error"]["code"] == "invalid_time_zone"
    assert client.get(f"/api/v1/facilities/{fid}").json()["timezone"] == "America/Detroit"


def test_an_officer_may_view_but_not_edit_the_facility(client, personas, clock):
    officer = personas.officer
    personas.commit()
    sign_in_staff(client, officer, clock)
    fid = personas.facility.id
    assert client.get(f"/api/v1/facilities/{fid}").status_code == 200
    assert client.patch(f"/api/v1/facilities/{fid}", json={"name": "X"}).status_code == 403


def test_another_facilitys_staff_get_not_found(client, personas, clock):
    other = personas.other_admin
    personas.commit()
    sign_in_staff(client, other, clock)
    fid = personas.facility.id
    assert client.get(f"/api/v1/facilities/{fid}").status_code == 404
    assert client.patch(f"/api/v1/facilities/{fid}", json={"name": "X"}).status_code == 404
    assert client.get(f"/api/v1/facilities/{fid}/settings").status_code == 404
