"""What the signaling socket does to the database, one short transaction each.

The route calls these in a worker thread with a fresh session, commits, and
only then pushes messages (hub). Nothing here waits on a socket. The route
says who is calling (``Caller``, from the socket's cookies); ``connect``
decides what they may do on the visit.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from openvisit.audit import service as audit
from openvisit.audit.service import AuditActor
from openvisit.auth.permissions import Permission
from openvisit.clock import Clock
from openvisit.config import Settings
from openvisit.errors import Code, Conflict, Forbidden, NotAuthenticated, NotFound
from openvisit.facilities.service import access_facility
from openvisit.media.backend import PARTIES, PartyMinute, Recording
from openvisit.media.recorder import Interrupted
from openvisit.people.context import KioskContext, StaffContext, VisitorContext
from openvisit.visits import service as visits
from openvisit.visits import states
from openvisit.visits.models import (
    Visit,
    VisitEvent,
    VisitMediaMinute,
    VisitRecording,
    VisitState,
    VisitType,
)
from openvisit.visits.states import JOINABLE_STATES, TERMINAL_STATES, Cause

S = VisitState
_DEFAULT_PORTS = {"http": 80, "https": 443}


class MonitorRefused(Forbidden):
    """Nobody monitors a privileged visit; the refusal is audited (and kept)."""

    code = Code.PRIVILEGED_VISIT
    keep_changes = True
    message = "This is a privileged visit: it is not recorded or monitored."


class VisitNotOpen(Conflict):
    code = Code.VISIT_NOT_OPEN


@dataclass(frozen=True)
class Caller:
    """Who opened the socket, from its cookies: any of them may be missing."""

    visitor: VisitorContext | None = None
    kiosk: KioskContext | None = None
    staff: StaffContext | None = None


@dataclass(frozen=True)
class Participant:
    visit_id: int
    party: str  # visitor | resident | monitor
    actor: AuditActor


@dataclass(frozen=True)
class Snapshot:
    """The visit as a client sees it, read inside the transaction."""

    state: VisitState
    seconds_left: int
    ended_reason: str | None = None  # set once the visit has ended
    # recorded server-side: every visit but a privileged one
    record: bool = False
    # minute 0 of the media server's quality measurements
    starts_at: dt.datetime | None = None

    @property
    def ended(self) -> bool:
        return self.ended_reason is not None


def snapshot_of(visit: Visit, now: dt.datetime) -> Snapshot:
    left = max(0, int((visit.ends_at - now).total_seconds()))
    if visit.state in TERMINAL_STATES:
        reason = visit.ended_reason or f"The visit is {visit.state.value}."
        return Snapshot(visit.state, 0, reason, starts_at=visit.starts_at)
    return Snapshot(visit.state, left, record=_records(visit), starts_at=visit.starts_at)


def _records(visit: Visit) -> bool:
    return visit.recorded and visit.visit_type != VisitType.PRIVILEGED


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
    session: Session, clock: Clock, visit_id: int, caller: Caller
) -> tuple[Participant, Snapshot]:
    """What ``caller`` is on ``visit_id``; records "joined" for a party.

    The visit's visitor, its resident signed in at its kiosk, or staff of its
    facility with MONITOR_VISITS as a silent monitor, except on a privileged
    visit (refused, and the refusal audited). Anyone else: not found.
    """
    now = clock.now()
    visitor, kiosk, staff = caller.visitor, caller.kiosk, caller.staff
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
            access_facility(session, staff, visit.facility_id, Permission.MONITOR_VISITS)
        except NotFound:
            raise _not_found() from None
        if visit.visit_type == VisitType.PRIVILEGED:
            visits.audit_visit(
                session, visit, "visit:monitor_refused", staff.actor, now, reason="privileged"
            )
            raise MonitorRefused()
        participant = Participant(visit.id, "monitor", staff.actor)
    if participant is None:
        raise _not_found()
    snap = snapshot_of(visit, now)
    if snap.ended:
        return participant, snap
    if visit.state not in JOINABLE_STATES:
        opens = visit.opens_at or visit.starts_at
        raise VisitNotOpen(
            f"This visit is not open yet. You can join from {opens.isoformat()}.",
            opens_at=opens.isoformat(),
        )
    if participant.party == "monitor":
        visits.audit_visit(session, visit, "visit:monitor_joined", participant.actor, now)
    else:
        visits.record_event(session, visit, kind="joined", party=participant.party, at=now)
    return participant, snap


def _not_found() -> NotFound:
    return NotFound("We couldn't find that visit.", code=Code.VISIT_NOT_FOUND)


# --- what the parties report ---------------------------------------------------------


def _visit(session: Session, visit_id: int) -> Visit:
    """The visit of a socket already connected (authorized at connect)."""
    visit = session.get(Visit, visit_id)
    if visit is None:
        raise _not_found()
    return visit


def current(session: Session, clock: Clock, visit_id: int) -> Snapshot:
    return snapshot_of(_visit(session, visit_id), clock.now())


def media_changed(
    session: Session, clock: Clock, visit_id: int, party: str, up: bool, at: dt.datetime
) -> Snapshot:
    """The media server saw the party's media start (``up``) or stop at ``at``;
    both up moves an open visit to live (visits.service.record_event)."""
    visit = _visit(session, visit_id)
    if visit.state in TERMINAL_STATES:
        return snapshot_of(visit, clock.now())
    kind = "media_up" if up else "media_down"
    visits.record_event(session, visit, kind=kind, party=party, at=min(at, clock.now()))
    session.refresh(visit)
    return snapshot_of(visit, clock.now())


_MEASURES = (
    "video_frames",
    "frozen_ms",
    "packets_expected",
    "packets_lost",
    "viewer_packets_expected",
    "viewer_packets_lost",
    "viewer_jitter_ms",
)


def record_quality(
    session: Session, clock: Clock, visit_id: int, minutes: tuple[PartyMinute, ...]
) -> None:
    """Store what the media server measured of the parties, minute by minute (the only
    source of fair-quality credits), whatever the visit's state: a report repeats a
    minute's values so far, so each stored value keeps the larger of the two (a restarted
    server's partial minute never shrinks what was stored)."""
    visit = _visit(session, visit_id)
    now = clock.now()
    wanted = [m for m in minutes if m.party in PARTIES and m.minute >= 0]
    if not wanted:
        return
    stored = {
        (row.party, row.minute): row
        for row in session.scalars(
            select(VisitMediaMinute).where(
                VisitMediaMinute.visit_id == visit.id,
                VisitMediaMinute.minute.in_({m.minute for m in wanted}),
            )
        )
    }
    for m in wanted:
        row = stored.get((m.party, m.minute))
        if row is None:
            row = VisitMediaMinute(visit_id=visit.id, party=m.party, minute=m.minute)
            row.measured_at = now
            for name in _MEASURES:
                setattr(row, name, getattr(m, name))
            session.add(row)
            stored[(m.party, m.minute)] = row
            continue
        row.measured_at = now
        for name in _MEASURES:
            setattr(row, name, max(getattr(row, name), getattr(m, name)))
    session.flush()


def store_recordings(
    session: Session,
    clock: Clock,
    visit_id: int,
    recordings: list[tuple[Recording, str, int, str]],
) -> None:
    """Store the finished recordings of a visit: (recording, sha256, size, relative path)."""
    visit = _visit(session, visit_id)
    now = clock.now()
    for recording, digest, size, path in recordings:
        session.add(
            VisitRecording(
                visit_id=visit.id,
                facility_id=visit.facility_id,
                party=recording.party,
                path=path,
                sha256=digest,
                size_bytes=size,
                duration_ms=recording.duration_ms,
                video_codec="vp8",
                audio_codec="opus",
                started_at=recording.started_at,
                ended_at=recording.started_at + dt.timedelta(milliseconds=recording.duration_ms),
                created_at=now,
            )
        )
    session.flush()


def recording_paths(session: Session, clock: Clock) -> set[str]:
    """Every stored recording's path, relative to the recordings directory."""
    return set(session.scalars(select(VisitRecording.path)))


def store_recovered(
    session: Session, clock: Clock, found: Interrupted, digest: str, size: int, path: str
) -> bool:
    """Store a recording finished after an interruption (a crash), marked as such and
    audited; False if its visit is unknown (the file stays, unlisted)."""
    visit = session.get(Visit, found.visit_id)
    if visit is None or found.party not in PARTIES:
        return False
    now = clock.now()
    row = VisitRecording(
        visit_id=visit.id,
        facility_id=visit.facility_id,
        party=found.party,
        path=path,
        sha256=digest,
        size_bytes=size,
        duration_ms=found.duration_ms,
        video_codec="vp8",
        audio_codec="opus",
        started_at=found.started_at,
        ended_at=found.started_at + dt.timedelta(milliseconds=found.duration_ms),
        created_at=now,
        recovered=True,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        tag="recording.recovered",
        actor=audit.SYSTEM,
        at=now,
        facility_id=visit.facility_id,
        subject=("visit", visit.id),
        data={"recording_id": row.id, "party": found.party, "duration_ms": found.duration_ms},
    )
    return True


def last_warning_id(session: Session, clock: Clock) -> int:
    return session.scalar(select(func.max(VisitEvent.id)).where(VisitEvent.kind == "warning")) or 0


def warning_text(data: dict[str, Any]) -> str:
    """What a warning event says on the parties' screens."""
    if data.get("text"):
        return str(data["text"])
    minutes = data.get("minutes_left")
    return "1 minute left." if minutes == 1 else f"{minutes} minutes left."


def watch_visits(
    session: Session, clock: Clock, visit_ids: list[int], after_warning: int
) -> tuple[dict[int, Snapshot], list[tuple[int, str]], int]:
    """For the live-visit watcher: act on passed deadlines of these visits (sooner
    than the worker's tick), then their snapshots and warnings newer than
    ``after_warning``."""
    now = clock.now()
    due = session.scalar(
        select(func.count())
        .select_from(Visit)
        .where(Visit.id.in_(visit_ids), Visit.next_deadline_at <= now)
    )
    if due:
        visits.advance_visits(session, clock)
    found = session.scalars(
        select(Visit).where(Visit.id.in_(visit_ids)).execution_options(populate_existing=True)
    ).all()
    snaps = {visit.id: snapshot_of(visit, now) for visit in found}
    rows = session.execute(
        select(VisitEvent.id, VisitEvent.visit_id, VisitEvent.data)
        .where(
            VisitEvent.kind == "warning",
            VisitEvent.id > after_warning,
            VisitEvent.visit_id.in_(visit_ids),
        )
        .order_by(VisitEvent.id)
    ).all()
    warnings = [(row.visit_id, warning_text(row.data or {})) for row in rows]
    last = max((row.id for row in rows), default=after_warning)
    return snaps, warnings, last


def record_stats(
    session: Session, clock: Clock, participant: Participant, data: dict[str, Any]
) -> Snapshot:
    """A client's own report of what it receives: kept for diagnostics and support,
    never for money (credits come from the media server's measurements)."""
    now = clock.now()
    visit = _visit(session, participant.visit_id)
    if visit.state not in TERMINAL_STATES:
        visits.record_event(
            session, visit, kind="stats", party=participant.party, at=now, data=data
        )
    return snapshot_of(visit, now)


def record_left(session: Session, clock: Clock, participant: Participant, how: str) -> Snapshot:
    """The party hung up (``how`` = "leave") or its socket closed ("disconnect")."""
    now = clock.now()
    visit = _visit(session, participant.visit_id)
    if visit.state not in TERMINAL_STATES:
        visits.record_event(
            session, visit, kind="left", party=participant.party, at=now, data={"how": how}
        )
        session.refresh(visit)
        if how == "leave" and visit.state == S.LIVE:
            # Hanging up ends a live visit: it is complete, not a lost connection.
            states.transition(
                session,
                visit,
                S.COMPLETED,
                actor=participant.actor,
                at=now,
                cause=Cause(participant.party),
                reason=f"The {participant.party} ended the visit.",
            )
    return snapshot_of(visit, now)
