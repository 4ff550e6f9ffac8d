"""Who may see a visit, what happens during it, and the worker job that acts on
its deadlines (DESIGN §4).

``access_visit`` fetches and authorizes in one place. ``view_visit`` and
``visit_story`` are what the visit pages show; ``live_visits``,
``send_warning``, ``terminate_visit`` and ``monitors_of`` are the officers' side
(the monitoring wall): their changes are audited in the same transaction, and
the live-visit watcher (signaling.live) pushes them to the visit's screens
once committed.

``record_event`` stores what the media plane and the clients report; when
both parties' media is up an open visit goes live, and when a party of a live
visit drops the reconnect grace starts (and stops when they are back).

``advance_visits`` is the worker job: it moves visits whose stored deadline
has passed, with compare-and-set updates, so two nodes or a restarted one
never act twice and never forget.

Reading of DESIGN's "failed" (media never established / backend failure): a
party of a live visit whose media stays down past the reconnect grace is a
failure of the visit, not a completion (nor a staff termination), so the
visit goes live -> failed with the reason. An open visit nobody (or only one
party) joined by its end is "missed"; the open -> failed edge is left to the
media plane, which knows when media could not be established.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from openvisit.audit import service as audit_service
from openvisit.audit.models import AuditEvent
from openvisit.audit.service import SYSTEM, AuditActor
from openvisit.clock import Clock
from openvisit.config import Settings
from openvisit.errors import Code, Conflict, InvalidInput, NotFound
from openvisit.facilities.models import Facility, FacilitySettings, Kiosk
from openvisit.people.context import KioskContext, VisitorContext
from openvisit.people.models import StaffMember, Visitor
from openvisit.residents.models import Resident
from openvisit.visits import metering, states
from openvisit.visits.deadlines import Action, due, next_deadline
from openvisit.visits.models import (
    Visit,
    VisitEvent,
    VisitRecording,
    VisitState,
    VisitTransition,
    VisitType,
)
from openvisit.visits.schemas import LiveVisitOut, MonitorOut
from openvisit.visits.states import Cause

S = VisitState

# Who may look at a visit: its visitor, its resident at a kiosk, or staff of its
# facility (the facility already authorized by the route's FacilityFor).
VisitViewer = VisitorContext | KioskContext | Facility


class VisitNotLive(Conflict):
    code = Code.VISIT_NOT_LIVE


class EmptyWarning(InvalidInput):
    code = Code.EMPTY_WARNING
    message = "Write the warning to send."


def _not_found(message: str = "We couldn't find that visit.") -> NotFound:
    return NotFound(message, code=Code.VISIT_NOT_FOUND)


def _one(session: Session, query: Select[Visit], for_update: bool) -> Visit:
    if for_update:
        query = query.with_for_update()
    visit = session.scalar(query)
    if visit is None:
        raise _not_found()
    return visit


def access_visit(
    session: Session, viewer: VisitViewer, visit_id: int, *, for_update: bool = False
) -> Visit:
    """The visit, as ``viewer`` may see it; anyone else's visit answers "not found"
    (zulip's ``access_message``). ``for_update`` locks the row for a change."""
    query = select(Visit).where(Visit.id == visit_id)
    match viewer:
        case VisitorContext():
            query = query.where(Visit.visitor_id == viewer.visitor.id)
        case KioskContext():
            if viewer.resident_id is None:
                raise _not_found()
            query = query.where(Visit.resident_id == viewer.resident_id)
        case Facility():
            query = query.where(Visit.facility_id == viewer.id)
    return _one(session, query, for_update)


def access_visit_at(
    session: Session, facility_id: int, visit_id: int, *, for_update: bool = False
) -> Visit:
    """The facility's visit, for services handed a facility id by an authorized caller."""
    query = select(Visit).where(Visit.id == visit_id, Visit.facility_id == facility_id)
    return _one(session, query, for_update)


# --- what the visit pages show --------------------------------------------------------


@dataclass(frozen=True)
class VisitView:
    """A visit with the people in it, as its pages show it."""

    visit: Visit
    facility: Facility
    resident: Resident
    visitor_name: str

    @property
    def privileged(self) -> bool:
        return self.visit.visit_type == VisitType.PRIVILEGED

    @property
    def joinable(self) -> bool:
        return self.visit.state in states.JOINABLE_STATES

    @property
    def resident_name(self) -> str:
        return f"{self.resident.first_name} {self.resident.last_name}"


def view_visit(session: Session, viewer: VisitViewer, visit_id: int) -> VisitView:
    """The visit ``viewer`` may see; a resident sees it only at the kiosk it is booked on."""
    visit = access_visit(session, viewer, visit_id)
    if isinstance(viewer, KioskContext) and visit.resident_kiosk_id != viewer.kiosk_id:
        raise _not_found("This visit is at another kiosk.")
    visitor_name = session.scalars(
        select(Visitor.legal_name).where(Visitor.id == visit.visitor_id)
    ).one()
    return VisitView(
        visit,
        session.get_one(Facility, visit.facility_id),
        session.get_one(Resident, visit.resident_id),
        visitor_name,
    )


@dataclass(frozen=True)
class VisitStory:
    """A visit's record for staff: its transitions, connection events, recordings
    and, for those who may read the audit log, who monitored it (else None)."""

    view: VisitView
    transitions: list[VisitTransition]
    events: list[VisitEvent]
    recordings: list[VisitRecording]
    monitors: list[MonitorOut] | None


def visit_story(
    session: Session, facility: Facility, visit_id: int, *, with_monitors: bool
) -> VisitStory:
    view = view_visit(session, facility, visit_id)
    visit = view.visit
    transitions = session.scalars(
        select(VisitTransition)
        .where(VisitTransition.visit_id == visit.id)
        .order_by(VisitTransition.at, VisitTransition.id)
    ).all()
    events = session.scalars(
        select(VisitEvent)
        .where(VisitEvent.visit_id == visit.id, VisitEvent.kind != "stats")
        .order_by(VisitEvent.at, VisitEvent.id)
    ).all()
    recordings = session.scalars(
        select(VisitRecording)
        .where(VisitRecording.visit_id == visit.id)
        .order_by(VisitRecording.party, VisitRecording.started_at)
    ).all()
    monitors = monitors_of(session, visit) if with_monitors else None
    return VisitStory(view, list(transitions), list(events), list(recordings), monitors)


def monitors_of(session: Session, visit: Visit) -> list[MonitorOut]:
    """Who watched the visit, from the audit log (the parties are never told)."""
    rows = session.execute(
        select(AuditEvent.actor_id, AuditEvent.actor_label, AuditEvent.at, StaffMember.name)
        .outerjoin(StaffMember, StaffMember.id == AuditEvent.actor_id)
        .where(
            AuditEvent.tag == "visit:monitor_joined",
            AuditEvent.subject_type == "visit",
            AuditEvent.subject_id == visit.id,
        )
        .order_by(AuditEvent.id)
    ).all()
    return [MonitorOut(staff_id=r.actor_id, name=r.name or r.actor_label, at=r.at) for r in rows]


# --- the monitoring wall: officers watch, warn and terminate --------------------------


def live_visits(session: Session, facility: Facility) -> list[LiveVisitOut]:
    """The facility's visits whose join window is open or that are live."""
    rows = session.execute(
        select(Visit, Resident, Visitor.legal_name, Kiosk.name)
        .join(Resident, Resident.id == Visit.resident_id)
        .join(Visitor, Visitor.id == Visit.visitor_id)
        .join(Kiosk, Kiosk.id == Visit.resident_kiosk_id)
        .where(Visit.facility_id == facility.id, Visit.state.in_(states.JOINABLE_STATES))
        .order_by(Visit.starts_at, Visit.id)
    ).all()
    return [
        LiveVisitOut(
            id=visit.id,
            state=visit.state.value,
            privileged=visit.visit_type == VisitType.PRIVILEGED,
            starts_at=visit.starts_at,
            ends_at=visit.ends_at,
            resident=f"{resident.first_name} {resident.last_name} ({resident.booking_number})",
            visitor=visitor_name,
            kiosk=kiosk_name,
        )
        for visit, resident, visitor_name, kiosk_name in rows
    ]


def audit_visit(
    session: Session, visit: Visit, tag: str, actor: AuditActor, at: dt.datetime, **data: Any
) -> None:
    """An audit event about ``visit`` (at its facility), in the same transaction."""
    audit_service.record(
        session,
        tag=tag,
        actor=actor,
        at=at,
        facility_id=visit.facility_id,
        subject=("visit", visit.id),
        data=data or None,
    )


def _monitored_visit(session: Session, facility: Facility, visit_id: int) -> Visit:
    """A visit officers may act on: never a privileged one, which "isn't there"."""
    visit = access_visit(session, facility, visit_id)
    if visit.visit_type == VisitType.PRIVILEGED:
        raise _not_found()
    return visit


def send_warning(
    session: Session,
    clock: Clock,
    facility: Facility,
    visit_id: int,
    text: str,
    *,
    actor: AuditActor,
) -> Visit:
    """A warning text for both parties' screens, recorded as a visit event (the
    watcher pushes it) and audited. Whitespace is folded; an empty text is refused."""
    visit = _monitored_visit(session, facility, visit_id)
    text = " ".join(text.split())
    if not text:
        raise EmptyWarning()
    if visit.state not in states.JOINABLE_STATES:
        raise VisitNotLive("This visit is not live, so nobody would see the warning.")
    now = clock.now()
    record_event(
        session, visit, kind="warning", party="monitor", at=now, data={"text": text, "by": "staff"}
    )
    audit_visit(session, visit, "visit:warning_sent", actor, now, text=text)
    return visit


def terminate_visit(
    session: Session,
    clock: Clock,
    facility: Facility,
    visit_id: int,
    reason: str,
    *,
    actor: AuditActor,
) -> Visit:
    """End a live visit now, with the reason both parties are shown; audited."""
    visit = _monitored_visit(session, facility, visit_id)
    reason = " ".join(reason.split())
    if visit.state != S.LIVE:
        raise VisitNotLive("Only a live visit can be ended by staff.", state=visit.state.value)
    now = clock.now()
    states.transition(
        session,
        visit,
        S.TERMINATED,
        actor=actor,
        at=now,
        cause=Cause.STAFF,
        reason=f"Ended by staff: {reason}",
    )
    audit_visit(session, visit, "visit:terminated", actor, now, reason=reason)
    return visit


# --- what happens during a visit ------------------------------------------------------


EVENT_KINDS = frozenset(
    {"joined", "left", "media_up", "media_down", "stats", "warning", "reconnecting", "note"}
)
EVENT_PARTIES = frozenset({"visitor", "resident", "monitor", "system"})
# How many visits one tick of the worker takes on; the rest wait for the next tick.
BATCH = 100
DEFAULT_RECONNECT_GRACE_SECONDS = 90


def record_event(
    session: Session,
    visit: Visit,
    *,
    kind: str,
    party: str,
    at: dt.datetime,
    data: dict[str, Any] | None = None,
) -> VisitEvent:
    """Store one event of ``visit`` and apply what it means for the visit's state."""
    if kind not in EVENT_KINDS:
        raise InvalidInput(f"Unknown visit event {kind[:40]!r}.", code=Code.INVALID_EVENT)
    if party not in EVENT_PARTIES:
        raise InvalidInput(f"Unknown party {party[:40]!r}.", code=Code.INVALID_EVENT)
    event = VisitEvent(visit_id=visit.id, at=at, kind=kind, party=party, data=data or {})
    session.add(event)
    session.flush()
    if kind in metering.UP_KINDS | metering.DOWN_KINDS and party in metering.PARTIES:
        _follow_media(session, visit, at)
    return event


def _follow_media(session: Session, visit: Visit, at: dt.datetime) -> None:
    # Lock the visit so the worker (which locks it too) sees one consistent story.
    locked = session.scalar(
        select(Visit)
        .where(Visit.id == visit.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if locked is None or locked.state not in states.JOINABLE_STATES:
        return
    events = session.scalars(
        select(VisitEvent)
        .where(VisitEvent.visit_id == visit.id)
        .order_by(VisitEvent.at, VisitEvent.id)
    ).all()
    up = metering.media_up(events)
    everyone_up = all(up.values())
    if locked.state == S.OPEN:
        if everyone_up and at < locked.ends_at:
            _move(session, locked, S.LIVE, at, Cause.MEDIA, "Both parties are connected.")
        return
    if everyone_up and locked.reconnect_deadline_at is not None:
        _set_reconnect_deadline(session, locked, None)
    elif not everyone_up and locked.reconnect_deadline_at is None:
        grace = session.scalar(
            select(FacilitySettings.reconnect_grace_seconds).where(
                FacilitySettings.facility_id == locked.facility_id
            )
        )
        seconds = grace if grace is not None else DEFAULT_RECONNECT_GRACE_SECONDS
        _set_reconnect_deadline(session, locked, at + dt.timedelta(seconds=seconds))


def _set_reconnect_deadline(session: Session, visit: Visit, at: dt.datetime | None) -> None:
    visit.reconnect_deadline_at = at
    visit.next_deadline_at = next_deadline(visit)
    session.flush()


# --- the worker job -----------------------------------------------------------------


def advance_visits(session: Session, clock: Clock, settings: Settings | None = None) -> int:
    """Act on every visit deadline that has passed; returns how many actions were taken.

    Visits are taken in deadline order, a bounded batch per tick, each row
    locked (FOR UPDATE SKIP LOCKED on PostgreSQL, so another node takes the
    others; SQLite has a single writer). Every action is a compare-and-set,
    so a visit moved meanwhile is left alone.
    """
    now = clock.now()
    query = (
        select(Visit)
        .where(
            Visit.next_deadline_at <= now,
            Visit.state.in_((S.SCHEDULED, *states.JOINABLE_STATES)),
        )
        .order_by(Visit.next_deadline_at, Visit.id)
        .limit(BATCH)
        .execution_options(populate_existing=True)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    acted = 0
    for visit in session.scalars(query).all():
        acted += _advance(session, visit, now)
    return acted


def _advance(session: Session, visit: Visit, now: dt.datetime) -> int:
    """Act on the visit's passed deadlines, earliest first (several if the worker
    was away: a visit may open and be missed in one tick)."""
    acted = 0
    while (found := due(visit, now)) is not None:
        _deadline, action = found
        try:
            if action is Action.OPEN:
                _move(session, visit, S.OPEN, now, Cause.DEADLINE, "The join window opened.")
            elif action is Action.END:
                _end(session, visit, now)
            elif action is Action.RECONNECT:
                _move(session, visit, S.FAILED, now, Cause.DEADLINE, _away_reason(session, visit))
            elif not _warn(session, visit, action, now):
                return acted
        except states.InvalidTransition:
            return acted  # moved by someone else meanwhile: their move stands
        acted += 1
    return acted


def _end(session: Session, visit: Visit, now: dt.datetime) -> None:
    if visit.state == S.LIVE:
        reached = "The visit reached its end time."
        _move(session, visit, S.COMPLETED, now, Cause.DEADLINE, reached)
        return
    joined = {
        party
        for party in session.scalars(
            select(VisitEvent.party).where(
                VisitEvent.visit_id == visit.id, VisitEvent.kind.in_(("joined", "media_up"))
            )
        )
    }
    if not joined & {"visitor", "resident"}:
        reason = "Nobody joined the visit."
    elif "visitor" not in joined:
        reason = "The visitor did not join."
    elif "resident" not in joined:
        reason = "The resident did not join."
    else:
        reason = "The call was never connected."
    _move(session, visit, S.MISSED, now, Cause.DEADLINE, reason)


def _move(
    session: Session, visit: Visit, to: VisitState, at: dt.datetime, cause: Cause, reason: str
) -> None:
    """A transition the system makes (media, deadlines)."""
    states.transition(session, visit, to, actor=SYSTEM, at=at, cause=cause, reason=reason)


def _away_reason(session: Session, visit: Visit) -> str:
    events = session.scalars(
        select(VisitEvent)
        .where(VisitEvent.visit_id == visit.id)
        .order_by(VisitEvent.at, VisitEvent.id)
    ).all()
    away = [party for party, up in metering.media_up(events).items() if not up]
    who = " and the ".join(away) or "other party"
    return f"The {who} lost the connection and did not come back in time."


def _warn(session: Session, visit: Visit, action: Action, now: dt.datetime) -> bool:
    """Mark the warning given (compare-and-set) and record it, once.

    A warning that is already out of date (the next one, or the end, has also
    passed) is marked without being shown.
    """
    minutes, flag = (5, "warned_5") if action is Action.WARN_5 else (1, "warned_1")
    column = getattr(Visit, flag)
    upcoming = next_deadline(visit, done=action)
    marked = states.compare_and_set(
        session,
        update(Visit)
        .where(Visit.id == visit.id, Visit.state == visit.state, column.is_(False))
        .values({flag: True, "next_deadline_at": upcoming}),
    )
    if not marked:
        session.refresh(visit)
        return False
    set_committed_value(visit, flag, True)
    set_committed_value(visit, "next_deadline_at", upcoming)
    later = visit.ends_at <= now or (
        action is Action.WARN_5 and visit.warn_1_at is not None and visit.warn_1_at <= now
    )
    if not later:
        seconds_left = int((visit.ends_at - now).total_seconds())
        record_event(
            session,
            visit,
            kind="warning",
            party="system",
            at=now,
            data={"minutes_left": minutes, "seconds_left": seconds_left},
        )
    return True
