"""Availability, booking, cancelling, rescheduling and deciding visits, and reading
them (DESIGN §4, Scheduling). What the rules need is loaded by ``plan.py``.

Booking re-checks every rule inside its own transaction and then inserts;
the database has the last word on overlaps: PostgreSQL's exclusion
constraints (see migration 0003), SQLite's single writer (every transaction
begins IMMEDIATE, so the check and the insert can't interleave with another
booking's).
"""

from __future__ import annotations

import datetime as dt
import itertools
import secrets
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, make_transient_to_detached

from openvisit.approvals import service as approvals
from openvisit.approvals.models import Approval
from openvisit.audit.service import AuditActor
from openvisit.billing import service as billing
from openvisit.clock import Clock
from openvisit.config import Settings
from openvisit.errors import Code, Conflict, DomainError, InvalidInput, NotFound
from openvisit.facilities.models import Facility, FacilitySettings
from openvisit.notifications import service as notifications
from openvisit.people.models import Visitor
from openvisit.residents.models import Resident
from openvisit.scheduling import rules
from openvisit.scheduling.plan import load_plan
from openvisit.visits import states
from openvisit.visits.deadlines import schedule_deadlines
from openvisit.visits.models import Visit, VisitState, VisitType
from openvisit.visits.service import audit_visit
from openvisit.visits.states import ACTIVE_STATES

MESSAGES: dict[Code, str] = {
    Code.TOO_SOON: "That time is too soon to book. Choose a later time.",
    Code.BEYOND_HORIZON: "That time is too far ahead to book yet.",
    Code.FACILITY_CLOSED: "The facility is closed for visits at that time.",
    Code.WEEKLY_QUOTA_REACHED: "The resident has no visits of this kind left that week.",
    Code.SLOT_TAKEN: "Sorry, someone else has just booked that time. Choose another time.",
    Code.SLOT_NOT_OFFERED: "That time isn't one of the times offered. Choose a time from the list.",
    Code.NO_KIOSK: "No visiting terminal is in service for this resident's unit.",
}
# Visits that are over or never happened, as a family's list shows them.
CALLED_OFF = (VisitState.CANCELLED, VisitState.DENIED)


class SlotUnavailable(Conflict):
    code = Code.SLOT_TAKEN


@dataclass
class SearchResult:
    facility: Facility
    resident: Resident
    visitor: approvals.Standing
    visit_type: VisitType
    length: int
    slots: list[rules.Slot]


def availability(
    session: Session,
    clock: Clock,
    *,
    resident_id: int,
    visitor_id: int,
    visit_type: VisitType,
    length_minutes: int,
    facility_id: int | None = None,
) -> SearchResult:
    """Every bookable start over the booking horizon, in time order."""
    plan = load_plan(
        session,
        clock.now(),
        resident_id=resident_id,
        visitor_id=visitor_id,
        visit_type=visit_type,
        length_minutes=length_minutes,
        facility_id=facility_id,
    )
    slots = rules.available_slots(plan.windows, plan.constraints)
    return SearchResult(
        plan.facility, plan.resident, plan.visitor, visit_type, length_minutes, slots
    )


def _rate(settings: FacilitySettings, visit_type: VisitType) -> Decimal:
    # Privileged (legal and clergy) visits are never charged; on-site visits are
    # free unless the facility says otherwise.
    free = visit_type == VisitType.PRIVILEGED or (
        visit_type == VisitType.ONSITE and settings.onsite_visits_free
    )
    rate = Decimal(0) if free else Decimal(settings.remote_rate_cents_per_minute)
    return rate.quantize(Decimal("0.01"))  # as the column stores it


def _reference() -> str:
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    code = "".join(secrets.choice(alphabet) for _ in range(8))
    return f"{code[:4]}-{code[4:]}"


def book(
    session: Session,
    clock: Clock,
    actor: AuditActor,
    *,
    resident_id: int,
    visitor_id: int,
    visit_type: VisitType,
    start: dt.datetime,
    length_minutes: int,
    facility_id: int | None = None,
    ignore_visit_id: int | None = None,
) -> Visit:
    """Book one visit at ``start``; every rule is checked again here.

    Expects to run in the caller's write transaction. A lost race answers
    ``slot_taken`` and leaves nothing behind.
    """
    now = clock.now()
    if start.tzinfo is None:
        raise InvalidInput(
            "Give the start time with its time zone offset.",
            code=Code.INVALID_TIME,
            fields={"start": "Include the time zone offset"},
        )
    start = start.astimezone(dt.UTC)
    # lock=True serializes bookings of one resident (the weekly quota is not a constraint
    # the database can hold by itself); the exclusion constraints do the rest.
    plan = load_plan(
        session,
        now,
        resident_id=resident_id,
        visitor_id=visitor_id,
        visit_type=visit_type,
        length_minutes=length_minutes,
        facility_id=facility_id,
        lock=True,
        first=start,
        last=start,
        ignore_visit_id=ignore_visit_id,
    )
    resident, visitor = plan.resident, plan.visitor
    c = plan.constraints
    if start < c.not_before or start > c.not_after:
        early = Code.TOO_SOON if start < c.not_before else Code.BEYOND_HORIZON
        raise DomainError(MESSAGES[early], code=early)
    if not rules.fits_hours(plan.windows, start, c.length, c.step):
        raise DomainError(MESSAGES[Code.SLOT_NOT_OFFERED], code=Code.SLOT_NOT_OFFERED)
    problem = rules.slot_problem(c, start)
    if problem is not None:
        raise DomainError(MESSAGES[problem], code=problem)
    approval = plan.approval
    end = start + c.length
    state = VisitState.REQUESTED if plan.settings.bookings_need_approval else VisitState.SCHEDULED
    lobby_ids = (
        [k for k in sorted(c.lobby_kiosks) if not c.lobby_kiosks[k].overlaps(start, end)]
        if c.lobby_kiosks is not None
        else [None]
    )
    kiosk_ids = [k for k in sorted(c.kiosks) if not c.kiosks[k].overlaps(start, end)]
    for kiosk_id, lobby_id in itertools.product(kiosk_ids, lobby_ids):
        visit = Visit(
            facility_id=plan.facility.id,
            resident_id=resident.id,
            visitor_id=visitor.id,
            visit_type=visit_type,
            resident_kiosk_id=kiosk_id,
            lobby_kiosk_id=lobby_id,
            starts_at=start,
            ends_at=end,
            state=state,
            participants=list(approval.minors),
            rate_cents_per_minute=_rate(plan.settings, visit_type),
            recorded=visit_type != VisitType.PRIVILEGED,
            reference=_reference(),
            booked_by_type=actor.type,
            booked_by_id=actor.id or 0,
            created_at=now,
            ended_reason="",
        )
        schedule_deadlines(visit, plan.settings)
        if _insert(session, visit):
            # A paid visit sets its money aside now, in this transaction (DESIGN §4).
            billing.hold_for_visit(session, clock, visit, replaces=ignore_visit_id)
            states.record_creation(
                session, visit, actor=actor, at=now, cause=actor.type, reason="booked"
            )
            audit_visit(
                session,
                visit,
                "visit:booked",
                actor,
                now,
                resident_id=resident.id,
                visitor_id=visitor.id,
                type=visit_type.value,
                starts_at=start.isoformat(),
                kiosk_id=kiosk_id,
                state=state.value,
            )
            return visit
    raise SlotUnavailable(MESSAGES[Code.SLOT_TAKEN])


_INSERT_VISIT = pg_insert(Visit).on_conflict_do_nothing().returning(Visit.id)


def _insert(session: Session, visit: Visit) -> bool:
    """Insert the visit; False if the database says the time is taken.

    On PostgreSQL one ``INSERT ... ON CONFLICT DO NOTHING`` (which covers the
    exclusion constraints, waiting for a concurrent booking to commit or roll
    back) answers in a single round trip, so the next kiosk can be tried
    without a savepoint. On SQLite the checks made under the write lock are
    authoritative and a plain insert follows.
    """
    if session.get_bind().dialect.name == "postgresql":
        values = {c.key: getattr(visit, c.key) for c in Visit.__table__.columns if c.key != "id"}
        new_id = session.connection().execute(_INSERT_VISIT, values).scalar()
        if new_id is None:
            return False
        visit.id = new_id
        make_transient_to_detached(visit)
        session.add(visit)
        return True
    savepoint = session.begin_nested()
    session.add(visit)
    try:
        session.flush()
    except IntegrityError as exc:
        savepoint.rollback()
        constraint = getattr(getattr(exc.orig, "diag", None), "constraint_name", "") or ""
        if constraint.startswith("visits_no_"):
            return False
        raise
    savepoint.commit()
    return True


# --- reading -------------------------------------------------------------------------


def visit_by_reference(session: Session, facility_id: int, reference: str) -> Visit | None:
    """The facility's visit with this reference, as read out by a family: any case, with or
    without the dash or spaces ("abcd efgh" is ABCD-EFGH)."""
    code = "".join(ch for ch in reference.upper() if ch.isalnum())
    if len(code) != 8:
        return None
    return session.scalar(
        select(Visit).where(
            Visit.reference == f"{code[:4]}-{code[4:]}", Visit.facility_id == facility_id
        )
    )


def visits_for_visitor(session: Session, visitor_id: int) -> list[Visit]:
    return list(
        session.scalars(
            select(Visit).where(Visit.visitor_id == visitor_id).order_by(Visit.starts_at)
        )
    )


def upcoming_for_resident(session: Session, resident_id: int, now: dt.datetime) -> list[Visit]:
    return list(
        session.scalars(
            select(Visit)
            .where(
                Visit.resident_id == resident_id,
                Visit.state.in_(ACTIVE_STATES),
                Visit.ends_at > now,
            )
            .order_by(Visit.starts_at)
        )
    )


def day_schedule(session: Session, facility: Facility, day: dt.date) -> list[Visit]:
    tz = ZoneInfo(facility.timezone)
    lo = rules.local_instant(day, dt.time(0), tz)
    hi = rules.local_instant(day + dt.timedelta(days=1), dt.time(0), tz)
    return list(
        session.scalars(
            select(Visit)
            .where(
                Visit.facility_id == facility.id,
                Visit.starts_at < hi,
                Visit.ends_at > lo,
                Visit.state.notin_((VisitState.CANCELLED, VisitState.DENIED)),
            )
            .order_by(Visit.resident_kiosk_id, Visit.starts_at)
        )
    )


_Row = TypeVar("_Row", Resident, Facility, Visitor)


def _by_id(session: Session, model: type[_Row], ids: set[int]) -> dict[int, _Row]:
    if not ids:
        return {}
    return {row.id: row for row in session.scalars(select(model).where(model.id.in_(ids)))}


@dataclass(frozen=True)
class Names:
    """The residents, facilities and visitors of some visits, by id."""

    residents: dict[int, Resident]
    facilities: dict[int, Facility]
    visitors: dict[int, Visitor]


def names_of(session: Session, visits: list[Visit]) -> Names:
    """Who and where, for a list of visits: three queries, whatever its length."""
    return Names(
        residents=_by_id(session, Resident, {v.resident_id for v in visits}),
        facilities=_by_id(session, Facility, {v.facility_id for v in visits}),
        visitors=_by_id(session, Visitor, {v.visitor_id for v in visits}),
    )


@dataclass(frozen=True)
class FamilyVisits:
    """A family's visits as their list shows them, with the people they asked to visit."""

    upcoming: list[Visit]  # in time order
    ended: list[Visit]  # newest first
    called_off: list[Visit]  # cancelled or denied, newest first
    approvals: list[Approval]
    residents: dict[int, Resident]
    facilities: dict[int, Facility]


def family_visits(session: Session, visitor_id: int, now: dt.datetime) -> FamilyVisits:
    visits = visits_for_visitor(session, visitor_id)
    upcoming = [v for v in visits if v.state in ACTIVE_STATES and v.ends_at > now]
    ended = [v for v in visits if v not in upcoming and v.state not in CALLED_OFF]
    called_off = [v for v in visits if v.state in CALLED_OFF]
    asked = approvals.for_visitor(session, visitor_id)
    return FamilyVisits(
        upcoming=upcoming,
        ended=ended[::-1],
        called_off=called_off[::-1],
        approvals=asked,
        residents=_by_id(
            session, Resident, {a.resident_id for a in asked} | {v.resident_id for v in visits}
        ),
        facilities=_by_id(
            session, Facility, {a.facility_id for a in asked} | {v.facility_id for v in visits}
        ),
    )


def resident_asked_about(session: Session, visitor_id: int, resident_id: int) -> Resident:
    """A resident this visitor has asked to visit (approved or not): others are not found."""
    asked = approvals.for_visitor(session, visitor_id)
    resident = session.get(Resident, resident_id)
    if resident is None or not any(a.resident_id == resident_id for a in asked):
        raise NotFound("We couldn't find that resident.", code=Code.RESIDENT_NOT_FOUND)
    return resident


def resident_and_visitor(
    session: Session, facility: Facility, booking_number: str, visitor_email: str
) -> tuple[Resident, Visitor]:
    """The pair staff book for: a resident of theirs by booking number, a visitor by e-mail."""
    resident = session.scalar(
        select(Resident).where(
            Resident.facility_id == facility.id,
            Resident.booking_number == booking_number.strip().upper(),
        )
    )
    if resident is None:
        raise NotFound(
            "No resident here has that booking number.",
            code=Code.RESIDENT_NOT_FOUND,
            fields={"booking_number": "Enter a booking number of this facility"},
        )
    visitor = session.scalar(select(Visitor).where(Visitor.email == visitor_email.strip().lower()))
    if visitor is None:
        raise NotFound(
            "No visitor account has that e-mail address.",
            code=Code.VISITOR_NOT_FOUND,
            fields={"visitor_email": "Enter the e-mail of the visitor's account"},
        )
    return resident, visitor


@dataclass(frozen=True)
class Offer:
    """What a visitor may choose from when booking with a resident."""

    facility: Facility
    lengths: list[int]  # minutes, shortest first
    types: list[VisitType]  # the first is the one shown first


def offer(session: Session, resident: Resident, visitor_id: int) -> Offer:
    facility = session.get(Facility, resident.facility_id)
    settings = session.get(FacilitySettings, resident.facility_id)
    if facility is None or settings is None:
        raise NotFound("We couldn't find that facility.")
    approval = approvals.approval_for(session, visitor_id, resident.id)
    types = [VisitType.REMOTE, VisitType.ONSITE]
    if approval and approval.relationship in approvals.PROFESSIONAL_RELATIONSHIPS:
        types = [VisitType.PRIVILEGED, *types]
    return Offer(facility, sorted(settings.visit_lengths_minutes), types)


# --- changing ------------------------------------------------------------------------


def cancel(
    session: Session, clock: Clock, actor: AuditActor, visit: Visit, *, cause: str, reason: str
) -> Visit:
    """Cancel a requested or scheduled visit. ``cause`` tells billing who cancelled."""
    now = clock.now()
    if visit.state not in (VisitState.REQUESTED, VisitState.SCHEDULED, VisitState.OPEN):
        raise Conflict("This visit can no longer be cancelled.", code=Code.NOT_CANCELLABLE)
    if cause == "visitor" and visit.state == VisitState.OPEN:
        raise Conflict(
            "This visit has started; leave the visit instead.", code=Code.NOT_CANCELLABLE
        )
    states.transition(
        session,
        visit,
        VisitState.CANCELLED,
        actor=actor,
        at=now,
        cause=cause,
        reason=reason.strip()[:500] or "Cancelled",
    )
    audit_visit(session, visit, "visit:cancelled", actor, now, cause=cause, reason=reason)
    return visit


def reschedule(
    session: Session,
    clock: Clock,
    actor: AuditActor,
    visit: Visit,
    *,
    start: dt.datetime,
    length_minutes: int | None = None,
) -> Visit:
    """Move a visit to a new start, atomically: if the new time fails, the old one stays
    (the caller's transaction rolls back both steps)."""
    if visit.state not in (VisitState.REQUESTED, VisitState.SCHEDULED):
        raise Conflict("This visit can no longer be changed.", code=Code.NOT_RESCHEDULABLE)
    length = length_minutes or int((visit.ends_at - visit.starts_at).total_seconds() // 60)
    # The old visit gives way first (the new time may overlap it); if the new
    # booking fails, the caller's transaction rolls this back too.
    states.transition(
        session,
        visit,
        VisitState.CANCELLED,
        actor=actor,
        at=clock.now(),
        cause="rescheduled",
        reason="Rescheduled",
    )
    new = book(
        session,
        clock,
        actor,
        resident_id=visit.resident_id,
        visitor_id=visit.visitor_id,
        visit_type=visit.visit_type,
        start=start,
        length_minutes=length,
        ignore_visit_id=visit.id,
    )
    audit_visit(
        session,
        visit,
        "visit:rescheduled",
        actor,
        clock.now(),
        new_visit_id=new.id,
        starts_at=new.starts_at.isoformat(),
    )
    return new


def decide_booking(
    session: Session,
    clock: Clock,
    actor: AuditActor,
    visit: Visit,
    *,
    approve: bool,
    reason: str = "",
) -> Visit:
    """Approve or deny a requested booking. ``visit`` is locked by the caller."""
    if visit.state != VisitState.REQUESTED:
        raise Conflict("A colleague already decided this booking.", code=Code.ALREADY_DECIDED)
    if not approve and not reason.strip():
        raise InvalidInput("Enter a reason.", fields={"reason": "Enter a reason"})
    target = VisitState.SCHEDULED if approve else VisitState.DENIED
    states.transition(
        session,
        visit,
        target,
        actor=actor,
        at=clock.now(),
        cause="staff",
        reason=reason.strip()[:500],
    )
    audit_visit(session, visit, f"visit:{target.value}", actor, clock.now(), reason=reason)
    return visit


def cancel_by_staff(
    session: Session,
    clock: Clock,
    settings: Settings,
    actor: AuditActor,
    visit: Visit,
    *,
    reason: str,
) -> Visit:
    """Staff cancel one visit, with a reason the family is told. ``visit`` is locked."""
    if not reason.strip():
        raise InvalidInput("Enter a reason for cancelling.", fields={"reason": "Enter a reason"})
    cancel_visits(session, clock, settings, actor, [visit], cause="staff", reason=reason)
    return visit


def visits_affected_by(
    session: Session,
    *,
    facility_id: int,
    unit_id: int | None,
    starts_at: dt.datetime,
    ends_at: dt.datetime | None,
) -> list[Visit]:
    """Active visits that a closure of this span would hit (for the preview and the effect)."""
    query = select(Visit).where(
        Visit.facility_id == facility_id,
        Visit.state.in_(ACTIVE_STATES),
        Visit.state != VisitState.LIVE,
        Visit.ends_at > starts_at,
    )
    if ends_at is not None:
        query = query.where(Visit.starts_at < ends_at)
    if unit_id is not None:
        query = query.join(Resident, Resident.id == Visit.resident_id).where(
            Resident.unit_id == unit_id
        )
    return list(session.scalars(query.order_by(Visit.starts_at)))


def cancel_visits(
    session: Session,
    clock: Clock,
    settings: Settings,
    actor: AuditActor,
    visits: list[Visit],
    *,
    cause: str,
    reason: str,
) -> list[Visit]:
    """Cancel visits for a cause of the facility's (staff, lockdown, release, transfer) and
    tell each visitor. The stored transitions carry the cause: billing releases the holds."""
    done = []
    for visit in visits:
        cancel(session, clock, actor, visit, cause=cause, reason=reason)
        visitor = session.get(Visitor, visit.visitor_id)
        facility = session.get(Facility, visit.facility_id)
        if visitor is not None and facility is not None:
            when = visit.starts_at.astimezone(ZoneInfo(facility.timezone)).strftime(
                "%A %d %B at %I:%M %p %Z"
            )
            notifications.queue_email(
                session,
                clock,
                settings,
                to=visitor.email,
                subject=f"Cancelled: your visit on {when} (ref {visit.reference})",
                body=(
                    f"Your visit on {when} at {facility.name} was cancelled by the facility.\n"
                    f"Reason: {reason}\n\nYou will not be charged for it. Sign in to book "
                    "another time."
                ),
            )
        done.append(visit)
    return done


def cancel_for_custody_change(
    session: Session,
    clock: Clock,
    settings: Settings,
    actor: AuditActor,
    resident: Resident,
    cause: str,
) -> list[Visit]:
    """A release or transfer cancels the resident's visits that have not started."""
    visits = list(
        session.scalars(
            select(Visit).where(
                Visit.resident_id == resident.id,
                Visit.state.in_(ACTIVE_STATES),
                Visit.state != VisitState.LIVE,
                Visit.ends_at > clock.now(),
            )
        )
    )
    words = {"released": "was released", "transferred": "moved to another facility"}
    return cancel_visits(
        session,
        clock,
        settings,
        actor,
        visits,
        cause=cause,
        reason=f"The person you were visiting {words.get(cause, cause)}.",
    )
