"""The booking pages, as a family and as staff (server-rendered, no browser)."""

from __future__ import annotations

from openvisit.facilities.models import FacilitySettings
from openvisit.visits.models import Visit, VisitState
from tests.factories import sign_in_staff, sign_in_visitor
from tests.times import FRIDAY_9AM

from .conftest import book


def form(client, **fields):
    return {"csrf_token": client.cookies["ov_csrf"], **fields}


def test_the_choose_time_page_lists_days_in_the_facility_zone(client, family):
    sign_in_visitor(client, family.visitor)
    page = client.get("/visits/book", params={"resident_id": family.resident.id})
    assert page.status_code == 200
    assert "America/New_York" in page.text
    # The shortest length is offered first: 20-minute visits, 9:00 to 4:40 is 47 starts.
    assert "Friday 27 November" in page.text and "47 times available" in page.text
    assert 'value="2026-11-27T14:00:00+00:00"' in page.text


def test_a_time_taken_meanwhile_sends_the_family_back_with_an_alert(
    client, other_client, family, db
):
    sign_in_visitor(client, family.visitor)
    client.get("/visits/book", params={"resident_id": family.resident.id})
    book(client, family.resident.id, FRIDAY_9AM)  # someone (here: the same family) took it
    page = client.post(
        "/visits/book",
        data=form(
            client,
            resident_id=family.resident.id,
            length=30,
            visit_type="remote",
            start=FRIDAY_9AM.isoformat(),
        ),
    )
    assert page.status_code == 409
    assert "someone else has just booked that time" in page.text
    assert "Error:" in page.text


def test_a_family_cannot_open_booking_for_someone_they_never_asked_about(client, personas):
    stranger_resident = personas.other_resident
    personas.commit()
    sign_in_visitor(client, personas.visitor)
    page = client.get("/visits/book", params={"resident_id": stranger_resident.id})
    assert page.status_code == 404


def test_cancel_asks_first_and_keeps_the_visit_on_no(client, family, db):
    sign_in_visitor(client, family.visitor)
    visit_id = book(client, family.resident.id, FRIDAY_9AM).json()["id"]
    page = client.get(f"/visits/{visit_id}")
    assert "Yes, cancel this visit" in page.text and "9:00 AM to 9:30 AM EST" in page.text
    kept = client.post(f"/visits/{visit_id}/cancel", data=form(client, answer="no"))
    assert "still booked" in kept.text
    db.expire_all()
    assert db.get(Visit, visit_id).state == VisitState.SCHEDULED
    gone = client.post(f"/visits/{visit_id}/cancel", data=form(client, answer="yes"))
    assert "cancelled" in gone.text
    db.expire_all()
    assert db.get(Visit, visit_id).state == VisitState.CANCELLED


def test_staff_see_the_day_per_kiosk_and_cancel_with_a_reason(
    client, other_client, family, db, clock
):
    scheduler = family.scheduler
    family.commit()
    sign_in_visitor(client, family.visitor)
    visit_id = book(client, family.resident.id, FRIDAY_9AM).json()["id"]
    sign_in_staff(other_client, scheduler, clock)
    day = other_client.get(
        f"/staff/facilities/{family.facility.id}/schedule", params={"date": "2026-11-27"}
    )
    assert "Unit A kiosk 1" in day.text and "James Lopez" in day.text
    assert "9:00 AM–9:30 AM EST" in day.text
    cancel = f"/staff/facilities/{family.facility.id}/visits/{visit_id}/cancel"
    no_reason = other_client.post(cancel, data=form(other_client, reason=""))
    assert "Choose a reason" in no_reason.text
    db.expire_all()
    assert db.get(Visit, visit_id).state == VisitState.SCHEDULED
    done = other_client.post(cancel, data=form(other_client, reason="Medical appointment"))
    assert "cancelled; the family was told" in done.text
    db.expire_all()
    assert db.get(Visit, visit_id).ended_reason == "Medical appointment"


def test_staff_book_for_a_family_from_the_console(client, family, db, clock):
    scheduler = family.scheduler
    family.commit()
    sign_in_staff(client, scheduler, clock)
    url = f"/staff/facilities/{family.facility.id}/visits/new"
    unknown = client.get(url, params={"booking_number": "NOPE", "visitor_email": "x@y.z"})
    assert unknown.status_code == 404
    assert "Enter a booking number of this facility" in unknown.text
    times = client.get(
        url, params={"booking_number": "B-1001", "visitor_email": family.visitor.email}
    )
    assert "Times for James Lopez with Maria Lopez" in times.text
    done = client.post(
        url,
        data=form(
            client,
            booking_number="B-1001",
            visitor_email=family.visitor.email,
            length=30,
            visit_type="remote",
            start=FRIDAY_9AM.isoformat(),
        ),
    )
    assert done.status_code == 200 and "booked for James Lopez with Maria Lopez" in done.text


def test_the_visit_page_links_to_its_calendar_file(client, family):
    sign_in_visitor(client, family.visitor)
    visit = book(client, family.resident.id, FRIDAY_9AM).json()
    page = client.get(f"/visits/{visit['id']}")
    assert f'href="/visits/{visit["id"]}/calendar.ics"' in page.text
    ics = client.get(f"/visits/{visit['id']}/calendar.ics")
    assert ics.status_code == 200 and ics.headers["content-type"].startswith("text/calendar")
    assert visit["reference"] in ics.text


def test_staff_decide_a_requested_booking_and_an_unknown_decision_is_refused(
    client, other_client, family, db, clock
):
    db.get(FacilitySettings, family.facility.id).bookings_need_approval = True
    scheduler = family.scheduler
    family.commit()
    sign_in_visitor(client, family.visitor)
    visit_id = book(client, family.resident.id, FRIDAY_9AM).json()["id"]
    sign_in_staff(other_client, scheduler, clock)
    decide = f"/staff/facilities/{family.facility.id}/visits/{visit_id}/decide"
    unknown = other_client.post(decide, data=form(other_client, decision="maybe"))
    assert unknown.status_code == 422
    no_reason = other_client.post(decide, data=form(other_client, decision="deny"))
    assert "Enter a reason" in no_reason.text
    db.expire_all()
    assert db.get(Visit, visit_id).state == VisitState.REQUESTED
    done = other_client.post(decide, data=form(other_client, decision="approve"))
    assert "approved" in done.text
    db.expire_all()
    assert db.get(Visit, visit_id).state == VisitState.SCHEDULED
