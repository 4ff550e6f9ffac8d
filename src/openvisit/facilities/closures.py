"""Closures: blackouts (planned, with an end) and lockdowns (may be open-ended until lifted).

What a closure does to visits is not decided here: flows.closures.declare_closure
records one and cancels the visits it covers.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from openvisit import bounds
from openvisit.audit.service import AuditActor
from openvisit.clock import Clock
from openvisit.errors import Code, Conflict, InvalidInput
from openvisit.facilities.models import Closure, ClosureKind, Facility
from openvisit.facilities.service import get_owned, record_event
from openvisit.facilities.units import get_unit, parse_hhmm


@dataclass(frozen=True)
class ClosureLists:
    current_and_upcoming: list[Closure]
    past: list[Closure]


def list_closures(
    session: Session, clock: Clock, facility: Facility, past_limit: int = 50
) -> ClosureLists:
    now = clock.now()
    base = select(Closure).where(Closure.facility_id == facility.id)
    active = base.where((Closure.ends_at.is_(None)) | (Closure.ends_at > now))
    past = base.where(Closure.ends_at <= now)
    return ClosureLists(
        list(session.scalars(active.order_by(Closure.starts_at, Closure.id))),
        list(
            session.scalars(
                past.order_by(Closure.ends_at.desc(), Closure.id.desc()).limit(past_limit)
            )
        ),
    )


def get_closure(session: Session, facility: Facility, closure_id: int) -> Closure:
    return get_owned(
        session, Closure, facility, closure_id, "We couldn't find that lockdown or blackout."
    )


def local_to_utc(day: str, time: str, tz: str, field: str) -> dt.datetime:
    """A facility-local date ("YYYY-MM-DD") and time ("HH:MM") as an aware UTC datetime."""
    try:
        date = bounds.parse_date(day)
    except ValueError:
        raise InvalidInput(
            "Enter a real date.", fields={f"{field}_date": "Enter a real date, like 2026-12-24"}
        ) from None
    clock_time = parse_hhmm(time)
    if clock_time is None:
        raise InvalidInput(
            "Enter a time like 14:30.", fields={f"{field}_time": "Enter a time like 14:30"}
        )
    zone = ZoneInfo(tz)
    local = dt.datetime.combine(date, clock_time, tzinfo=zone)
    utc = local.astimezone(dt.UTC)
    if utc.astimezone(zone).replace(tzinfo=None) != local.replace(tzinfo=None):
        raise InvalidInput(
            "That time doesn't exist on that day: the clocks change.",
            fields={
                f"{field}_time": "That time is skipped when the clocks go forward; choose another"
            },
        )
    return utc


@dataclass(frozen=True)
class NewClosure:
    """A blackout or lockdown as staff describe it, not yet checked."""

    kind: str
    starts_at: dt.datetime
    ends_at: dt.datetime | None
    reason: str
    unit_id: int | None = None


def _check_kind(kind: str) -> ClosureKind:
    try:
        return ClosureKind(kind)
    except ValueError:
        raise InvalidInput(
            "Choose blackout or lockdown.", fields={"kind": "Choose blackout or lockdown"}
        ) from None


def _check_reason(reason: str) -> str:
    reason = reason.strip()
    if not reason:
        raise InvalidInput("Enter the reason.", fields={"reason": "Enter the reason"})
    if len(reason) > 500:
        raise InvalidInput(
            "The reason can be at most 500 characters.",
            fields={"reason": "Enter at most 500 characters"},
        )
    return reason


def _check_period(
    kind: ClosureKind, starts_at: dt.datetime, ends_at: dt.datetime | None, now: dt.datetime
) -> tuple[dt.datetime, dt.datetime | None]:
    """The period in UTC: it has an end unless it is a lockdown, and the end is to come."""
    if starts_at.tzinfo is None or (ends_at is not None and ends_at.tzinfo is None):
        raise InvalidInput(
            "Give times with their UTC offset.",
            code=Code.NAIVE_DATETIME,
            fields={"starts_at": "Include the UTC offset, like +00:00"},
        )
    starts_at = starts_at.astimezone(dt.UTC)
    if ends_at is None:
        if kind == ClosureKind.BLACKOUT:
            raise InvalidInput(
                "A blackout needs an end. Only a lockdown may be open-ended.",
                code=Code.CLOSURE_NEEDS_END,
                fields={"ends_at": "Enter when it ends"},
            )
        return starts_at, None
    ends_at = ends_at.astimezone(dt.UTC)
    if ends_at <= starts_at:
        raise InvalidInput(
            "The end must be after the start.",
            code=Code.CLOSURE_END_BEFORE_START,
            fields={"ends_at": "Enter an end after the start"},
        )
    if ends_at <= now:
        raise InvalidInput(
            "That period is already over.",
            code=Code.CLOSURE_IN_PAST,
            fields={"ends_at": "Enter an end in the future"},
        )
    return starts_at, ends_at


def create_closure(
    session: Session,
    clock: Clock,
    actor: AuditActor,
    facility: Facility,
    new: NewClosure,
    *,
    staff_id: int | None = None,
) -> Closure:
    """Record a blackout or lockdown and return it.

    The caller's transaction holds the new closure; whatever must follow from it
    (the visits it covers) is decided by whoever receives the returned closure.
    """
    now = clock.now()
    kind = _check_kind(new.kind)
    reason = _check_reason(new.reason)
    starts_at, ends_at = _check_period(kind, new.starts_at, new.ends_at, now)
    if new.unit_id is not None:
        get_unit(session, facility, new.unit_id, field="unit_id")
    closure = Closure(
        facility_id=facility.id,
        unit_id=new.unit_id,
        kind=kind,
        starts_at=starts_at,
        ends_at=ends_at,
        reason=reason,
        created_by_staff_id=staff_id,
        created_at=now,
    )
    session.add(closure)
    session.flush()
    record_event(session, "closure:created", actor, now, closure, _closure_data(closure))
    return closure


def lift_lockdown(session: Session, clock: Clock, actor: AuditActor, closure: Closure) -> Closure:
    """End a lockdown now."""
    now = clock.now()
    if closure.kind != ClosureKind.LOCKDOWN:
        raise Conflict(
            "Only a lockdown can be lifted; a blackout ends when planned.", code=Code.NOT_A_LOCKDOWN
        )
    if closure.lifted_at is not None or (closure.ends_at is not None and closure.ends_at <= now):
        raise Conflict("This lockdown has already ended.", code=Code.CLOSURE_NOT_ACTIVE)
    if closure.starts_at >= now:
        raise Conflict(
            "This lockdown hasn't started yet, so it can't be lifted.",
            code=Code.CLOSURE_NOT_STARTED,
        )
    before = _closure_data(closure)
    closure.lifted_at = now
    closure.ends_at = now
    session.flush()
    record_event(
        session,
        "closure:lifted",
        actor,
        now,
        closure,
        {"before": before, "after": _closure_data(closure)},
    )
    return closure


def _closure_data(closure: Closure) -> dict[str, Any]:
    return {
        "kind": closure.kind.value,
        "unit_id": closure.unit_id,
        "starts_at": closure.starts_at.isoformat(),
        "ends_at": closure.ends_at.isoformat() if closure.ends_at else None,
        "reason": closure.reason,
    }
