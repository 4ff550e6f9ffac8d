"""A visit's socket lives no longer than the access it was opened with (issue 10, item 9):
signing out, a password reset, a deactivation or a resident leaving custody closes every
socket resting on it at once, with a message saying why; a refused change closes nothing."""

from __future__ import annotations

import time

import pytest
from starlette.websockets import WebSocketDisconnect, WebSocketState

from openvisit.people import accounts
from openvisit.signaling.hub import hub_for
from tests.factories import PASSWORD, sign_in_staff, sign_in_visitor
from tests.people.helpers import STRONG, link_token, mails_to

from .conftest import give_kiosk_session, receive_until, socket

SIGNED_OUT = 4401
CLOSE_WITHIN = 5.0


def closed_because_signed_out(app, ws, visit_id: int) -> None:  # type: ignore[no-untyped-def]
    """Within a few seconds the server closes the socket, having said why (never
    silently). Polled, so that a socket left open fails the test instead of hanging it."""
    hub = hub_for(app)
    deadline = time.monotonic() + CLOSE_WITHIN
    while any(
        c.websocket.application_state == WebSocketState.CONNECTED for c in hub.connections(visit_id)
    ):
        assert time.monotonic() < deadline, f"the socket was still open after {CLOSE_WITHIN} s"
        time.sleep(0.02)
    message = receive_until(ws, "error")
    assert message["code"] == "sign_in_expired"
    assert "signed out" in message["message"]
    with pytest.raises(WebSocketDisconnect) as closed:
        receive_until(ws, "never")
    assert closed.value.code == SIGNED_OUT


def still_open(ws) -> None:  # type: ignore[no-untyped-def]
    ws.send_json({"type": "hello"})
    assert receive_until(ws, "state")["state"] == "open"


def test_signing_out_closes_the_visitors_open_socket(app, client, personas, visit):
    sign_in_visitor(client, personas.visitor)
    with socket(client, visit.id) as ws:
        ws.receive_json()
        assert client.delete("/api/v1/visitor-session").status_code == 204
        closed_because_signed_out(app, ws, visit.id)


def test_signing_out_in_one_browser_leaves_the_other_browsers_socket_open(
    client, other_client, personas, visit
):
    sign_in_visitor(client, personas.visitor)
    sign_in_visitor(other_client, personas.visitor)
    with socket(client, visit.id) as ws:
        ws.receive_json()
        assert other_client.delete("/api/v1/visitor-session").status_code == 204
        still_open(ws)


def test_a_password_reset_closes_the_visitors_sockets(
    app, client, other_client, personas, visit, db, clock, settings
):
    sign_in_visitor(client, personas.visitor)
    with socket(client, visit.id) as ws:
        ws.receive_json()
        accounts.request_password_reset(db, clock, settings, email=personas.visitor.email)
        personas.commit()
        token = link_token(mails_to(db, personas.visitor.email)[-1], "/reset-password")
        done = other_client.post(
            "/api/v1/password-reset/complete", json={"token": token, "password": STRONG + "!"}
        )
        assert done.status_code == 204, done.text
        closed_because_signed_out(app, ws, visit.id)


def test_an_officer_signing_out_closes_their_monitoring_socket(
    app, third_client, personas, visit, clock
):
    sign_in_staff(third_client, personas.officer, clock)
    with socket(third_client, visit.id) as ws:
        ws.receive_json()
        assert third_client.delete("/api/v1/staff-session").status_code == 204
        closed_because_signed_out(app, ws, visit.id)


def test_releasing_a_resident_closes_their_kiosk_socket(
    app, client, other_client, personas, visit, clock
):
    give_kiosk_session(client, personas)
    sign_in_staff(other_client, personas.scheduler, clock)
    with socket(client, visit.id) as ws:
        ws.receive_json()
        r = other_client.post(
            f"/api/v1/facilities/{personas.facility.id}/residents/{personas.resident.id}/custody",
            json={"status": "released", "reason": "Released on bail"},
        )
        assert r.status_code == 200, r.text
        closed_because_signed_out(app, ws, visit.id)


def test_a_refused_custody_change_leaves_the_kiosk_socket_open(
    client, other_client, personas, visit, clock
):
    give_kiosk_session(client, personas)
    sign_in_staff(other_client, personas.scheduler, clock)
    with socket(client, visit.id) as ws:
        ws.receive_json()
        r = other_client.post(
            f"/api/v1/facilities/{personas.facility.id}/residents/{personas.resident.id}/custody",
            json={"status": "in_custody", "reason": "no change"},
        )
        assert r.status_code == 409
        still_open(ws)


def test_the_resident_signing_out_at_the_kiosk_closes_the_kiosks_socket(
    app, client, personas, visit
):
    give_kiosk_session(client, personas)
    with socket(client, visit.id) as ws:
        ws.receive_json()
        page = client.get("/kiosk")
        token = client.cookies.get("ov_csrf")
        assert page.status_code == 200
        r = client.post("/kiosk/sign-out", data={"csrf_token": token}, follow_redirects=False)
        assert r.status_code == 303, r.text
        closed_because_signed_out(app, ws, visit.id)


def test_deactivating_an_officer_closes_their_monitoring_socket_at_once(
    app, client, third_client, personas, visit, clock
):
    sign_in_staff(third_client, personas.officer, clock)
    sign_in_staff(client, personas.admin, clock)
    with socket(third_client, visit.id) as ws:
        ws.receive_json()
        staff = f"/api/v1/facilities/{personas.facility.id}/staff/{personas.officer.member.id}"
        assert client.post(staff + "/deactivate").status_code == 200
        closed_because_signed_out(app, ws, visit.id)


def test_a_staff_password_change_closes_the_sockets_of_their_other_sessions(
    app, client, third_client, personas, visit, clock
):
    sign_in_staff(third_client, personas.officer, clock)
    clock.advance(seconds=30)  # a code works once: the next sign-in uses the next one
    sign_in_staff(client, personas.officer, clock)
    with socket(third_client, visit.id) as ws:
        ws.receive_json()
        changed = client.post(
            "/api/v1/staff/me/password",
            json={"current_password": PASSWORD, "new_password": STRONG},
        )
        assert changed.status_code == 204
        closed_because_signed_out(app, ws, visit.id)
