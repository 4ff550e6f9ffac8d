"""Who may open a visit's signaling socket (DESIGN §5, Signaling)."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from starlette.websockets import WebSocketDisconnect

from openvisit.audit.models import AuditEvent
from openvisit.visits.models import VisitType
from tests.factories import sign_in_staff, sign_in_visitor

from .conftest import events, give_kiosk_session, receive_until, socket


def refused(client, visit_id, headers=None) -> tuple[dict, int]:
    with socket(client, visit_id, headers) as ws:
        message = ws.receive_json()
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    return message, closed.value.code


def test_the_visitor_joins_and_sees_the_visit_open_with_its_time_left(client, visit, db):
    sign_in_visitor(client, visit_visitor(db, visit))
    with socket(client, visit.id) as ws:
        assert ws.receive_json() == {"type": "state", "state": "open", "seconds_left": 1800}
    assert events(db, visit) == [("joined", "visitor"), ("left", "visitor")]


def visit_visitor(db, visit):
    from openvisit.people.models import Visitor

    return db.get(Visitor, visit.visitor_id)
