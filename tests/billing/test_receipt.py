"""A visitor sees what a settled visit cost and why; nobody else sees it."""

from __future__ import annotations

import pytest

from openvisit.billing.models import BillingSettlement
from tests.factories import sign_in_visitor

from ..scheduling.conftest import approve
from .test_capture import book, hold_live, measured, settle


@pytest.fixture
def family(personas, db):
    """Maria ($100 in her wallet) is approved to visit James, at 15 cents a minute."""
    personas.kiosk  # noqa: B018 - build it
    approve(db, personas.visitor, personas.resident)
    return personas


def test_the_receipt_shows_connected_time_credits_free_minutes_and_the_charge(
    client, db, clock, settings, family
):
    def frozen_minute_three(visit):
        measured(db, visit, "resident", 3, frozen_ms=6400)

    visit = book(db, clock, family)
    hold_live(db, clock, settings, visit, stats_of=frozen_minute_three)
    settle(db, clock, settings)
    family.commit()
    sign_in_visitor(client, family.visitor)
    r = client.get(f"/api/v1/me/visits/{visit.id}/receipt")
    assert r.status_code == 200, r.text
    body = r.json()
    assert {k: body[k] for k in ("booked_minutes", "connected_seconds", "credited_seconds")} == {
        "booked_minutes": 30,
        "connected_seconds": 1800,
        "credited_seconds": 60,
    }
    assert body["credited_minutes"][0]["minute"] == 3
    assert body["credited_minutes"][0]["reasons"] == ["Video froze on your screen for 6 seconds"]
    assert (body["rate_cents_per_minute"], body["free_seconds_used"]) == ("15.00", 0)
    assert (body["charge_cents"], body["held_cents"], body["released_cents"]) == (435, 450, 15)
    assert body["charge"] == "$4.35"

    page = client.get(f"/visits/{visit.id}/receipt")
    assert page.status_code == 200
    assert "Video froze on your screen for 6 seconds" in page.text
    assert "$4.35" in page.text and "30 min" in page.text
    assert "9:03 AM" in page.text  # the credited minute, in the facility's time


def test_a_visit_not_settled_yet_answers_not_settled(client, db, clock, settings, family):
    visit = book(db, clock, family)
    family.commit()
    sign_in_visitor(client, family.visitor)
    r = client.get(f"/api/v1/me/visits/{visit.id}/receipt")
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "not_settled"
    page = client.get(f"/visits/{visit.id}/receipt")
    assert page.status_code == 409
    assert "not settled yet" in page.text
    assert db.get(BillingSettlement, visit.id) is None


def test_another_visitors_visit_and_a_missing_visit_are_not_found(
    client, db, clock, settings, family
):
    visit = book(db, clock, family)
    hold_live(db, clock, settings, visit)
    settle(db, clock, settings)
    family.new_visitor  # noqa: B018
    family.commit()
    sign_in_visitor(client, family.new_visitor)
    for url in (f"/api/v1/me/visits/{visit.id}/receipt", "/api/v1/me/visits/999999/receipt"):
        r = client.get(url)
        assert r.status_code == 404
        assert r.json()["error"]["code"] == "visit_not_found"
    assert client.get(f"/visits/{visit.id}/receipt").status_code == 404


def test_the_receipt_needs_a_signed_in_visitor(client, db, clock, settings, family):
    visit = book(db, clock, family)
    family.commit()
    assert client.get(f"/api/v1/me/visits/{visit.id}/receipt").status_code == 401
