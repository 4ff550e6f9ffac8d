"""Two parties on one visit: media from both sides makes it live, each side hears
about the other, and leaving is recorded (DESIGN §4 and §5)."""

from __future__ import annotations

import pytest
from starlette.websockets import WebSocketDisconnect

from openvisit.visits.models import VisitState
from tests import aio
from tests.factories import sign_in_staff, sign_in_visitor

from .conftest import events, give_kiosk_session, receive_until, socket, state_of


def test_media_up_from_both_sides_makes_the_visit_live_and_both_are_told(
    app, client, other_client, third_client, personas, visit, db, clock
):
    sign_in_visitor(client, personas.visitor)
    give_kiosk_session(other_client, personas)
    sign_in_staff(third_client, personas.officer, clock)
    # One socket opens at a time: the test's sockets share one database connection.
    with socket(client, visit.id) as visitor:
        visitor.receive_json()
        with socket(other_client, visit.id) as kiosk:
            assert kiosk.receive_json()["state"] == "open"
            assert kiosk.receive_json() == {"type": "peer", "party": "visitor", "status": "joined"}
            assert visitor.receive_json() == {
                "type": "peer",
                "party": "resident",
                "status": "joined",
            }
            with socket(third_client, visit.id) as monitor:
                receive_until(monitor, "state")
                media(app, visit, "visitor", True, clock)
                assert visitor.receive_json()["state"] == "open"
                assert receive_until(kiosk, "state")["state"] == "open"
                assert receive_until(monitor, "state")["state"] == "open"
                assert state_of(db, visit) == VisitState.OPEN
                clock.advance(seconds=3)
                media(app, visit, "resident", True, clock)
                assert receive_until(kiosk, "state") == {
                    "type": "state",
                    "state": "live",
                    "seconds_left": 1797,
                }
                assert receive_until(visitor, "state")["state"] == "live"
                assert receive_until(monitor, "state")["state"] == "live"
                assert state_of(db, visit) == VisitState.LIVE
    assert events(db, visit, "media_up") == [("media_up", "visitor"), ("media_up", "resident")]


def test_a_leave_is_recorded_and_the_other_side_is_told(client, other_client, personas, visit, db):
    sign_in_visitor(client, personas.visitor)
    give_kiosk_session(other_client, personas)
    with socket(client, visit.id) as visitor:
        visitor.receive_json()
        with socket(other_client, visit.id) as kiosk:
            receive_until(kiosk, "peer")
            receive_until(visitor, "peer")
            kiosk.send_json({"type": "leave"})
            with pytest.raises(WebSocketDisconnect) as closed:
                kiosk.receive_json()
            assert closed.value.code == 1000
            assert visitor.receive_json() == {
                "type": "peer",
                "party": "resident",
                "status": "left",
            }
            assert visitor.receive_json()["type"] == "state"
    left = events(db, visit, "left")
    assert left == [("left", "resident"), ("left", "visitor")]


def test_a_dropped_party_of_a_live_visit_is_shown_as_reconnecting(
    app, client, other_client, personas, visit, db, clock
):
    sign_in_visitor(client, personas.visitor)
    give_kiosk_session(other_client, personas)
    with socket(client, visit.id) as visitor:
        visitor.receive_json()
        media(app, visit, "visitor", True, clock)
        receive_until(visitor, "state")
        with socket(other_client, visit.id) as kiosk:
            receive_until(visitor, "peer")
            kiosk.receive_json()
            media(app, visit, "resident", True, clock)
            assert receive_until(kiosk, "state")["state"] == "live"
            assert receive_until(visitor, "state")["state"] == "live"
            # The kiosk's media is flowing again: the visitor sees them (back) in.
            assert receive_until(visitor, "peer")["status"] == "joined"
        # The kiosk's socket closed without a "leave" (a lost connection).
        assert receive_until(visitor, "peer") == {
            "type": "peer",
            "party": "resident",
            "status": "reconnecting",
        }
        assert receive_until(visitor, "state")["state"] == "live"
    db.expire_all()
    assert db.get(type(visit), visit.id).reconnect_deadline_at is not None


def test_a_second_window_of_the_same_party_replaces_the_first(
    client, other_client, personas, visit, db
):
    sign_in_visitor(client, personas.visitor)
    sign_in_visitor(other_client, personas.visitor)
    with socket(client, visit.id) as first:
        first.receive_json()
        with socket(other_client, visit.id) as second:
            assert second.receive_json()["type"] == "state"
            assert first.receive_json()["code"] == "replaced"
            with pytest.raises(WebSocketDisconnect) as closed:
                first.receive_json()
            assert closed.value.code == 4409
            second.send_json({"type": "hello"})
            assert second.receive_json()["type"] == "state"
    # The replaced window's closing is not a "left": only the second one's is.
    assert events(db, visit) == [("joined", "visitor"), ("joined", "visitor"), ("left", "visitor")]


def test_stats_are_stored_at_most_every_two_seconds_per_socket(client, personas, visit, db, clock):
    sign_in_visitor(client, personas.visitor)
    stats = {"type": "stats", "frames_decoded": 1, "packets_received": 2, "packets_lost": 0}
    with socket(client, visit.id) as ws:
        ws.receive_json()
        for _ in range(5):
            ws.send_json(stats)
        clock.advance(seconds=2)
        ws.send_json(stats)
        ws.send_json({"type": "hello"})
        ws.receive_json()
    assert events(db, visit, "stats") == [("stats", "visitor"), ("stats", "visitor")]


def test_media_going_down_while_live_starts_the_reconnect_grace_and_tells_the_other_side(
    app, client, other_client, personas, visit, db, clock
):
    sign_in_visitor(client, personas.visitor)
    give_kiosk_session(other_client, personas)
    with socket(client, visit.id) as visitor:
        visitor.receive_json()
        with socket(other_client, visit.id) as kiosk:
            receive_until(kiosk, "state")
            media(app, visit, "visitor", True, clock)
            media(app, visit, "resident", True, clock)
            assert receive_until(visitor, "state")["state"] == "open"
            assert receive_until(visitor, "state")["state"] == "live"
            clock.advance(seconds=4)
            media(app, visit, "resident", False, clock)
            while (told := receive_until(visitor, "peer"))["status"] == "joined":
                pass
            assert told == {"type": "peer", "party": "resident", "status": "reconnecting"}
            db.expire_all()
            assert db.get(type(visit), visit.id).reconnect_deadline_at is not None
            clock.advance(seconds=3)
            media(app, visit, "resident", True, clock)
            assert receive_until(visitor, "peer")["status"] == "joined"
            db.expire_all()
            assert db.get(type(visit), visit.id).reconnect_deadline_at is None
    assert events(db, visit, "media_down")[:1] == [("media_down", "resident")]


def media(app, visit, party: str, up: bool, clock) -> None:  # type: ignore[no-untyped-def]
    """What the media backend reports when a party's frames start or stop arriving."""
    from openvisit.media.backend import MediaChange
    from openvisit.signaling import live

    aio.run(live.on_media_change(app, MediaChange(visit.id, party, up, clock.now())))
