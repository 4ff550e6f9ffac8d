"""Booking a paid visit sets its money aside; a cancelled, denied or failed visit gets it back."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from openvisit import worker
from openvisit.approvals.models import Approval, ApprovalStatus
from openvisit.audit.service import SYSTEM
from openvisit.billing import service as billing
from openvisit.billing.models import BillingSettlement, LedgerTransaction
from openvisit.facilities.models import FacilitySettings
from openvisit.visits import states
from openvisit.visits.models import Visit, VisitState
from tests.factories import sign_in_staff, sign_in_visitor
from tests.times import FRIDAY_9AM

from .helpers import entry_total, fund


@pytest.fixture
def family(personas, db):
    """Maria is approved to visit James; the facility charges 15 cents a minute."""
    personas.kiosk  # noqa: B018
    db.add(
        Approval(
            facility_id=personas.facility.id,
            visitor_id=personas.visitor.id,
            resident_id=personas.resident.id,
            relationship="sister",
            status=ApprovalStatus.APPROVED,
            requested_at=dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
        )
    )
    db.flush()
    return personas


def book(client, resident_id, start=FRIDAY_9AM, length=30, visit_type="remote"):
    return client.post(
        "/api/v1/me/visits",
        json={
            "resident_id": resident_id,
            "start": start.isoformat(),
            "length": length,
            "visit_type": visit_type,
        },
    )


def wallet(client):
    return client.get("/api/v1/me/wallet").json()


def settle(db, clock, settings):
    """One tick of the worker's billing job, in its own transaction."""
    factory = db.info["factory"]
    for name, job in worker.jobs(gateway=None):
        if name == "settle visit money":
            with factory() as session:
                done = job(session, clock, settings)
                session.commit()
            db.expire_all()
            return done
    raise AssertionError("the billing job is not among the worker's jobs")


def test_booking_a_paid_visit_sets_length_times_rate_aside(client, family, db):
    fund(db, family.visitor.id, 1000)
    family.commit()
    sign_in_visitor(client, family.visitor)
    r = book(client, family.resident.id)
    assert r.status_code == 201, r.text
    assert wallet(client) | {} == {
        "balance_cents": 1000,
        "held_cents": 450,
        "available_cents": 550,
        "balance": "$10.00",
        "held": "$4.50",
        "available": "$5.50",
    }
    line = client.get("/api/v1/me/wallet/entries").json()[0]
    assert line["amount_cents"] == -450
    assert line["description"].startswith("Set aside $4.50 for your visit on Fri 27 Nov 2026")
    assert billing.visit_hold_cents(db, r.json()["id"]) == 450


def test_not_enough_money_books_nothing_and_says_what_is_needed(client, family, db):
    fund(db, family.visitor.id, 449)
    family.commit()
    sign_in_visitor(client, family.visitor)
    r = book(client, family.resident.id)
    assert r.status_code == 402
    error = r.json()["error"]
    assert error["code"] == "insufficient_funds"
    assert "$4.50" in error["message"] and "$4.49" in error["message"]
    db.expire_all()
    assert db.scalars(select(Visit)).all() == []
    assert wallet(client)["available_cents"] == 449
    assert wallet(client)["held_cents"] == 0


def test_a_free_visit_needs_no_money(client, family, db):
    row = db.get(FacilitySettings, family.facility.id)
    row.remote_rate_cents_per_minute = 0
    family.commit()
    sign_in_visitor(client, family.visitor)
    assert book(client, family.resident.id).status_code == 201
    assert wallet(client)["held_cents"] == 0


def test_a_cancelled_visit_gets_all_its_money_back_once_however_often_the_job_runs(
    client, family, db, clock, settings
):
    fund(db, family.visitor.id, 1000)
    family.commit()
    sign_in_visitor(client, family.visitor)
    visit_id = book(client, family.resident.id).json()["id"]
    assert settle(db, clock, settings) == 0  # nothing to settle while it is booked
    r = client.post(f"/api/v1/me/visits/{visit_id}/cancel", json={"reason": "Sick"})
    assert r.status_code == 200, r.text
    assert wallet(client)["held_cents"] == 450  # the worker gives it back
    assert settle(db, clock, settings) == 1
    assert settle(db, clock, settings) == 0
    assert wallet(client) | {} == {
        "balance_cents": 1000,
        "held_cents": 0,
        "available_cents": 1000,
        "balance": "$10.00",
        "held": "$0.00",
        "available": "$10.00",
    }
    assert billing.visit_hold_cents(db, visit_id) == 0
    back = client.get("/api/v1/me/wallet/entries").json()[0]
    assert back["amount_cents"] == 450
    assert "was cancelled" in back["description"]
    releases = db.scalars(
        select(LedgerTransaction).where(LedgerTransaction.kind == "release")
    ).all()
    assert len(releases) == 1
    assert db.get(BillingSettlement, visit_id).outcome == "released"
    assert entry_total(db) == 0


def test_a_denied_booking_gets_its_money_back(client, family, db, clock, settings):
    db.get(FacilitySettings, family.facility.id).bookings_need_approval = True
    fund(db, family.visitor.id, 1000)
    family.scheduler  # noqa: B018
    family.commit()
    sign_in_visitor(client, family.visitor)
    visit = db.get(Visit, book(client, family.resident.id).json()["id"])
    assert visit.state == VisitState.REQUESTED
    assert wallet(client)["held_cents"] == 450
    states.transition(db, visit, VisitState.DENIED, actor=SYSTEM, at=clock.now(), cause="staff")
    family.commit()
    settle(db, clock, settings)
    assert wallet(client)["available_cents"] == 1000
    assert wallet(client)["held_cents"] == 0


def test_a_lockdown_releases_every_hold_it_cancels(client, family, db, clock, settings):
    fund(db, family.visitor.id, 2000)
    family.admin  # noqa: B018
    family.commit()
    sign_in_visitor(client, family.visitor)
    first = book(client, family.resident.id).json()["id"]
    second = book(client, family.resident.id, FRIDAY_9AM + dt.timedelta(hours=2)).json()["id"]
    assert wallet(client)["held_cents"] == 900
    from fastapi.testclient import TestClient

    with TestClient(client.app, base_url="https://testserver") as staff:
        sign_in_staff(staff, family.admin, clock)
        r = staff.post(
            f"/api/v1/facilities/{family.facility.id}/closures",
            json={
                "kind": "lockdown",
                "starts_at": FRIDAY_9AM.isoformat(),
                "ends_at": (FRIDAY_9AM + dt.timedelta(hours=4)).isoformat(),
                "reason": "Search",
            },
        )
        assert r.status_code == 201, r.text
    assert settle(db, clock, settings) == 2
    assert wallet(client)["held_cents"] == 0
    assert wallet(client)["available_cents"] == 2000
    assert billing.visit_hold_cents(db, first) == billing.visit_hold_cents(db, second) == 0


def test_rescheduling_moves_the_hold_to_the_new_time(client, family, db, clock, settings):
    fund(db, family.visitor.id, 600)  # enough for one 30-minute visit, not two
    family.commit()
    sign_in_visitor(client, family.visitor)
    old = book(client, family.resident.id).json()["id"]
    r = client.post(
        f"/api/v1/me/visits/{old}/reschedule",
        json={"start": (FRIDAY_9AM + dt.timedelta(hours=1)).isoformat()},
    )
    assert r.status_code in (200, 201), r.text
    new = r.json()["id"]
    assert billing.visit_hold_cents(db, old) == 0
    assert billing.visit_hold_cents(db, new) == 450
    settle(db, clock, settings)  # the old visit's release is already done: a no-op
    assert wallet(client)["held_cents"] == 450
    assert wallet(client)["available_cents"] == 150
    assert entry_total(db) == 0


def test_a_family_that_cancels_inside_the_notice_period_still_gets_everything_back(
    client, family, db, clock, settings
):
    """Decision (docs/architecture.md): no second was connected, so nothing is charged,
    however late the family cancels. There is no late-cancellation fee."""
    fund(db, family.visitor.id, 1000)
    family.commit()
    sign_in_visitor(client, family.visitor)
    visit_id = book(client, family.resident.id).json()["id"]
    assert db.get(FacilitySettings, family.facility.id).min_notice_minutes == 12 * 60
    clock.set(FRIDAY_9AM - dt.timedelta(minutes=20))  # well inside the 12-hour notice
    sign_in_visitor(client, family.visitor)  # the morning after: a new session
    page = client.get(f"/visits/{visit_id}")
    assert "the $4.50 set aside for it comes back to your wallet in full" in page.text
    r = client.post(f"/api/v1/me/visits/{visit_id}/cancel", json={"reason": "Car broke down"})
    assert r.status_code == 200, r.text
    assert settle(db, clock, settings) == 1
    assert wallet(client)["available_cents"] == 1000
    assert wallet(client)["held_cents"] == 0
    row = db.get(BillingSettlement, visit_id)
    assert (row.outcome, row.charge_cents, row.released_cents) == ("released", 0, 450)
    kinds = db.scalars(
        select(LedgerTransaction.kind).where(LedgerTransaction.visit_id == visit_id)
    ).all()
    assert sorted(kinds) == ["hold", "release"]  # nothing else: no fee of any kind
    assert entry_total(db) == 0
