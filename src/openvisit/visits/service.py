"""Visit events and the worker job that acts on visit deadlines (DESIGN §4).

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
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from openvisit.audit.service import SYSTEM
from openvisit.clock import Clock
from openvisit.config import Settings
from openvisit.errors import Code, InvalidInput, NotFound
from openvisit.facilities.models import Facility, FacilitySettings
from openvisit.people.context import KioskContext, VisitorContext
from openvisit.visits import metering, states
from openvisit.visits.deadlines import Action, due, next_deadline
from openvisit.visits.models import Visit, VisitEvent, VisitState

S = VisitState

# Who may look at a visit: its visitor, its resident at a kiosk, or staff of its
# facility (the facility already authorized by the route's FacilityFor).
VisitViewer = VisitorContext | KioskContext | Facility


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
                raise NotFound("We couldn't find that visit.", code=Code.VISIT_NOT_FOUND)
            query = query.where(Visit.resident_id == viewer.resident_id)
        case Facility():
            query = query.where(Visit.facility_id == viewer.id)
    if for_update:
        query = query.with_for_update()
    visit = session.scalar(query)
    if visit is None:
        raise NotFound("We couldn't find that visit.", code=Code.VISIT_NOT_FOUND)
    return visit


def access_visit_at(
    session: Session, facility_id: int, visit_id: int, *, for_update: bool = False
) -> Visit:
    """The facility's visit, for services handed a facility id by an authorized caller."""
    query = select(Visit).where(Visit.id == visit_id, Visit.facility_id == facility_id)
    if for_update:
        query = query.with_for_update()
    visit = session.scalar(query)
    if visit is None:
        raise NotFound("We couldn't find that visit.", code=Code.VISIT_NOT_FOUND)
    return visit


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
    if locked is None or locked.state not in (S.OPEN, S.LIVE):
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
            states.transition(
                session,
                locked,
                S.LIVE,
                actor=SYSTEM,
                at=at,
                cause="media",
                reason="Both parties are connected.",
            )
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
            Visit.state.in_((S.SCHEDULED, S.OPEN, S.LIVE)),
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
                states.transition(
                    session,
                    visit,
                    S.OPEN,
                    actor=SYSTEM,
                    at=now,
                    cause="deadline",
                    reason="The join window opened.",
                )
            elif action is Action.END:
                _end(session, visit, now)
            elif action is Action.RECONNECT:
                states.transition(
                    session,
                    visit,
                    S.FAILED,
                    actor=SYSTEM,
                    at=now,
                    cause="deadline",
                    reason=_away_reason(session, visit),
                )
            elif not _warn(session, visit, action, now):
                return acted
        except states.InvalidTransition:
            return acted  # moved by someone else meanwhile: their move stands
        acted += 1
    return acted


def _end(session: Session, visit: Visit, now: dt.datetime) -> None:
    if visit.state == S.LIVE:
        states.transition(
            session,
            visit,
            S.COMPLETED,
            actor=SYSTEM,
            at=now,
            cause="deadline",
            reason="The visit reached its end time.",
        )
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
    states.transition(
        session, visit, S.MISSED, actor=SYSTEM, at=now, cause="deadline", reason=reason
    )


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
    result = session.execute(
        update(Visit)
        .where(Visit.id == visit.id, Visit.state == visit.state, column.is_(False))
        .values({flag: True, "next_deadline_at": upcoming})
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
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
