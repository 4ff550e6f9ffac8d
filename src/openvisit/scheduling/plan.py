"""What the booking rules need to place one visit, loaded in six queries.

A plan is read for one resident, one visitor, one kind and length of visit:
the facility's settings and visiting hours, closures, kiosks, the busy times
of the resident, the visitor and the kiosks near the span searched, and the
resident's weekly quota. The standing rules between visitor and resident are
checked on the way (approvals).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, and_, bindparam, or_, select
from sqlalchemy.orm import Session

from openvisit.approvals import service as approvals
from openvisit.errors import Code, InvalidInput, NotFound
from openvisit.facilities.models import (
    Closure,
    Facility,
    FacilitySettings,
    Kiosk,
    KioskLocation,
    VisitingHours,
)
from openvisit.residents.models import Resident
from openvisit.scheduling import rules
from openvisit.visits.models import Visit, VisitState, VisitType
from openvisit.visits.states import ACTIVE_STATES

# Visits in these states use up the resident's weekly quota.
QUOTA_STATES = (*ACTIVE_STATES, VisitState.COMPLETED, VisitState.MISSED, VisitState.TERMINATED)


@dataclass
class Plan:
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


def load_plan(
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
) -> Plan:
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
    visitor = approvals.standing(
        session,
        visitor_id=visitor_id,
        resident_id=resident.id,
        facility_id=facility.id,
        now=now,
    )
    if (
        facility_id is None
        and visitor.approval_id is None
        and not approvals.has_asked(session, visitor_id, resident.id)
    ):
        # A visitor names a resident by id only once they have asked to visit them (with
        # the booking number and last name): any other id is "not found", like one that
        # doesn't exist, and nothing of its facility (lengths, dates) is told.
        raise NotFound("We couldn't find that resident.", code=Code.RESIDENT_NOT_FOUND)
    length = check_length(settings, length_minutes)
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
    return Plan(facility, settings, resident, visitor, approval, tz, windows, constraints)
