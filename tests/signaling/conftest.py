from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from openvisit.audit.service import SYSTEM, AuditActor
from openvisit.auth import service as auth
from openvisit.auth.cookies import KIOSK_COOKIE
from openvisit.scheduling import service as scheduling
from openvisit.visits import states
from openvisit.visits.models import Visit, VisitEvent, VisitState, VisitType
from tests.times import FRIDAY_9AM

from ..scheduling.conftest import approve

# FRIDAY_9AM is the visit's start. The clock starts on Thursday at noon.
ORIGIN = {"origin": "http://127.0.0.1:8000"}


@pytest.fixture
def visit(personas, db, clock) -> Visit:
    """A 30-minute remote visit of Maria with James, whose join window is open:
    the clock stands at its start."""
    personas.kiosk  # noqa: B018 - build it
    approve(db, personas.visitor, personas.resident)
    booked = scheduling.book(
        db,
        clock,
        AuditActor("visitor", personas.visitor.id, "Maria"),
        resident_id=personas.resident.id,
        visitor_id=personas.visitor.id,
        visit_type=VisitType.REMOTE,
        start=FRIDAY_9AM,
        length_minutes=30,
    )
    db.flush()
    clock.set(FRIDAY_9AM)
    states.transition(db, booked, VisitState.OPEN, actor=SYSTEM, at=clock.now(), cause="test")
    personas.commit()
    return booked


@pytest.fixture
def third_client(app) -> Iterator[TestClient]:
    """A third browser: the officer watching."""
    with TestClient(app, base_url="https://testserver") as c:
        yield c


def give_kiosk_session(client, personas, resident=None, kiosk=None) -> None:
    """This browser becomes the kiosk, with ``resident`` (James by default) signed in."""
    kiosk = kiosk or personas.kiosk
    kiosk.credential_hash = auth.token_digest(f"x-{kiosk.id}")
    new = auth.start_session(
        personas.db,
        actor_type="kiosk",
        actor_id=kiosk.id,
        now=personas.clock.now(),
        lifetime=dt.timedelta(days=365),
    )
    new.row.resident_id = (resident or personas.resident).id
    personas.commit()
    client.cookies.set(KIOSK_COOKIE, new.token)


@contextmanager
def socket(client, visit_id: int, headers: dict[str, str] | None = None):
    with client.websocket_connect(
        f"wss://testserver/ws/visits/{visit_id}", headers=ORIGIN if headers is None else headers
    ) as ws:
        yield ws


def receive_until(ws, kind: str, limit: int = 10) -> dict:
    """The next message of type ``kind``, skipping others (a bounded number)."""
    for _ in range(limit):
        message = ws.receive_json()
        if message["type"] == kind:
            return message
    raise AssertionError(f"no {kind!r} message in {limit}")


def events(db, visit: Visit, kind: str | None = None) -> list[tuple[str, str]]:
    db.expire_all()
    query = select(VisitEvent).where(VisitEvent.visit_id == visit.id).order_by(VisitEvent.id)
    if kind:
        query = query.where(VisitEvent.kind == kind)
    return [(e.kind, e.party) for e in db.scalars(query)]


def state_of(db, visit: Visit) -> VisitState:
    db.expire_all()
    return db.get(Visit, visit.id).state
