"""Availability, booking, cancelling and rescheduling visits (DESIGN §4, Scheduling).

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
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, and_, bindparam, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, make_transient_to_detached

from openvisit import audit
from openvisit.approvals import service as approvals
from openvisit.audit.service import AuditActor
from openvisit.billing import service as billing
from openvisit.clock import Clock
from openvisit.config import Settings
from openvisit.errors import Code, Conflict, DomainError, InvalidInput, NotFound
from openvisit.facilities.models import (
    Closure,
    Facility,
    FacilitySettings,
    Kiosk,
    KioskLocation,
    VisitingHours,
)
from openvisit.notifications import service as notifications
from openvisit.people.models import Visitor
from openvisit.residents.models import Resident
from openvisit.scheduling import rules
from openvisit.visits import service as visits
from openvisit.visits import states
from openvisit.visits.deadlines import schedule_deadlines
from openvisit.visits.models import Visit, VisitState, VisitType
from openvisit.visits.states import ACTIVE_STATES

# Visits in these states use up the resident's weekly quota.
QUOTA_STATES = (*ACTIVE_STATES, VisitState.COMPLETED, VisitState.MISSED, VisitState.TERMINATED)

MESSAGES = {
    "too_soon": "That time is too soon to book. Choose a later time.",
    "beyond_horizon": "That time is too far ahead to book yet.",
    "facility_closed": "The facility is closed for visits at that time.",
    "weekly_quota_reached": "The resident has no visits of this kind left that week.",
    "slot_taken": "Sorry, someone else has just booked that time. Choose another time.",
    "slot_not_offered": "That time isn't one of the times offered. Choose a time from the list.",
    "no_kiosk": "No visiting terminal is in service for this resident's unit.",
}


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


@dataclass
class _Plan:
    facility: Facility
    settings: FacilitySettings
    resident: Resident
    visitor: approvals.Standing
    approval: approvals.Standing
    tz: ZoneInfo
    windows: list[rules.Interval]
    constraints: rules.Constraints


def check_length(settings: FacilitySettings, length: int) -> dt.timedelta:
    if length not in settings.visit_lengths_minutes:
        offered = ", ".join(str(n) for n in sorted(settings.visit_lengths_minutes))
        raise InvalidInput(
            f"Visits here last {offered} minutes.",
            code=Code.LENGTH_NOT_OFFERED,
            fields={"length": f"Choose one of: {offered} minutes"},
        )
    return dt.timedelta(minutes=length)


def _quota(settings: FacilitySettings, visit_type: VisitType) -> int:
    return {
        VisitType.REMOTE: settings.weekly_remote_visits,
        VisitType.ONSITE: settings.weekly_onsite_visits,
        VisitType.PRIVILEGED: settings.weekly_privileged_visits,
    }[visit_type]


# The booking path runs these for every search and booking: built once, run on the
# session's connection (Core), which costs a fraction of an ORM-level execute.
_HOURS = select(VisitingHours.weekday, VisitingHours.start_time, VisitingHours.end_time).where(
    VisitingHours.unit_id == bindparam("unit_id")
)
_CLOSURES = select(Closure.starts_at, Closure.ends_at).where(
    Closure.facility_id == bindparam("facility_id"),
    or_(Closure.unit_id.is_(None), Closure.unit_id == bindparam("unit_id")),
    Closure.starts_at < bindparam("hi"),
    or_(Closure.ends_at.is_(None), Closure.ends_at > bindparam("lo")),
)
_KIOSKS = select(Kiosk.id, Kiosk.location).where(
    Kiosk.facility_id == bindparam("facility_id"),
    Kiosk.in_service.is_(True),
    or_(Kiosk.unit_id == bindparam("unit_id"), Kiosk.location == KioskLocation.LOBBY),
)
# One pass over visits serves both the overlaps (active visits of this resident, visitor
# and kiosks near the span) and the weekly quota (this resident's visits of this type in
# the weeks the span touches).
_VISITS = select(
    Visit.id,
    Visit.resident_id,
    Visit.visitor_id,
    Visit.resident_kiosk_id,
    Visit.lobby_kiosk_id,
    Visit.starts_at,
    Visit.ends_at,
    Visit.state,
    Visit.visit_type,
).where(
    or_(
        and_(
            Visit.state.in_(ACTIVE_STATES),
            Visit.starts_at < bindparam("hi"),
            Visit.ends_at > bindparam("lo"),
            or_(
                Visit.resident_id == bindparam("resident_id"),
                Visit.visitor_id == bindparam("visitor_id"),
                Visit.resident_kiosk_id.in_(bindparam("kiosks", expanding=True)),
                Visit.lobby_kiosk_id.in_(bindparam("lobbies", expanding=True)),
            ),
        ),
        and_(
            Visit.resident_id == bindparam("resident_id"),
            Visit.visit_type == bindparam("visit_type"),
            Visit.state.in_(QUOTA_STATES),
            Visit.starts_at >= bindparam("week_lo"),
            Visit.starts_at < bindparam("week_hi"),
        ),
    )
)
# The resident with their facility and its settings; facility_id NULL means "any".
_RESIDENT = (
    select(Resident, Facility, FacilitySettings)
    .join(Facility, Facility.id == Resident.facility_id)
    .join(FacilitySettings, FacilitySettings.facility_id == Facility.id)
    .where(
        Resident.id == bindparam("resident_id"),
        or_(
            bindparam("facility_id", type_=Integer).is_(None),
            Resident.facility_id == bindparam("facility_id", type_=Integer),
        ),
    )
)
_RESIDENT_LOCKED = _RESIDENT.with_for_update(of=Resident)
_INSERT_VISIT = pg_insert(Visit).on_conflict_do_nothing().returning(Visit.id)


def _plan(
    session: Session,
    now: dt.datetime,
    *,
    resident_id: int,
    visitor_id: int,
    visit_type: VisitType,
    length_minutes: int,
    facility_id: int | None = None,
    lock: bool = False,
    first: dt.datetime | None = None,
    last: dt.datetime | None = None,
    ignore_visit_id: int | None = None,
) -> _Plan:
    """Load everything the rules need in six queries, and check the standing rules.

    ``first``/``last`` narrow the search (booking checks one start time);
    ``lock`` takes the resident's row lock first (see ``book``).
    """
    row = session.execute(
        _RESIDENT_LOCKED if lock else _RESIDENT,
        {"resident_id": resident_id, "facility_id": facility_id},
    ).first()
    if row is None:
        raise NotFound("We couldn't find that resident.", code=Code.RESIDENT_NOT_FOUND)
    resident, facility, settings = row
    length = check_length(settings, length_minutes)
    visitor = approvals.standing(
        session,
        visitor_id=visitor_id,
        resident_id=resident.id,
        facility_id=facility.id,
        now=now,
    )
    approval = approvals.check_eligible(
        session,
        visitor=visitor,
        resident=resident,
        facility=facility,
        professional=visit_type == VisitType.PRIVILEGED,
    )
    tz = ZoneInfo(facility.timezone)
    not_before = now + dt.timedelta(minutes=settings.min_notice_minutes)
    if resident.restricted_until and resident.restricted_until > not_before:
        not_before = resident.restricted_until
    not_after = now + dt.timedelta(days=settings.booking_horizon_days)
    lo = first or not_before
    hi = (last or not_after) + length
    max_len = dt.timedelta(minutes=max(settings.visit_lengths_minutes))
    span_lo, span_hi = lo - max_len, hi + max_len

    conn = session.connection()
    hours = [rules.HoursRule(*h) for h in conn.execute(_HOURS, {"unit_id": resident.unit_id})]
    windows = rules.windows(
        hours, tz, rules.local_day(lo, tz) - dt.timedelta(days=1), rules.local_day(hi, tz)
    )
    closures = rules.Busy(
        rules.Interval(starts_at, ends_at or rules.FOREVER)
        for starts_at, ends_at in conn.execute(
            _CLOSURES,
            {"facility_id": facility.id, "unit_id": resident.unit_id, "lo": span_lo, "hi": span_hi},
        )
    )
    kiosk_rows = conn.execute(
        _KIOSKS, {"facility_id": facility.id, "unit_id": resident.unit_id}
    ).all()
    unit_kiosks = {k.id: rules.Busy() for k in kiosk_rows if k.location == KioskLocation.HOUSING}
    lobby = (
        {k.id: rules.Busy() for k in kiosk_rows if k.location == KioskLocation.LOBBY}
        if visit_type == VisitType.ONSITE
        else None
    )

    week_lo = rules.local_instant(rules.week_start(rules.local_day(lo, tz)), dt.time(0), tz)
    week_hi = rules.local_instant(
        rules.week_start(rules.local_day(hi, tz)) + dt.timedelta(days=7), dt.time(0), tz
    )
    resident_busy, visitor_busy = rules.Busy(), rules.Busy()
    quota_used: dict[dt.date, int] = {}
    for v in conn.execute(
        _VISITS,
        {
            "resident_id": resident.id,
            "visitor_id": visitor.id,
            "kiosks": list(unit_kiosks),
            "lobbies": list(lobby or ()),
            "lo": span_lo,
            "hi": span_hi,
            "visit_type": visit_type,
            "week_lo": week_lo,
            "week_hi": week_hi,
        },
    ):
        if v.id == ignore_visit_id:
            continue
        if (
            v.resident_id == resident.id
            and v.visit_type == visit_type
            and v.state in QUOTA_STATES
            and week_lo <= v.starts_at < week_hi
        ):
            week = rules.week_start(rules.local_day(v.starts_at, tz))
            quota_used[week] = quota_used.get(week, 0) + 1
        if v.state not in ACTIVE_STATES or not (v.starts_at < span_hi and v.ends_at > span_lo):
            continue
        span = rules.Interval(v.starts_at, v.ends_at)
        if v.resident_id == resident.id:
            resident_busy.add(span)
        if v.visitor_id == visitor.id:
            visitor_busy.add(span)
        if v.resident_kiosk_id in unit_kiosks:
            unit_kiosks[v.resident_kiosk_id].add(span)
        if lobby is not None and v.lobby_kiosk_id in lobby:
            lobby[v.lobby_kiosk_id].add(span)

    constraints = rules.Constraints(
        length=length,
        step=dt.timedelta(minutes=settings.slot_step_minutes),
        not_before=not_before,
        not_after=not_after,
        tz=tz,
        closures=closures,
        resident=resident_busy,
        visitor=visitor_busy,
        kiosks=unit_kiosks,
        lobby_kiosks=lobby,
        quota_used=quota_used,
        quota=_quota(settings, visit_type),
    )
    return _Plan(facility, settings, resident, visitor, approval, tz, windows, constraints)


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
    plan = _plan(
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
    plan = _plan(
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
        early = "too_soon" if start < c.not_before else "beyond_horizon"
        raise DomainError(MESSAGES[early], code=Code(early))
    if not rules.fits_hours(plan.windows, start, c.length, c.step):
        raise DomainError(MESSAGES["slot_not_offered"], code=Code.SLOT_NOT_OFFERED)
    problem = rules.slot_problem(c, start)
    if problem is not None:
        raise DomainError(MESSAGES[problem], code=Code(problem))
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
            audit.service.record(
                session,
                tag="visit:booked",
                actor=actor,
                at=now,
                facility_id=plan.facility.id,
                subject=("visit", visit.id),
                data={
                    "resident_id": resident.id,
                    "visitor_id": visitor.id,
                    "type": visit_type.value,
                    "starts_at": start.isoformat(),
                    "kiosk_id": kiosk_id,
                    "state": state.value,
                },
            )
            return visit
    raise SlotUnavailable(MESSAGES["slot_taken"])


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
    audit.service.record(
        session,
        tag="visit:cancelled",
        actor=actor,
        at=now,
        facility_id=visit.facility_id,
        subject=("visit", visit.id),
        data={"cause": cause, "reason": reason},
    )
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
    audit.service.record(
        session,
        tag="visit:rescheduled",
        actor=actor,
        at=clock.now(),
        facility_id=visit.facility_id,
        subject=("visit", visit.id),
        data={"new_visit_id": new.id, "starts_at": new.starts_at.isoformat()},
    )
    return new


def decide_booking(
    session: Session,
    clock: Clock,
    actor: AuditActor,
    *,
    facility_id: int,
    visit_id: int,
    approve: bool,
    reason: str = "",
) -> Visit:
    visit = visits.access_visit_at(session, facility_id, visit_id, for_update=True)
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
    audit.service.record(
        session,
        tag=f"visit:{target.value}",
        actor=actor,
        at=clock.now(),
        facility_id=facility_id,
        subject=("visit", visit.id),
        data={"reason": reason},
    )
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
