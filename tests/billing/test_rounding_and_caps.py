"""Holds round half down to the cent; the FCC caps are dated data and refuse a rate above them."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import select

from openvisit.billing.ledger import cents_half_down, dollars
from openvisit.billing.service import hold_cents
from openvisit.errors import InvalidInput
from openvisit.facilities.caps import cap_for, check_rate
from openvisit.facilities.models import Facility, FacilityKind, FacilitySettings
from tests.factories import sign_in_staff

IN_FORCE = dt.date(2026, 11, 26)


@pytest.mark.parametrize(
    ("minutes", "rate", "cents"),
    [
        (30, "15", 450),
        (30, "15.55", 466),  # 466.5: a half goes down
        (20, "15.53", 311),  # 310.6 goes up
        (1, "0.50", 0),  # half a cent is nothing
        (3, "0.50", 1),  # 1.5 goes down to 1
        (20, "15.54", 311),  # 310.8
        (240, "44", 10560),
    ],
)
def test_a_hold_is_length_times_rate_rounded_half_down(minutes, rate, cents):
    assert hold_cents(minutes, Decimal(rate)) == cents


def test_half_down_rounding_of_exact_halves_and_near_halves():
    assert cents_half_down(Decimal("2.5")) == 2
    assert cents_half_down(Decimal("2.51")) == 3
    assert cents_half_down(Decimal("2.49")) == 2


def test_amounts_read_as_dollars():
    assert dollars(1250) == "$12.50"
    assert dollars(5) == "$0.05"
    assert dollars(-5) == "-$0.05"
    assert dollars(1_234_567) == "$12,345.67"


@pytest.mark.parametrize(
    ("kind", "adp", "cap"),
    [
        ("prison", 30, "25"),
        ("prison", 5000, "25"),
        ("jail", 5000, "19"),
        ("jail", 1000, "19"),
        ("jail", 999, "19"),
        ("jail", 350, "19"),
        ("jail", 349, "21"),
        ("jail", 100, "21"),
        ("jail", 99, "25"),
        ("jail", 50, "25"),
        ("jail", 49, "44"),
        ("jail", 0, "44"),
    ],
)
def test_the_fcc_video_cap_depends_on_the_kind_and_size_of_facility(kind, adp, cap):
    found = cap_for(kind, adp, IN_FORCE)
    assert found is not None
    assert found.cents_per_minute == Decimal(cap)


def test_no_cap_applies_before_the_compliance_date():
    assert cap_for("jail", 400, dt.date(2026, 4, 5)) is None
    assert cap_for("jail", 400, dt.date(2026, 4, 6)).cents_per_minute == Decimal("19")


def _facility(kind: FacilityKind, adp: int) -> Facility:
    return Facility(name="X", timezone="UTC", kind=kind, average_daily_population=adp)


def test_a_rate_at_the_cap_passes_and_a_rate_above_it_is_refused_naming_the_cap():
    jail = _facility(FacilityKind.JAIL, 120)
    check_rate(jail, Decimal("21"), IN_FORCE)
    with pytest.raises(InvalidInput) as caught:
        check_rate(jail, Decimal("21.01"), IN_FORCE)
    assert caught.value.code == "rate_above_cap"
    assert "21 cents a minute" in caught.value.message
    assert "jails of 100 to 349 people" in caught.value.message
    assert "06 April 2026" in caught.value.message


SETTINGS = {
    "visit_lengths_minutes": [20, 30],
    "slot_step_minutes": 10,
    "min_notice_minutes": 720,
    "booking_horizon_days": 14,
    "weekly_remote_visits": 3,
    "weekly_onsite_visits": 2,
    "weekly_privileged_visits": 5,
    "visitors_per_visit": 3,
    "approved_visitors_per_resident": 10,
    "join_window_minutes": 10,
    "reconnect_grace_seconds": 90,
    "bookings_need_approval": False,
    "recording_retention_days": 90,
    "free_minutes_per_week": 0,
    "onsite_visits_free": True,
}


def test_an_admin_cannot_set_a_rate_above_the_cap_and_nothing_changes(client, personas, clock, db):
    # Riverside Jail: 400 people, so at most 19 cents a minute.
    personas.admin  # noqa: B018
    personas.commit()
    sign_in_staff(client, personas.admin, clock)
    url = f"/api/v1/facilities/{personas.facility.id}/settings"
    r = client.put(url, json={**SETTINGS, "remote_rate_cents_per_minute": "19.01"})
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "rate_above_cap"
    assert "19 cents" in error["message"]
    assert "remote_rate_cents_per_minute" in error["fields"]
    db.expire_all()
    row = db.scalar(
        select(FacilitySettings).where(FacilitySettings.facility_id == personas.facility.id)
    )
    assert row.remote_rate_cents_per_minute == Decimal("15")
    ok = client.put(url, json={**SETTINGS, "remote_rate_cents_per_minute": "19"})
    assert ok.status_code == 200, ok.text
