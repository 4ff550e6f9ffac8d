"""What a lockdown, a blackout or a release does to visits already booked."""

from __future__ import annotations

from sqlalchemy import select

from openvisit.facilities.models import Closure
from openvisit.notifications.models import Notification
from openvisit.visits.models import Visit, VisitState, VisitTransition
from tests.factories import sign_in_staff, sign_in_visitor
from tests.times import FRIDAY_9AM

from .conftest import book


def _booked(client, family, days=(0, 1)):
    import datetime as dt

    sign_in_visitor(client, family.visitor)
    return [
        book(client, family.resident.id, FRIDAY_9AM + dt.timedelta(days=d)).json()["id"]
        for d in days
    ]


def test_a_lockdown_cancels_the_visits_it_covers_and_tells_the_families(
    client, other_client, family, db, clock
):
    officer = family.officer
    family.commit()
    friday, saturday = _booked(client, family)
    sign_in_staff(other_client, officer, clock)
    r = other_client.post(
        f"/api/v1/facilities/{family.facility.id}/closures",
        json={
            "kind": "lockdown",
            "starts_at": "2026-11-27T00:00:00-05:00",
            "ends_at": "2026-11-28T00:00:00-05:00",
            "reason": "Search of Unit A after a fight",
        },
    )
    assert r.status_code == 201, r.text
    db.expire_all()
    assert db.get(Visit, friday).state == VisitState.CANCELLED
    assert db.get(Visit, saturday).state == VisitState.SCHEDULED
    transition = db.scalars(
        select(VisitTransition).where(
            VisitTransition.visit_id == friday, VisitTransition.to_state == "cancelled"
        )
    ).one()
    assert transition.cause == "lockdown" and transition.actor_type == "staff"
    mail = db.scalars(
        select(Notification).where(
            Notification.to_address == family.visitor.email,
            Notification.subject.startswith("Cancelled"),
        )
    ).one()
    assert "closed for visits (lockdown)" in mail.body
    assert "fight" not in mail.body  # the staff's reason stays inside


def test_the_closure_page_shows_the_effect_before_it_is_confirmed(
    client, other_client, family, db, clock
):
    officer = family.officer
    family.commit()
    (friday,) = _booked(client, family, days=(0,))
    sign_in_staff(other_client, officer, clock)
    form = {
        "kind": "lockdown",
        "unit_id": "",
        "starts_date": "2026-11-27",
        "starts_time": "08:00",
        "ends_date": "",
        "ends_time": "",
        "reason": "Staffing",
        "csrf_token": other_client.cookies["ov_csrf"],
    }
    page = other_client.post(f"/staff/facilities/{family.facility.id}/closures", data=form)
    assert page.status_code == 200
    assert "1 visit will be cancelled" in page.text
    db.expire_all()
    assert db.scalars(select(Closure)).all() == []
    assert db.get(Visit, friday).state == VisitState.SCHEDULED
    done = other_client.post(
        f"/staff/facilities/{family.facility.id}/closures", data={**form, "confirm": "yes"}
    )
    assert done.status_code == 200 and "1 visit cancelled; the families were told" in done.text
    db.expire_all()
    assert db.get(Visit, friday).state == VisitState.CANCELLED


def test_a_release_cancels_the_residents_future_visits(client, other_client, family, db, clock):
    scheduler = family.scheduler
    family.commit()
    visits = _booked(client, family)
    sign_in_staff(other_client, scheduler, clock)
    r = other_client.post(
        f"/api/v1/facilities/{family.facility.id}/residents/{family.resident.id}/custody",
        json={"status": "released", "reason": "Bond posted"},
    )
    assert r.status_code == 200, r.text
    db.expire_all()
    for visit_id in visits:
        assert db.get(Visit, visit_id).state == VisitState.CANCELLED
    causes = {
        t.cause
        for t in db.scalars(select(VisitTransition).where(VisitTransition.to_state == "cancelled"))
    }
    assert causes == {"released"}
