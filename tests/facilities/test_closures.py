from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from openvisit.audit.models import AuditEvent
from openvisit.facilities.models import Closure
from tests.factories import sign_in_staff

LATER = "2026-11-26T18:00:00+00:00"
TOMORROW = "2026-11-27T18:00:00+00:00"


@pytest.fixture
def officer_client(client, personas, clock):
    officer = personas.officer
    personas.unit, personas.other_unit  # noqa: B018
    personas.commit()
    sign_in_staff(client, officer, clock)
    return client


def _url(personas) -> str:
    return f"/api/v1/facilities/{personas.facility.id}/closures"


def _count(db) -> int:
    return db.scalar(select(func.count()).select_from(Closure))


def test_an_officer_records_an_open_ended_lockdown_and_lifts_it(
    officer_client, personas, db, clock
):
    r = officer_client.post(
        _url(personas),
        json={
            "kind": "lockdown",
            "starts_at": "2026-11-26T12:00:00-05:00",
            "reason": "Search of Unit A",
        },
    )
    assert r.status_code == 201, r.text
    closure = r.json()
    assert closure["ends_at"] is None
    assert closure["starts_at"].startswith("2026-11-26T17:00:00")
    listed = officer_client.get(_url(personas)).json()
    assert [c["id"] for c in listed["current_and_upcoming"]] == [closure["id"]]

    clock.advance(hours=2)
    lifted = officer_client.post(f"{_url(personas)}/{closure['id']}/lift")
    assert lifted.status_code == 200
    assert lifted.json()["lifted_at"] is not None
    listed = officer_client.get(_url(personas)).json()
    assert listed["current_and_upcoming"] == []
    assert [c["id"] for c in listed["past"]] == [closure["id"]]
    again = officer_client.post(f"{_url(personas)}/{closure['id']}/lift")
    assert again.status_code == 409 and again.json()["error"]["code"] == "closure_not_active"
    tags = [
        e.facility_id
        for e in db.scalars(
            select(AuditEvent).where(AuditEvent.tag.in_(["closure:created", "closure:lifted"]))
        )
    ]
    assert tags == [personas.facility.id, personas.facility.id]


def test_a_blackout_of_one_unit_is_listed_with_its_unit(officer_client, personas):
    r = officer_client.post(
        _url(personas),
        json={
            "kind": "blackout",
            "unit_id": personas.unit.id,
            "starts_at": LATER,
            "ends_at": TOMORROW,
            "reason": "Holiday staffing",
        },
    )
    assert r.status_code == 201
    assert r.json()["unit_id"] == personas.unit.id
    lift = officer_client.post(f"{_url(personas)}/{r.json()['id']}/lift")
    assert lift.status_code == 409 and lift.json()["error"]["code"] == "not_a_lockdown"


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"ends_at": "2026-11-26T17:30:00+00:00"}, 422, "closure_end_before_start"),
        ({"ends_at": LATER}, 422, "closure_end_before_start"),
        ({"ends_at": None}, 422, "closure_needs_end"),
        ({"reason": "   "}, 422, "invalid_input"),
        ({"reason": "x" * 501}, 422, "invalid_input"),
        ({"kind": "holiday"}, 422, "invalid_input"),
        (
            {"starts_at": "2026-11-20T10:00:00+00:00", "ends_at": "2026-11-21T10:00:00+00:00"},
            422,
            "closure_in_past",
        ),
        ({"starts_at": "next tuesday"}, 422, "invalid_input"),
    ],
)
def test_bad_closures_are_refused_and_nothing_is_recorded(
    officer_client, personas, db, change, status, code
):
    body = {
        "kind": "blackout",
        "starts_at": LATER,
        "ends_at": TOMORROW,
        "reason": "Drill",
        **change,
    }
    r = officer_client.post(_url(personas), json=body)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code
    assert _count(db) == 0


def test_a_closure_cannot_name_another_facilitys_unit(officer_client, personas, db):
    r = officer_client.post(
        _url(personas),
        json={
            "kind": "lockdown",
            "unit_id": personas.other_unit.id,
            "starts_at": LATER,
            "reason": "Fight",
        },
    )
    assert r.status_code == 404
    assert _count(db) == 0


def test_another_facilitys_closure_cannot_be_lifted(client, personas, clock, db):
    other_admin = personas.other_admin
    closure = Closure(
        facility_id=personas.facility.id,
        kind="lockdown",
        starts_at=clock.now() - dt.timedelta(hours=1),
        reason="Search",
        created_at=clock.now(),
    )
    db.add(closure)
    personas.commit()
    sign_in_staff(client, other_admin, clock)
    other_url = f"/api/v1/facilities/{personas.other_facility.id}/closures"
    assert client.post(f"{other_url}/{closure.id}/lift").status_code == 404
    assert client.get(_url(personas)).status_code == 404
    db.refresh(closure)
    assert closure.lifted_at is None


def test_an_investigator_may_not_manage_closures(client, personas, clock):
    investigator = personas.investigator
    personas.commit()
    sign_in_staff(client, investigator, clock)
    assert client.get(_url(personas)).status_code == 403


def test_closures_page_takes_local_time_in_the_facilitys_zone(officer_client, personas, db):
    fid = personas.facility.id
    page = officer_client.get(f"/staff/facilities/{fid}/closures")
    assert page.status_code == 200 and "No lockdown or blackout is in force" in page.text
    r = officer_client.post(
        f"/staff/facilities/{fid}/closures",
        data={
            "csrf_token": officer_client.cookies["ov_csrf"],
            "kind": "blackout",
            "unit_id": "",
            "starts_date": "2026-12-24",
            "starts_time": "18:00",
            "ends_date": "2026-12-26",
            "ends_time": "08:00",
            "reason": "Christmas",
        },
        follow_redirects=True,
    )
    assert r.status_code == 200
    assert "Blackout recorded" in r.text and "Christmas" in r.text
    closure = db.scalar(select(Closure))
    assert closure.starts_at == dt.datetime(2026, 12, 24, 23, 0, tzinfo=dt.UTC)
    assert closure.ends_at == dt.datetime(2026, 12, 26, 13, 0, tzinfo=dt.UTC)


def test_closures_page_refuses_a_time_skipped_by_daylight_saving(officer_client, personas, db):
    r = officer_client.post(
        f"/staff/facilities/{personas.facility.id}/closures",
        data={
            "csrf_token": officer_client.cookies["ov_csrf"],
            "kind": "lockdown",
            "starts_date": "2027-03-14",
            "starts_time": "02:30",
            "reason": "Drill",
        },
    )
    assert r.status_code == 422
    assert "clocks" in r.text
    assert _count(db) == 0
