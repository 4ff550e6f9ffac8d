"""Officers watch live visits: warnings to both screens, ending a visit with a reason,
the list behind the wall, who monitored a visit; and the watcher that pushes what
changed to the visit's sockets (DESIGN §4 "Recording, monitoring, privilege")."""

from __future__ import annotations

import contextlib

import pytest
from sqlalchemy import select
from starlette.websockets import WebSocketDisconnect

from openvisit.audit.models import AuditEvent
from openvisit.people.models import StaffRoleName
from openvisit.signaling import live
from openvisit.signaling.hub import hub_for
from openvisit.visits.models import VisitMeter, VisitTransition, VisitType
from tests import aio
from tests.factories import sign_in_staff, sign_in_visitor

from .conftest import events, give_kiosk_session, receive_until, socket, state_of
from .test_live import media


@pytest.fixture
def stack():  # type: ignore[no-untyped-def]
    with contextlib.ExitStack() as sockets:
        yield sockets


def _warn(client, visit, text="Hands on the table, please.", facility_id=None):  # type: ignore[no-untyped-def]
    fid = facility_id or visit.facility_id
    return client.post(f"/api/v1/facilities/{fid}/visits/{visit.id}/warnings", json={"text": text})


def _end(client, visit, reason="Contraband shown"):  # type: ignore[no-untyped-def]
    return client.post(
        f"/api/v1/facilities/{visit.facility_id}/visits/{visit.id}/terminate",
        json={"reason": reason},
    )


def _watch(app) -> None:  # type: ignore[no-untyped-def]
    aio.run(live._watch_once(app, hub_for(app), {}, 0))


def _tags(db, visit) -> list[str]:  # type: ignore[no-untyped-def]
    db.expire_all()
    return list(
        db.scalars(
            select(AuditEvent.tag).where(
                AuditEvent.subject_type == "visit", AuditEvent.subject_id == visit.id
            )
        )
    )


def test_an_officers_warning_reaches_both_screens_through_the_watcher(
    app, client, other_client, third_client, personas, visit, db, clock, stack
):
    sign_in_visitor(client, personas.visitor)
    give_kiosk_session(other_client, personas)
    sign_in_staff(third_client, personas.officer, clock)
    # One socket opens at a time: the test's sockets share one database connection.
    with socket(client, visit.id) as visitor:
        receive_until(visitor, "state")
        kiosk = stack.enter_context(socket(other_client, visit.id))
        receive_until(kiosk, "state")
        r = _warn(third_client, visit, "  Hands on   the table, please. ")
        assert r.status_code == 201, r.text
        _watch(app)
        for ws in (visitor, kiosk):
            assert receive_until(ws, "warning") == {
                "type": "warning",
                "text": "Hands on the table, please.",
            }
    assert ("warning", "monitor") in events(db, visit, "warning")
    assert "visit:warning_sent" in _tags(db, visit)


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"text": ""}, 422, "invalid_input"),
        ({"text": "   "}, 422, "empty_warning"),
        ({"text": "x" * 301}, 422, "invalid_input"),
        ({"text": "hi", "colour": "red"}, 422, "invalid_input"),
        ({}, 422, "invalid_input"),
    ],
)
def test_a_bad_warning_is_refused_and_changes_nothing(
    third_client, personas, visit, db, clock, body, status, code
):
    sign_in_staff(third_client, personas.officer, clock)
    r = third_client.post(
        f"/api/v1/facilities/{visit.facility_id}/visits/{visit.id}/warnings", json=body
    )
    assert (r.status_code, r.json()["error"]["code"]) == (status, code)
    assert events(db, visit, "warning") == []


def test_only_staff_who_monitor_at_that_facility_may_warn_or_end(
    client, third_client, personas, visit, db, clock
):
    sign_in_staff(third_client, personas.staff(StaffRoleName.SCHEDULER), clock)
    assert _warn(third_client, visit).status_code == 403
    assert _end(third_client, visit).status_code == 403
    sign_in_staff(third_client, personas.other_admin, clock)
    assert _warn(third_client, visit).status_code == 404
    r = _warn(third_client, visit, facility_id=personas.other_facility.id)
    assert r.status_code == 404
    sign_in_visitor(client, personas.visitor)
    assert _warn(client, visit).status_code in (401, 403)
    assert events(db, visit, "warning") == []


def test_a_privileged_visit_cant_be_warned_or_ended_by_monitors(
    third_client, personas, visit, db, clock
):
    visit.visit_type = VisitType.PRIVILEGED
    personas.commit()
    sign_in_staff(third_client, personas.officer, clock)
    assert _warn(third_client, visit).status_code == 404
    assert _end(third_client, visit).status_code == 404
    r = third_client.get(f"/api/v1/facilities/{visit.facility_id}/live-visits")
    assert [(v["id"], v["privileged"]) for v in r.json()] == [(visit.id, True)]


def test_ending_a_live_visit_tells_both_screens_why_and_meters_it(
    app, client, other_client, third_client, personas, visit, db, clock, stack
):
    sign_in_visitor(client, personas.visitor)
    give_kiosk_session(other_client, personas)
    sign_in_staff(third_client, personas.officer, clock)
    # One socket opens at a time: the test's sockets share one database connection.
    with socket(client, visit.id) as visitor:
        receive_until(visitor, "state")
        kiosk = stack.enter_context(socket(other_client, visit.id))
        receive_until(kiosk, "state")
        r = _end(third_client, visit)
        assert (r.status_code, r.json()["error"]["code"]) == (409, "visit_not_live")
        media(app, visit, "visitor", True, clock)
        media(app, visit, "resident", True, clock)
        clock.advance(seconds=42)
        assert _end(third_client, visit, "ab").status_code == 422
        r = _end(third_client, visit, "  Contraband   shown on camera ")
        assert r.status_code == 200, r.text
        assert r.json() == {"visit_id": visit.id, "state": "terminated"}
        _watch(app)
        for ws in (visitor, kiosk):
            assert receive_until(ws, "ended") == {
                "type": "ended",
                "reason": "Ended by staff: Contraband shown on camera",
            }
            with pytest.raises(WebSocketDisconnect):
                ws.receive_json()
    assert state_of(db, visit).value == "terminated"
    moved = db.scalars(
        select(VisitTransition).where(
            VisitTransition.visit_id == visit.id, VisitTransition.to_state == "terminated"
        )
    ).one()
    assert (moved.actor_type, moved.actor_id) == ("staff", personas.officer.member.id)
    assert db.get(VisitMeter, visit.id).billable_seconds == 42
    assert "visit:terminated" in _tags(db, visit)
    assert _end(third_client, visit).status_code == 409  # once


def test_who_monitored_a_visit_is_shown_to_those_who_read_the_audit_log(
    third_client, personas, visit, db, clock
):
    sign_in_staff(third_client, personas.officer, clock)
    with socket(third_client, visit.id) as ws:
        receive_until(ws, "state")
    officer_view = third_client.get(f"/staff/facilities/{visit.facility_id}/visits/{visit.id}")
    assert officer_view.status_code == 200 and "Who monitored" not in officer_view.text
    sign_in_staff(third_client, personas.investigator, clock)
    page = third_client.get(f"/staff/facilities/{visit.facility_id}/visits/{visit.id}")
    assert "Who monitored this visit" in page.text
    assert personas.officer.member.name in page.text.split("Who monitored this visit")[1]
    r = third_client.get(f"/api/v1/facilities/{visit.facility_id}/visits/{visit.id}/monitors")
    assert [m["staff_id"] for m in r.json()] == [personas.officer.member.id]


def test_the_wall_lists_open_and_live_visits_of_the_facility_only(
    third_client, personas, visit, clock
):
    sign_in_staff(third_client, personas.officer, clock)
    r = third_client.get(f"/api/v1/facilities/{visit.facility_id}/live-visits")
    assert r.status_code == 200
    [row] = r.json()
    assert (row["id"], row["state"], row["privileged"]) == (visit.id, "open", False)
    assert "James" in row["resident"] and row["visitor"]
    page = third_client.get(f"/staff/facilities/{visit.facility_id}/monitoring")
    assert page.status_code == 200 and 'id="wall"' in page.text
    r = third_client.get(f"/api/v1/facilities/{personas.other_facility.id}/live-visits")
    assert r.status_code == 404
