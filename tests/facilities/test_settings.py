from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from openvisit.audit.models import AuditEvent
from openvisit.facilities.models import FacilitySettings
from tests.factories import sign_in_staff

GOOD = {
    "visit_lengths_minutes": [30, 15],
    "slot_step_minutes": 15,
    "min_notice_minutes": 1440,
    "booking_horizon_days": 21,
    "weekly_remote_visits": 4,
    "weekly_onsite_visits": 1,
    "weekly_privileged_visits": 12,
    "visitors_per_visit": 2,
    "approved_visitors_per_resident": 8,
    "join_window_minutes": 5,
    "reconnect_grace_seconds": 120,
    "bookings_need_approval": True,
    "recording_retention_days": 365,
    "free_minutes_per_week": 60,
    "onsite_visits_free": False,
    "remote_rate_cents_per_minute": "15.5",
}


@pytest.fixture
def admin_client(client, personas, clock):
    admin = personas.admin
    personas.commit()
    sign_in_staff(client, admin, clock)
    return client


def _url(personas) -> str:
    return f"/api/v1/facilities/{personas.facility.id}/settings"


def test_admin_replaces_every_setting_and_the_change_is_audited(admin_client, personas, db):
    r = admin_client.put(_url(personas), json=GOOD)
    assert r.status_code == 200, r.text
    assert r.json()["visit_lengths_minutes"] == [15, 30]
    assert r.json()["remote_rate_cents_per_minute"] == "15.50"
    row = db.get(FacilitySettings, personas.facility.id)
    db.refresh(row)
    assert row.remote_rate_cents_per_minute == Decimal("15.50")
    assert row.bookings_need_approval is True
    event = db.scalar(select(AuditEvent).where(AuditEvent.tag == "facility:settings_changed"))
    assert event.facility_id == personas.facility.id
    assert event.data["before"]["slot_step_minutes"] == 10
    assert event.data["after"]["slot_step_minutes"] == 15


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("visit_lengths_minutes", []),
        ("visit_lengths_minutes", [10, 20, 30, 40, 50, 60, 70]),
        ("visit_lengths_minutes", [30, 30]),
        ("visit_lengths_minutes", [4]),
        ("visit_lengths_minutes", [241]),
        ("slot_step_minutes", 4),
        ("slot_step_minutes", 121),
        ("min_notice_minutes", -1),
        ("min_notice_minutes", 30 * 24 * 60 + 1),
        ("booking_horizon_days", 0),
        ("booking_horizon_days", 91),
        ("weekly_remote_visits", 51),
        ("weekly_onsite_visits", -1),
        ("visitors_per_visit", 0),
        ("visitors_per_visit", 11),
        ("join_window_minutes", 61),
        ("reconnect_grace_seconds", 14),
        ("reconnect_grace_seconds", 601),
        ("recording_retention_days", 0),
        ("recording_retention_days", 3651),
        ("free_minutes_per_week", 10081),
        ("remote_rate_cents_per_minute", "1000.01"),
        ("remote_rate_cents_per_minute", "-1"),
        ("remote_rate_cents_per_minute", "15.555"),
    ],
)
def test_out_of_range_settings_are_refused_and_nothing_changes(
    admin_client, personas, db, field, value
):
    before = admin_client.get(_url(personas)).json()
    r = admin_client.put(_url(personas), json={**GOOD, field: value})
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "invalid_settings"
    assert field in r.json()["error"]["fields"]
    assert admin_client.get(_url(personas)).json() == before
    assert (
        db.scalar(select(AuditEvent).where(AuditEvent.tag == "facility:settings_changed")) is None
    )


def test_a_missing_setting_is_refused(admin_client, personas):
    body = {k: v for k, v in GOOD.items() if k != "slot_step_minutes"}
    r = admin_client.put(_url(personas), json=body)
    assert r.status_code == 422
    assert "slot_step_minutes" in r.json()["error"]["fields"]


def test_an_officer_cannot_change_settings(client, personas, clock):
    officer = personas.officer
    personas.commit()
    sign_in_staff(client, officer, clock)
    assert client.put(_url(personas), json=GOOD).status_code == 403


def test_settings_page_saves_and_shows_the_flash(admin_client, personas, db):
    page = admin_client.get(f"/staff/facilities/{personas.facility.id}/settings")
    assert page.status_code == 200
    assert 'value="20, 30"' in page.text
    form = {k: str(v) for k, v in GOOD.items() if not isinstance(v, bool | list)}
    form.update(
        visit_lengths_minutes="20, 45",
        bookings_need_approval="yes",
        lobby_deposit_daily_cap="2500",
        csrf_token=admin_client.cookies["ov_csrf"],
    )
    r = admin_client.post(
        f"/staff/facilities/{personas.facility.id}/settings", data=form, follow_redirects=True
    )
    assert r.status_code == 200
    assert "Settings saved" in r.text
    row = db.get(FacilitySettings, personas.facility.id)
    db.refresh(row)
    assert row.visit_lengths_minutes == [20, 45]
    assert row.onsite_visits_free is False


def test_settings_page_shows_errors_and_saves_nothing(admin_client, personas, db):
    form = {k: str(v) for k, v in GOOD.items() if not isinstance(v, bool | list)}
    form.update(
        visit_lengths_minutes="20, thirty",
        slot_step_minutes="500",
        csrf_token=admin_client.cookies["ov_csrf"],
    )
    r = admin_client.post(f"/staff/facilities/{personas.facility.id}/settings", data=form)
    assert r.status_code == 422
    assert "Error:" in r.text and "There is a problem" in r.text
    assert "Enter whole minutes" in r.text
    row = db.get(FacilitySettings, personas.facility.id)
    db.refresh(row)
    assert row.slot_step_minutes == 10
