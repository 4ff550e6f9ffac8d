"""Who may open a visit's signaling socket (DESIGN §5, Signaling): the visitor, the
resident at the visit's kiosk, and staff of the facility as silent monitors,
except on a privileged visit. Everyone else gets an error and a closed socket."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from starlette.websockets import WebSocketDisconnect

from openvisit.audit.models import AuditEvent
from openvisit.audit.service import SYSTEM
from openvisit.people.models import StaffRoleName
from openvisit.visits import states
from openvisit.visits.models import VisitState, VisitType
from tests.factories import sign_in_staff, sign_in_visitor

from .conftest import events, give_kiosk_session, receive_until, socket


def refused(client, visit_id, headers=None) -> tuple[dict, int]:
    """The error message the socket sends, and its close code."""
    with socket(client, visit_id, headers) as ws:
        message = ws.receive_json()
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    return message, closed.value.code


def audit_tags(db) -> list[str]:
    db.expire_all()
    return list(db.scalars(select(AuditEvent.tag).order_by(AuditEvent.id)))


def test_the_visitor_joins_and_sees_the_visit_open_with_its_time_left(client, personas, visit, db):
    sign_in_visitor(client, personas.visitor)
    with socket(client, visit.id) as ws:
        assert ws.receive_json() == {"type": "state", "state": "open", "seconds_left": 1800}
    assert events(db, visit) == [("joined", "visitor"), ("left", "visitor")]


def test_the_resident_joins_from_the_kiosk_of_the_visit(client, personas, visit, db):
    give_kiosk_session(client, personas)
    with socket(client, visit.id) as ws:
        assert ws.receive_json()["state"] == "open"
    assert events(db, visit, "joined") == [("joined", "resident")]


def test_a_kiosk_with_another_resident_signed_in_is_told_the_visit_does_not_exist(
    client, personas, visit, db
):
    other = personas.make_resident(personas.facility, personas.unit, "B-1002", "Tom", "Hale")
    give_kiosk_session(client, personas, resident=other)
    message, code = refused(client, visit.id)
    assert (message["type"], message["code"], code) == ("error", "visit_not_found", 4404)
    assert events(db, visit) == []


def test_an_officer_of_the_facility_watches_silently(
    client, other_client, third_client, personas, visit, db, clock
):
    sign_in_visitor(client, personas.visitor)
    sign_in_staff(third_client, personas.officer, clock)
    with socket(client, visit.id) as visitor:
        visitor.receive_json()
        with socket(third_client, visit.id) as monitor:
            assert monitor.receive_json()["type"] == "state"
            assert monitor.receive_json() == {
                "type": "peer",
                "party": "visitor",
                "status": "joined",
            }
            visitor.send_json({"type": "hello"})
            # The visitor hears about no one: monitors are not announced.
            assert visitor.receive_json()["type"] == "state"
    assert events(db, visit, "joined") == [("joined", "visitor")]
    assert "visit:monitor_joined" in audit_tags(db)


def test_a_privileged_visit_refuses_any_monitor_and_the_attempt_is_audited(
    third_client, personas, visit, db, clock
):
    visit.visit_type = VisitType.PRIVILEGED
    visit.recorded = False
    personas.commit()
    sign_in_staff(third_client, personas.officer, clock)
    message, code = refused(third_client, visit.id)
    assert (message["code"], code) == ("privileged_visit", 4403)
    assert "not recorded or monitored" in message["message"]
    refusal = db.scalars(select(AuditEvent).where(AuditEvent.tag == "visit:monitor_refused")).one()
    assert (refusal.subject_type, refusal.subject_id) == ("visit", visit.id)
    assert refusal.actor_id == personas.officer.member.id
    assert events(db, visit) == []


def test_staff_of_another_facility_are_told_the_visit_does_not_exist(
    third_client, personas, visit, db, clock
):
    sign_in_staff(third_client, personas.other_admin, clock)
    message, code = refused(third_client, visit.id)
    assert (message["code"], code) == ("visit_not_found", 4404)
    assert "visit:monitor_joined" not in audit_tags(db)


def test_a_stranger_without_a_session_is_refused(client, visit, db):
    message, code = refused(client, visit.id)
    assert (message["code"], code) == ("not_authenticated", 4403)
    assert events(db, visit) == []


def test_another_visitor_is_told_the_visit_does_not_exist(client, personas, visit, db):
    other = personas.make_visitor("kim@example.com", verified=True, name="Kim Lee")
    personas.commit()
    sign_in_visitor(client, other)
    message, code = refused(client, visit.id)
    assert (message["code"], code) == ("visit_not_found", 4404)
    assert events(db, visit) == []


@pytest.mark.parametrize("visit_id", ["999999", "abc", "0", "99999999999999999999999"])
def test_an_unknown_visit_is_not_found(client, personas, visit, visit_id):
    sign_in_visitor(client, personas.visitor)
    with client.websocket_connect(
        f"wss://testserver/ws/visits/{visit_id}", headers={"origin": "http://127.0.0.1:8000"}
    ) as ws:
        assert ws.receive_json()["code"] == "visit_not_found"
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 4404


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        "http://127.0.0.1:9999",
        "https://127.0.0.1:8000",
        "null",
        "",
        None,
    ],
)
def test_a_page_from_another_origin_cannot_connect_even_with_the_cookie(
    client, personas, visit, db, origin
):
    sign_in_visitor(client, personas.visitor)
    headers = {} if origin is None else {"origin": origin}
    message, code = refused(client, visit.id, headers)
    assert (message["code"], code) == ("bad_origin", 4403)
    assert events(db, visit) == []


def test_localhost_on_the_same_port_is_accepted_in_development_and_test(client, personas, visit):
    sign_in_visitor(client, personas.visitor)
    with socket(client, visit.id, {"origin": "http://localhost:8000"}) as ws:
        assert ws.receive_json()["type"] == "state"


def test_a_visit_whose_join_window_has_not_opened_cannot_be_joined_yet(client, personas, visit, db):
    visit.state = VisitState.SCHEDULED
    personas.commit()
    sign_in_visitor(client, personas.visitor)
    message, code = refused(client, visit.id)
    assert (message["code"], code) == ("visit_not_open", 4409)
    assert events(db, visit) == []


def test_a_visit_that_ended_says_why_and_closes(client, personas, visit, db, clock):
    states.transition(
        db,
        visit,
        VisitState.MISSED,
        actor=SYSTEM,
        at=clock.now(),
        cause="test",
        reason="Nobody joined the visit.",
    )
    personas.commit()
    sign_in_visitor(client, personas.visitor)
    with socket(client, visit.id) as ws:
        assert ws.receive_json() == {"type": "ended", "reason": "Nobody joined the visit."}
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 1000
    assert events(db, visit) == []


def test_an_investigator_can_monitor_but_a_scheduler_cannot(third_client, personas, visit, clock):
    sign_in_staff(third_client, personas.staff(StaffRoleName.INVESTIGATOR), clock)
    with socket(third_client, visit.id) as ws:
        assert receive_until(ws, "state")["state"] == "open"
    sign_in_staff(third_client, personas.staff(StaffRoleName.SCHEDULER), clock)
    with socket(third_client, visit.id) as ws:
        refused = ws.receive_json()
    assert refused["type"] == "error" and refused["code"] == "forbidden", refused
