from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select

from openvisit.audit.models import AuditEvent
from openvisit.facilities.models import HousingUnit, VisitingHours
from tests.factories import sign_in_staff


@pytest.fixture
def admin_client(client, personas, clock):
    admin = personas.admin
    personas.unit  # noqa: B018
    personas.commit()
    sign_in_staff(client, admin, clock)
    return client


def _units(personas) -> str:
    return f"/api/v1/facilities/{personas.facility.id}/units"


def _hours(db, unit) -> list[tuple[int, dt.time, dt.time]]:
    rows = db.scalars(
        select(VisitingHours)
        .where(VisitingHours.unit_id == unit.id)
        .order_by(VisitingHours.weekday, VisitingHours.start_time)
    )
    return [(h.weekday, h.start_time, h.end_time) for h in rows]


def test_admin_adds_renames_and_deletes_an_empty_unit(admin_client, personas, db):
    r = admin_client.post(_units(personas), json={"name": "  West   Block "})
    assert r.status_code == 201
    unit_id = r.json()["id"]
    assert r.json()["name"] == "West Block"
    dup = admin_client.post(_units(personas), json={"name": "unit a"})
    assert dup.status_code == 409 and dup.json()["error"]["code"] == "unit_name_taken"
    r = admin_client.patch(f"{_units(personas)}/{unit_id}", json={"name": "East Block"})
    assert r.json()["name"] == "East Block"
    assert admin_client.delete(f"{_units(personas)}/{unit_id}").status_code == 204
    assert db.get(HousingUnit, unit_id) is None
    tags = set(db.scalars(select(AuditEvent.tag)))
    assert {"unit:created", "unit:renamed", "unit:deleted"} <= tags
    deleted = db.scalar(select(AuditEvent).where(AuditEvent.tag == "unit:deleted"))
    assert (deleted.subject_type, deleted.subject_id) == ("unit", unit_id)
    assert deleted.facility_id == personas.facility.id


def test_a_unit_with_residents_or_kiosks_cannot_be_deleted(admin_client, personas, db):
    personas.resident, personas.kiosk  # noqa: B018
    personas.commit()
    r = admin_client.delete(f"{_units(personas)}/{personas.unit.id}")
    assert r.status_code == 409
    error = r.json()["error"]
    assert error["code"] == "unit_in_use"
    assert "1 resident" in error["message"] and "1 kiosk" in error["message"]
    assert db.get(HousingUnit, personas.unit.id) is not None


def test_hours_are_replaced_as_a_whole(admin_client, personas, db):
    unit = personas.unit
    r = admin_client.put(
        f"{_units(personas)}/{unit.id}/hours",
        json={
            "windows": [
                {"weekday": 5, "start": "13:00", "end": "16:00"},
                {"weekday": 5, "start": "09:00", "end": "11:30"},
                {"weekday": 6, "start": "09:00", "end": "12:00"},
            ]
        },
    )
    assert r.status_code == 200, r.text
    assert r.json()["hours"][0] == {"weekday": 5, "start": "09:00", "end": "11:30"}
    assert _hours(db, unit) == [
        (5, dt.time(9), dt.time(11, 30)),
        (5, dt.time(13), dt.time(16)),
        (6, dt.time(9), dt.time(12)),
    ]
    event = db.scalar(select(AuditEvent).where(AuditEvent.tag == "hours:replaced"))
    assert event.facility_id == personas.facility.id and len(event.data["before"]) == 7


@pytest.mark.parametrize(
    ("windows", "code"),
    [
        ([{"weekday": 1, "start": "10:00", "end": "09:00"}], "hours_end_before_start"),
        ([{"weekday": 1, "start": "10:00", "end": "10:00"}], "hours_end_before_start"),
        (
            [
                {"weekday": 1, "start": "09:00", "end": "12:00"},
                {"weekday": 1, "start": "11:59", "end": "14:00"},
            ],
            "hours_overlap",
        ),
        ([{"weekday": 2, "start": "9am", "end": "12:00"}], "invalid_input"),
        ([{"weekday": 2, "start": "09:00", "end": "24:00"}], "invalid_input"),
        ([{"weekday": 7, "start": "09:00", "end": "12:00"}], "invalid_input"),
    ],
)
def test_bad_hours_are_refused_and_the_old_hours_stay(admin_client, personas, db, windows, code):
    unit = personas.unit
    before = _hours(db, unit)
    r = admin_client.put(
        f"{_units(personas)}/{unit.id}/hours",
        json={"windows": [{"weekday": 0, "start": "08:00", "end": "09:00"}, *windows]},
    )
    assert r.status_code == 422
    assert r.json()["error"]["code"] == code
    db.expire_all()
    assert _hours(db, unit) == before
    assert db.scalar(select(AuditEvent).where(AuditEvent.tag == "hours:replaced")) is None


def test_back_to_back_windows_do_not_overlap(admin_client, personas, db):
    fid, unit = personas.facility.id, personas.unit
    windows = [
        {"weekday": 1, "start": "09:00", "end": "12:00"},
        {"weekday": 1, "start": "12:00", "end": "14:00"},
    ]
    r = admin_client.put(f"{_units(personas)}/{unit.id}/hours", json={"windows": windows})
    assert r.status_code == 200, r.text
    assert r.json()["hours"] == windows
    listed = {u["id"]: u["hours"] for u in admin_client.get(_units(personas)).json()}
    assert listed[unit.id] == windows
    assert _hours(db, unit) == [(1, dt.time(9), dt.time(12)), (1, dt.time(12), dt.time(14))]
    week = admin_client.get(f"/staff/facilities/{fid}/units").text
    assert "9:00 AM to 12:00 PM<br>12:00 PM to 2:00 PM" in week
    edit = admin_client.get(f"/staff/facilities/{fid}/units/{unit.id}").text
    typed = re.findall(r'name="(start|end)" value="(\d\d:\d\d)"', edit)
    assert typed == [("start", "09:00"), ("end", "12:00"), ("start", "12:00"), ("end", "14:00")]


def test_another_facilitys_unit_is_not_found(admin_client, personas, db):
    other = personas.other_unit
    personas.commit()
    base = _units(personas)
    assert admin_client.patch(f"{base}/{other.id}", json={"name": "Mine"}).status_code == 404
    assert admin_client.delete(f"{base}/{other.id}").status_code == 404
    r = admin_client.put(f"{base}/{other.id}/hours", json={"windows": []})
    assert r.status_code == 404
    db.expire_all()
    assert db.get(HousingUnit, other.id).name == "Block 1"
    assert len(_hours(db, other)) == 7


def test_another_facilitys_admin_cannot_touch_our_units(client, personas, clock, db):
    other_admin = personas.other_admin
    unit = personas.unit
    personas.commit()
    sign_in_staff(client, other_admin, clock)
    assert client.get(_units(personas)).status_code == 404
    assert (
        client.put(f"{_units(personas)}/{unit.id}/hours", json={"windows": []}).status_code == 404
    )
    assert len(_hours(db, unit)) == 7


def test_units_page_shows_the_week_and_the_hours_form_saves(admin_client, personas, db):
    fid, unit = personas.facility.id, personas.unit
    page = admin_client.get(f"/staff/facilities/{fid}/units")
    assert page.status_code == 200
    assert "Unit A" in page.text and "9:00 AM to 5:00 PM" in page.text
    edit = admin_client.get(f"/staff/facilities/{fid}/units/{unit.id}")
    assert edit.status_code == 200 and 'value="09:00"' in edit.text
    csrf = admin_client.cookies["ov_csrf"]
    r = admin_client.post(
        f"/staff/facilities/{fid}/units/{unit.id}/hours",
        data={
            "csrf_token": csrf,
            "weekday": ["2", "2", "4"],
            "start": ["10:00", "", "14:00"],
            "end": ["11:00", "", "15:30"],
        },
        follow_redirects=True,
    )
    assert r.status_code == 200
    assert "Visiting hours for Unit A saved" in r.text
    assert _hours(db, unit) == [(2, dt.time(10), dt.time(11)), (4, dt.time(14), dt.time(15, 30))]


def test_hours_form_shows_an_overlap_against_the_row(admin_client, personas, db):
    fid, unit = personas.facility.id, personas.unit
    r = admin_client.post(
        f"/staff/facilities/{fid}/units/{unit.id}/hours",
        data={
            "csrf_token": admin_client.cookies["ov_csrf"],
            "weekday": ["1", "1"],
            "start": ["09:00", "10:00"],
            "end": ["12:00", "13:00"],
        },
    )
    assert r.status_code == 422
    assert "overlaps another" in r.text
    assert 'value="13:00"' in r.text
    assert len(_hours(db, unit)) == 7
