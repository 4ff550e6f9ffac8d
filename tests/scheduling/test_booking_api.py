"""Families book, cancel and reschedule visits; every rule holds; bad input changes nothing."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from openvisit.approvals.models import Block
from openvisit.audit.models import AuditEvent
from openvisit.facilities.models import Closure, ClosureKind, FacilitySettings
from openvisit.residents.models import CustodyStatus
from openvisit.visits.models import Visit, VisitState, VisitTransition
from tests.factories import sign_in_staff, sign_in_visitor
from tests.times import FRIDAY_9AM

from .conftest import approve, book, visit_count


def starts(client, resident_id, length=30, visit_type="remote"):
    r = client.get(
        "/api/v1/me/availability",
        params={"resident_id": resident_id, "length": length, "visit_type": visit_type},
    )
    assert r.status_code == 200, r.text
    return r.json()


def test_an_approved_family_sees_every_bookable_time_in_the_facility_time_zone(client, family):
    sign_in_visitor(client, family.visitor)
    result = starts(client, family.resident.id)
    assert result["timezone"] == "America/New_York"
    slots = result["slots"]
    # 12 h notice: the first time is Friday 9:00; 14-day horizon: the last starts by Thursday
    # 10 December 12:00. 13 whole days of 46 starts, then 19 on the last morning.
    assert len(slots) == 13 * 46 + 19
    assert slots[0]["local_start"] == "2026-11-27T09:00:00-05:00"
    assert slots[0]["label"] == "Fri 27 Nov, 9:00 AM to 9:30 AM EST (30 minutes)"
    assert slots[-1]["local_start"] == "2026-12-10T12:00:00-05:00"


def test_booking_takes_the_time_and_stores_who_booked_it(client, family, db):
    sign_in_visitor(client, family.visitor)
    r = book(client, family.resident.id, FRIDAY_9AM)
    assert r.status_code == 201, r.text
    visit = r.json()
    assert visit["state"] == "scheduled" and visit["recorded"] is True
    assert visit["rate_cents_per_minute"] == "15.00"
    transition = db.scalars(
        select(VisitTransition).where(VisitTransition.visit_id == visit["id"])
    ).one()
    assert (transition.from_state, transition.to_state, transition.actor_type) == (
        None,
        "scheduled",
        "visitor",
    )
    assert db.scalars(select(AuditEvent).where(AuditEvent.tag == "visit:booked")).one()
    offered = {s["start"] for s in starts(client, family.resident.id)["slots"]}
    assert "2026-11-27T14:00:00Z" not in offered
    assert "2026-11-27T14:20:00Z" not in offered  # would overlap
    assert "2026-11-27T14:30:00Z" in offered
    again = book(client, family.resident.id, FRIDAY_9AM)
    assert again.status_code == 409 and again.json()["error"]["code"] == "slot_taken"


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"start": "2026-11-27T14:05:00+00:00"}, 422, "slot_not_offered"),
        ({"start": "2026-11-27T21:50:00+00:00"}, 422, "slot_not_offered"),  # ends after 5 pm
        ({"length": 45}, 422, "length_not_offered"),
        ({"start": "2026-11-25T14:00:00+00:00"}, 422, "too_soon"),
        ({"start": "2026-11-26T23:00:00+00:00"}, 422, "too_soon"),  # inside the 12 h notice
        ({"start": "2026-12-15T14:00:00+00:00"}, 422, "beyond_horizon"),
        ({"start": "2026-11-27T14:00:00"}, 422, "invalid_time"),  # no offset
        ({"start": "next friday"}, 422, "invalid_input"),
        ({"resident_id": 987654}, 404, "resident_not_found"),
        ({"visit_type": "conjugal"}, 422, "invalid_input"),
    ],
)
def test_a_booking_that_breaks_a_rule_is_refused_and_books_nothing(
    client, family, db, change, status, code
):
    sign_in_visitor(client, family.visitor)
    body = {
        "resident_id": family.resident.id,
        "start": FRIDAY_9AM.isoformat(),
        "length": 30,
        "visit_type": "remote",
        **change,
    }
    before = visit_count(db)
    r = client.post("/api/v1/me/visits", json=body)
    assert (r.status_code, r.json()["error"]["code"]) == (status, code), r.text
    assert visit_count(db) == before


def test_standing_rules_between_visitor_and_resident_are_enforced(client, family, db, clock):
    sign_in_visitor(client, family.visitor)
    family.resident.custody_status = CustodyStatus.RELEASED
    family.commit()
    r = book(client, family.resident.id, FRIDAY_9AM)
    assert (r.status_code, r.json()["error"]["code"]) == (403, "resident_not_in_custody")
    family.resident.custody_status = CustodyStatus.IN_CUSTODY
    db.add(
        Block(
            facility_id=family.facility.id,
            visitor_id=family.visitor.id,
            resident_id=None,
            reason="Contraband",
            until=clock.now() + dt.timedelta(days=30),
            created_at=clock.now(),
        )
    )
    family.commit()
    r = client.get(
        "/api/v1/me/availability", params={"resident_id": family.resident.id, "length": 30}
    )
    assert (r.status_code, r.json()["error"]["code"]) == (403, "visitor_blocked")
    assert "until 26 December 2026" in r.json()["error"]["message"]
    assert visit_count(db) == 0


def test_an_unapproved_or_unverified_visitor_cannot_book(client, other_client, family, db):
    sign_in_visitor(client, family.new_visitor)
    approve(db, family.new_visitor, family.resident)
    family.commit()
    r = book(client, family.resident.id, FRIDAY_9AM)
    assert (r.status_code, r.json()["error"]["code"]) == (403, "identity_not_verified")
    stranger = family.make_visitor("stranger@example.com")
    family.commit()
    sign_in_visitor(other_client, stranger)
    r = book(other_client, family.resident.id, FRIDAY_9AM)
    # Never asked to visit them: the id is as unknown to them as one that doesn't exist.
    assert (r.status_code, r.json()["error"]["code"]) == (404, "resident_not_found")
    assert visit_count(db) == 0


def test_the_weekly_quota_counts_facility_weeks(client, family, db):
    db.get(FacilitySettings, family.facility.id).weekly_remote_visits = 1
    family.commit()
    sign_in_visitor(client, family.visitor)
    assert book(client, family.resident.id, FRIDAY_9AM).status_code == 201
    sunday = dt.datetime(2026, 11, 29, 20, tzinfo=dt.UTC)
    r = book(client, family.resident.id, sunday)
    assert (r.status_code, r.json()["error"]["code"]) == (422, "weekly_quota_reached")
    offered = [s["local_start"] for s in starts(client, family.resident.id)["slots"]]
    assert offered[0].startswith("2026-11-30T09:00")  # nothing left until Monday
    assert (
        book(client, family.resident.id, dt.datetime(2026, 11, 30, 14, tzinfo=dt.UTC)).status_code
        == 201
    )


def test_a_kiosk_going_out_of_service_takes_its_times_away(client, family, db):
    family.kiosk.in_service = False
    family.commit()
    sign_in_visitor(client, family.visitor)
    assert starts(client, family.resident.id)["slots"] == []
    r = book(client, family.resident.id, FRIDAY_9AM)
    assert (r.status_code, r.json()["error"]["code"]) == (409, "no_kiosk")


def test_a_blackout_starting_mid_visit_removes_the_visits_it_would_cut(client, family, db, clock):
    db.add(
        Closure(
            facility_id=family.facility.id,
            unit_id=None,
            kind=ClosureKind.BLACKOUT,
            starts_at=dt.datetime(2026, 11, 27, 14, 45, tzinfo=dt.UTC),
            ends_at=dt.datetime(2026, 11, 27, 16, tzinfo=dt.UTC),
            reason="Count",
            created_at=clock.now(),
        )
    )
    family.commit()
    sign_in_visitor(client, family.visitor)
    friday = [
        s["local_start"][11:16]
        for s in starts(client, family.resident.id)["slots"]
        if s["local_start"].startswith("2026-11-27")
    ]
    assert friday[:3] == ["09:00", "09:10", "11:00"]
    r = book(client, family.resident.id, dt.datetime(2026, 11, 27, 14, 20, tzinfo=dt.UTC))
    assert (r.status_code, r.json()["error"]["code"]) == (422, "facility_closed")


def test_visiting_hours_follow_the_facility_clock_across_the_fall_back(client, family, clock):
    clock.set(dt.datetime(2026, 10, 29, 16, tzinfo=dt.UTC))
    sign_in_visitor(client, family.visitor)
    slots = starts(client, family.resident.id)["slots"]
    first_by_day = {}
    for slot in slots:
        first_by_day.setdefault(slot["local_start"][:10], slot)
    assert first_by_day["2026-10-31"]["start"] == "2026-10-31T13:00:00Z"  # 9:00 EDT
    assert first_by_day["2026-11-01"]["start"] == "2026-11-01T14:00:00Z"  # 9:00 EST
    assert first_by_day["2026-11-01"]["label"].endswith("EST (30 minutes)")


def test_a_family_cancels_and_the_time_is_free_again(client, family, db):
    sign_in_visitor(client, family.visitor)
    visit = book(client, family.resident.id, FRIDAY_9AM).json()
    r = client.post(f"/api/v1/me/visits/{visit['id']}/cancel", json={})
    assert r.status_code == 200 and r.json()["state"] == "cancelled"
    assert book(client, family.resident.id, FRIDAY_9AM).status_code == 201
    twice = client.post(f"/api/v1/me/visits/{visit['id']}/cancel", json={})
    assert (twice.status_code, twice.json()["error"]["code"]) == (409, "not_cancellable")


def test_rescheduling_is_atomic(client, family, db):
    sign_in_visitor(client, family.visitor)
    visit = book(client, family.resident.id, FRIDAY_9AM).json()
    bad = client.post(
        f"/api/v1/me/visits/{visit['id']}/reschedule", json={"start": "2026-11-27T14:05:00+00:00"}
    )
    assert bad.status_code == 422
    db.expire_all()
    assert db.get(Visit, visit["id"]).state == VisitState.SCHEDULED
    # Moving by ten minutes overlaps the old time: allowed, the old visit gives way.
    moved = client.post(
        f"/api/v1/me/visits/{visit['id']}/reschedule", json={"start": "2026-11-27T14:10:00+00:00"}
    )
    assert moved.status_code == 200, moved.text
    db.expire_all()
    assert db.get(Visit, visit["id"]).state == VisitState.CANCELLED
    assert db.get(Visit, moved.json()["id"]).state == VisitState.SCHEDULED


def test_someone_elses_visit_is_not_found(client, other_client, family, db):
    sign_in_visitor(client, family.visitor)
    visit = book(client, family.resident.id, FRIDAY_9AM).json()
    sign_in_visitor(other_client, family.new_visitor)
    r = other_client.post(f"/api/v1/me/visits/{visit['id']}/cancel", json={})
    assert r.status_code == 404
    assert other_client.get(f"/api/v1/me/visits/{visit['id']}/calendar.ics").status_code == 404


def test_a_booking_downloads_as_a_calendar_file(client, family):
    sign_in_visitor(client, family.visitor)
    visit = book(client, family.resident.id, FRIDAY_9AM).json()
    r = client.get(f"/api/v1/me/visits/{visit['id']}/calendar.ics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/calendar")
    assert "DTSTART:20261127T140000Z" in r.text
    assert "James Lopez" in r.text and visit["reference"] in r.text


def test_when_bookings_need_approval_staff_decide(client, other_client, family, db, clock):
    db.get(FacilitySettings, family.facility.id).bookings_need_approval = True
    scheduler = family.scheduler
    family.commit()
    sign_in_visitor(client, family.visitor)
    visit = book(client, family.resident.id, FRIDAY_9AM).json()
    assert visit["state"] == "requested"
    sign_in_staff(other_client, scheduler, clock)
    base = f"/api/v1/facilities/{family.facility.id}/visits/{visit['id']}"
    no_reason = other_client.post(f"{base}/deny", json={})
    assert no_reason.status_code == 422
    ok = other_client.post(f"{base}/approve", json={})
    assert ok.status_code == 200 and ok.json()["state"] == "scheduled"
    again = other_client.post(f"{base}/approve", json={})
    assert (again.status_code, again.json()["error"]["code"]) == (409, "already_decided")


def test_staff_book_on_behalf_and_cancel_with_a_reason_that_the_family_is_told(
    client, family, db, clock
):
    from openvisit.notifications.models import Notification

    scheduler = family.scheduler
    family.commit()
    sign_in_staff(client, scheduler, clock)
    base = f"/api/v1/facilities/{family.facility.id}"
    r = client.post(
        f"{base}/visits",
        json={
            "resident_id": family.resident.id,
            "visitor_id": family.visitor.id,
            "start": FRIDAY_9AM.isoformat(),
            "length": 20,
        },
    )
    assert r.status_code == 201, r.text
    assert r.json()["resident_kiosk_id"] == family.kiosk.id
    visit_id = r.json()["id"]
    day = client.get(f"{base}/schedule", params={"date": "2026-11-27"}).json()
    assert [v["id"] for v in day] == [visit_id]
    assert client.get(f"{base}/schedule", params={"date": "27/11/2026"}).status_code == 422
    no_reason = client.post(f"{base}/visits/{visit_id}/cancel", json={})
    assert no_reason.status_code == 422
    r = client.post(f"{base}/visits/{visit_id}/cancel", json={"reason": "Court appearance"})
    assert r.json()["state"] == "cancelled"
    mail = db.scalars(
        select(Notification).where(Notification.to_address == family.visitor.email)
    ).all()
    assert any("Court appearance" in m.body and m.subject.startswith("Cancelled") for m in mail)


def test_staff_cannot_book_a_resident_of_another_facility_under_their_own(client, family, clock):
    scheduler = family.scheduler
    other = family.other_resident
    family.commit()
    sign_in_staff(client, scheduler, clock)
    r = client.post(
        f"/api/v1/facilities/{family.facility.id}/visits",
        json={
            "resident_id": other.id,
            "visitor_id": family.visitor.id,
            "start": FRIDAY_9AM.isoformat(),
            "length": 30,
        },
    )
    assert r.status_code == 404


def test_a_lockdown_preview_counts_the_visits_it_would_cancel(client, other_client, family, clock):
    officer = family.officer
    family.commit()
    sign_in_visitor(client, family.visitor)
    book(client, family.resident.id, FRIDAY_9AM)
    book(client, family.resident.id, FRIDAY_9AM + dt.timedelta(days=1))
    sign_in_staff(other_client, officer, clock)
    r = other_client.get(
        f"/api/v1/facilities/{family.facility.id}/closure-preview",
        params={"starts_at": "2026-11-27T00:00:00-05:00", "ends_at": "2026-11-28T00:00:00-05:00"},
    )
    assert r.status_code == 200 and r.json()["count"] == 1
    open_ended = other_client.get(
        f"/api/v1/facilities/{family.facility.id}/closure-preview",
        params={"starts_at": "2026-11-27T00:00:00-05:00"},
    )
    assert open_ended.json()["count"] == 2
