"""What the signaling socket does to the database, one short transaction each.

The route calls these in a worker thread with a fresh session, commits, and
only then pushes messages (hub). Nothing here waits on a socket.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit

from fastapi import Request
from sqlalchemy.orm import Session
from starlette.requests import HTTPConnection

from openvisit.audit import service as audit_service
from openvisit.audit.service import AuditActor
from openvisit.auth.permissions import Permission
from openvisit.clock import Clock
from openvisit.config import Settings
from openvisit.deps import optional_kiosk, optional_staff, optional_visitor
from openvisit.errors import Conflict, DomainError, Forbidden, NotAuthenticated, NotFound
from openvisit.facilities.service import access_facility
from openvisit.visits import service as visits
from openvisit.visits.models import Visit, VisitState, VisitType
from openvisit.visits.states import TERMINAL

S = VisitState
_JOINABLE = (S.OPEN, S.LIVE)
_DEFAULT_PORTS = {"http": 80, "https": 443}


class MonitorRefused(Forbidden):
    """Nobody monitors a privileged visit; the refusal is audited (and kept)."""

    code = "privileged_visit"
    keep_changes = True
    message = "This is a privileged visit: it is not recorded or monitored."


class VisitNotOpen(Conflict):
    code = "visit_not_open"


@dataclass(frozen=True)
class Participant:
    visit_id: int
    party: str  # visitor | resident | monitor
    actor: AuditActor


@dataclass(frozen=True)
class Snapshot:
    """The visit as a client sees it, read inside the transaction."""

    state: str
    seconds_left: int
    ended_reason: str | None = None  # set once the visit has ended

    @property
    def ended(self) -> bool:
        return self.ended_reason is not None


def snapshot_of(visit: Visit, now: dt.datetime) -> Snapshot:
    left = max(0, int((visit.ends_at - now).total_seconds()))
    if visit.state in TERMINAL:
        reason = visit.ended_reason or f"The visit is {visit.state.value}."
        return Snapshot(visit.state.value, 0, reason)
    return Snapshot(visit.state.value, left)


# --- who may connect -----------------------------------------------------------------


def _origin(url: str) -> str | None:
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    port = port or _DEFAULT_PORTS[parts.scheme]
    return f"{parts.scheme}://{parts.hostname.lower()}:{port}"


def allowed_origins(settings: Settings) -> frozenset[str]:
    """settings.base_url's origin, plus http://127.0.0.1 and localhost on its port
    in development and test."""
    base = _origin(settings.base_url)
    allowed = {base} if base else set()
    if base and settings.env in ("development", "test"):
        port = base.rsplit(":", 1)[1]
        allowed |= {f"http://127.0.0.1:{port}", f"http://localhost:{port}"}
    return frozenset(allowed)


def origin_allowed(settings: Settings, origin: str | None) -> bool:
    """A browser always sends Origin on a WebSocket: a missing one is refused too."""
    if not origin or len(origin) > 300:
        return False
    normal = _origin(origin)
    return normal is not None and normal in allowed_origins(settings)


def connect(
    session: Session, clock: Clock, connection: HTTPConnection, visit_id: int
) -> tuple[Participant, Snapshot]:
    """Who this socket is for ``visit_id``, from its cookies; records "joined" for a party.

    The visit's visitor (ov_session), its resident signed in at its kiosk
    (ov_kiosk), or staff of its facility with VIEW_FACILITY as a silent
    monitor, except on a privileged visit. Anyone else: not found.
    """
    now = clock.now()
    request = cast(Request, connection)  # the deps read only cookies and the client address
    visitor = optional_visitor(request, session, clock)
    kiosk = optional_kiosk(request, session, clock)
    staff = optional_staff(request, session, clock) if visitor is None else None
    if visitor is None and staff is None and (kiosk is None or kiosk.resident_id is None):
        raise NotAuthenticated("Please sign in to join this visit.")
    visit = session.get(Visit, visit_id)
    if visit is None:
        raise _not_found()
    participant: Participant | None = None
    if visitor is not None and visit.visitor_id == visitor.visitor.id:
        participant = Participant(visit.id, "visitor", visitor.actor)
    elif (
        kiosk is not None
        and kiosk.resident_id == visit.resident_id
        and kiosk.facility_id == visit.facility_id
        and kiosk.kiosk_id == visit.resident_kiosk_id
    ):
        participant = Participant(visit.id, "resident", kiosk.actor)
    elif staff is not None:
        try:
            access_facility(session, staff, visit.facility_id, Permission.VIEW_FACILITY)
        except NotFound:
            raise _not_found() from None
        if visit.visit_type == VisitType.PRIVILEGED:
            audit_service.record(
                session,
                tag="visit:monitor_refused",
                actor=staff.actor,
                at=now,
                facility_id=visit.facility_id,
                subject=("visit", visit.id),
                data={"reason": "privileged"},
            )
            raise MonitorRefused()
        participant = Participant(visit.id, "monitor", staff.actor)
    if participant is None:
        raise _not_found()
    snap = snapshot_of(visit, now)
    if snap.ended:
        return participant, snap
    if visit.state not in _JOINABLE:
        opens = visit.opens_at or visit.starts_at
        raise VisitNotOpen(
            f"This visit is not open yet. You can join from {opens.isoformat()}.",
            opens_at=opens.isoformat(),
        )
    if participant.party == "monitor":
        audit_service.record(
            session,
            tag="visit:monitor_joined",
            actor=participant.actor,
            at=now,
            facility_id=visit.facility_id,
            subject=("visit", visit.id),
        )
    else:
        visits.record_event(session, visit, kind="joined", party=participant.party, at=now)
    return participant, snap


def _not_found() -> NotFound:
    return NotFound("We couldn't find that visit.", code="visit_not_found")


# --- what the parties report ---------------------------------------------------------


def _live_visit(session: Session, visit_id: int) -> Visit:
    visit = session.get(Visit, visit_id)
    if visit is None:
        raise _not_found()
    return visit


def current(session: Session, clock: Clock, visit_id: int) -> Snapshot:
    return snapshot_of(_live_visit(session, visit_id), clock.now())


def record_media(session: Session, clock: Clock, participant: Participant, state: str) -> Snapshot:
    """The party's media went up or down; both up moves an open visit to live."""
    now = clock.now()
    visit = _live_visit(session, participant.visit_id)
    if visit.state in TERMINAL:
        return snapshot_of(visit, now)
    kind = "media_up" if state == "up" else "media_down"
    visits.record_event(session, visit, kind=kind, party=participant.party, at=now)
    session.refresh(visit)
    return snapshot_of(visit, now)


def record_stats(
    session: Session, clock: Clock, participant: Participant, data: dict[str, Any]
) -> Snapshot:
    now = clock.now()
    visit = _live_visit(session, participant.visit_id)
    if visit.state not in TERMINAL:
        visits.record_event(
            session, visit, kind="stats", party=participant.party, at=now, data=data
        )
    return snapshot_of(visit, now)


def record_left(session: Session, clock: Clock, participant: Participant, how: str) -> Snapshot:
    """The party hung up (``how`` = "leave") or its socket closed ("disconnect")."""
    now = clock.now()
    visit = _live_visit(session, participant.visit_id)
    if visit.state not in TERMINAL:
        visits.record_event(
            session, visit, kind="left", party=participant.party, at=now, data={"how": how}
        )
        session.refresh(visit)
    return snapshot_of(visit, now)


def close_code(exc: DomainError) -> int:
    """The WebSocket close code for a refusal at connect."""
    if isinstance(exc, NotFound):
        return 4404
    if isinstance(exc, Conflict):
        return 4409
    return 4403
