"""Live visits on screen: the device check and visit pages of visitors and kiosks,
the staff monitoring wall, warnings, termination, and a visit's record for staff.

The media itself goes over /ws/visits/{id} (signaling.routes); these routes
render pages and change visits in short transactions. The live-visit watcher
(signaling.live) pushes warnings and endings to the visit's screens.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from openvisit.audit import service as audit_service
from openvisit.audit.models import AuditEvent
from openvisit.auth.permissions import Permission
from openvisit.deps import ClockDep, CurrentResident, CurrentStaff, CurrentVisitor, DbSession
from openvisit.errors import Code, Conflict, NotFound
from openvisit.facilities.models import Facility, Kiosk
from openvisit.facilities.service import access_facility
from openvisit.people.models import StaffMember, Visitor
from openvisit.residents.models import Resident
from openvisit.scheduling import presenters
from openvisit.visits import service as visits
from openvisit.visits import states
from openvisit.visits.models import (
    Visit,
    VisitEvent,
    VisitRecording,
    VisitState,
    VisitTransition,
    VisitType,
)
from openvisit.web.render import render

api = APIRouter(tags=["live visits"])
pages = APIRouter(include_in_schema=False)

S = VisitState
JOINABLE = (S.OPEN, S.LIVE)


class VisitNotLive(Conflict):
    code = Code.VISIT_NOT_LIVE


def _page_config(request: Request, visit: Visit, party: str) -> dict[str, Any]:
    settings = request.app.state.settings
    return {
        "visitId": visit.id,
        "party": party,
        "privileged": visit.visit_type == VisitType.PRIVILEGED,
        "maxBitrate": settings.media_max_bitrate,
    }


def _visit_context(db: Session, visit: Visit) -> dict[str, Any]:
    facility = db.get(Facility, visit.facility_id)
    assert facility is not None
    return {
        "visit": visit,
        "facility": facility,
        "resident": db.get(Resident, visit.resident_id),
        "visitor_name": db.scalar(select(Visitor.legal_name).where(Visitor.id == visit.visitor_id)),
        "span": presenters.span_label,
        "privileged": visit.visit_type == VisitType.PRIVILEGED,
    }


# --- visitor and kiosk pages -------------------------------------------------------------


@pages.get("/visits/{visit_id}/check", response_class=HTMLResponse)
def device_check_page(
    request: Request, visit_id: int, visitor: CurrentVisitor, db: DbSession
) -> HTMLResponse:
    """Camera and microphone preview before joining, with help when they don't work."""
    visit = visits.access_visit(db, visitor, visit_id)
    context = _visit_context(db, visit)
    context.update(visitor=visitor.visitor, joinable=visit.state in JOINABLE)
    return render(request, "visits/device_check.html", context)


@pages.get("/visits/{visit_id}/live", response_class=HTMLResponse)
def visitor_visit_page(
    request: Request, visit_id: int, visitor: CurrentVisitor, db: DbSession
) -> HTMLResponse:
    visit = visits.access_visit(db, visitor, visit_id)
    context = _visit_context(db, visit)
    resident = context["resident"]
    context.update(
        visitor=visitor.visitor,
        config=_page_config(request, visit, "visitor"),
        other_name=f"{resident.first_name} {resident.last_name}" if resident else "",
        layout="people/layout.html",
        back="/visits/" + str(visit.id),
    )
    return render(request, "visits/visit.html", context)


@pages.get("/kiosk/visits/{visit_id}", response_class=HTMLResponse)
def kiosk_visit_page(
    request: Request, visit_id: int, kiosk: CurrentResident, db: DbSession
) -> HTMLResponse:
    visit = visits.access_visit(db, kiosk, visit_id)
    if visit.resident_kiosk_id != kiosk.kiosk_id:
        raise NotFound("This visit is at another kiosk.", code=Code.VISIT_NOT_FOUND)
    context = _visit_context(db, visit)
    context.update(
        config=_page_config(request, visit, "resident"),
        other_name=context["visitor_name"] or "",
        layout="kiosk/layout.html",
        back="/kiosk",
    )
    return render(request, "visits/visit.html", context)


# --- staff: monitoring wall, warnings, termination ------------------------------------------


class LiveVisitOut(BaseModel):
    id: int
    state: str
    privileged: bool
    starts_at: dt.datetime
    ends_at: dt.datetime
    resident: str
    visitor: str
    kiosk: str


def live_visits(db: Session, facility: Facility) -> list[LiveVisitOut]:
    rows = db.execute(
        select(Visit, Resident, Visitor.legal_name, Kiosk.name)
        .join(Resident, Resident.id == Visit.resident_id)
        .join(Visitor, Visitor.id == Visit.visitor_id)
        .join(Kiosk, Kiosk.id == Visit.resident_kiosk_id)
        .where(Visit.facility_id == facility.id, Visit.state.in_(JOINABLE))
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


@api.get(
    "/api/facilities/{facility_id}/live-visits",
    response_model=list[LiveVisitOut],
    openapi_extra={"x-permission": Permission.MONITOR_VISITS.value},
)
def list_live_visits(facility_id: int, staff: CurrentStaff, db: DbSession) -> list[LiveVisitOut]:
    """The facility's visits whose join window is open or that are live."""
    facility = access_facility(db, staff, facility_id, Permission.MONITOR_VISITS)
    return live_visits(db, facility)


@pages.get("/staff/facilities/{facility_id}/monitoring", response_class=HTMLResponse)
def monitoring_wall(
    request: Request, facility_id: int, staff: CurrentStaff, db: DbSession
) -> HTMLResponse:
    facility = access_facility(db, staff, facility_id, Permission.MONITOR_VISITS)
    return render(
        request,
        "visits/monitoring.html",
        {"staff": staff, "facility": facility, "visits": live_visits(db, facility)},
    )


class WarningIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: Annotated[str, Field(min_length=1, max_length=300)]


class TerminateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Annotated[str, Field(min_length=3, max_length=300)]


class VisitActionOut(BaseModel):
    visit_id: int
    state: str


def _monitored_visit(db: Session, staff: Any, facility_id: int, visit_id: int) -> Visit:
    facility = access_facility(db, staff, facility_id, Permission.MONITOR_VISITS)
    visit = visits.access_visit(db, facility, visit_id)
    if visit.visit_type == VisitType.PRIVILEGED:
        raise NotFound("We couldn't find that visit.", code=Code.VISIT_NOT_FOUND)
    return visit


@api.post(
    "/api/facilities/{facility_id}/visits/{visit_id}/warnings",
    response_model=VisitActionOut,
    status_code=201,
    openapi_extra={"x-permission": Permission.MONITOR_VISITS.value},
)
def send_warning(
    facility_id: int,
    visit_id: int,
    body: WarningIn,
    staff: CurrentStaff,
    db: DbSession,
    clock: ClockDep,
) -> VisitActionOut:
    """A warning text on both parties' screens (privileged visits can't be monitored)."""
    visit = _monitored_visit(db, staff, facility_id, visit_id)
    text = " ".join(body.text.split())
    if not text:
        raise VisitNotLive("Write the warning to send.", code=Code.EMPTY_WARNING)
    if visit.state not in JOINABLE:
        raise VisitNotLive("This visit is not live, so nobody would see the warning.")
    now = clock.now()
    visits.record_event(
        db, visit, kind="warning", party="monitor", at=now, data={"text": text, "by": "staff"}
    )
    audit_service.record(
        db,
        tag="visit:warning_sent",
        actor=staff.actor,
        at=now,
        facility_id=visit.facility_id,
        subject=("visit", visit.id),
        data={"text": text},
    )
    return VisitActionOut(visit_id=visit.id, state=visit.state.value)


@api.post(
    "/api/facilities/{facility_id}/visits/{visit_id}/terminate",
    response_model=VisitActionOut,
    openapi_extra={"x-permission": Permission.MONITOR_VISITS.value},
)
def terminate_visit(
    facility_id: int,
    visit_id: int,
    body: TerminateIn,
    staff: CurrentStaff,
    db: DbSession,
    clock: ClockDep,
) -> VisitActionOut:
    """End a live visit now, with the reason both parties are shown."""
    visit = _monitored_visit(db, staff, facility_id, visit_id)
    reason = " ".join(body.reason.split())
    if visit.state != S.LIVE:
        raise VisitNotLive("Only a live visit can be ended by staff.", state=visit.state.value)
    now = clock.now()
    states.transition(
        db,
        visit,
        S.TERMINATED,
        actor=staff.actor,
        at=now,
        cause="staff",
        reason=f"Ended by staff: {reason}",
    )
    audit_service.record(
        db,
        tag="visit:terminated",
        actor=staff.actor,
        at=now,
        facility_id=visit.facility_id,
        subject=("visit", visit.id),
        data={"reason": reason},
    )
    return VisitActionOut(visit_id=visit.id, state=visit.state.value)


# --- staff: a visit's record ------------------------------------------------------------


class MonitorOut(BaseModel):
    staff_id: int | None
    name: str
    at: dt.datetime


def monitors_of(db: Session, visit: Visit) -> list[MonitorOut]:
    """Who watched the visit, from the audit log (the parties are never told)."""
    rows = db.execute(
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


@api.get(
    "/api/facilities/{facility_id}/visits/{visit_id}/monitors",
    response_model=list[MonitorOut],
    openapi_extra={"x-permission": Permission.VIEW_AUDIT.value},
)
def list_monitors(
    facility_id: int, visit_id: int, staff: CurrentStaff, db: DbSession
) -> list[MonitorOut]:
    facility = access_facility(db, staff, facility_id, Permission.VIEW_AUDIT)
    return monitors_of(db, visits.access_visit(db, facility, visit_id))


@pages.get("/staff/facilities/{facility_id}/visits/{visit_id}", response_class=HTMLResponse)
def staff_visit_page(
    request: Request, facility_id: int, visit_id: int, staff: CurrentStaff, db: DbSession
) -> HTMLResponse:
    """A visit's story: transitions, connection events, recordings and, for those who
    may read the audit log, who monitored it."""
    facility = access_facility(db, staff, facility_id, Permission.VIEW_FACILITY)
    visit = visits.access_visit(db, facility, visit_id)
    context = _visit_context(db, visit)
    can_audit = staff.can(facility.id, Permission.VIEW_AUDIT)
    context.update(
        staff=staff,
        transitions=db.scalars(
            select(VisitTransition)
            .where(VisitTransition.visit_id == visit.id)
            .order_by(VisitTransition.at, VisitTransition.id)
        ).all(),
        events=db.scalars(
            select(VisitEvent)
            .where(VisitEvent.visit_id == visit.id, VisitEvent.kind != "stats")
            .order_by(VisitEvent.at, VisitEvent.id)
        ).all(),
        recordings=db.scalars(
            select(VisitRecording)
            .where(VisitRecording.visit_id == visit.id)
            .order_by(VisitRecording.party, VisitRecording.started_at)
        ).all(),
        monitors=monitors_of(db, visit) if can_audit else None,
    )
    return render(request, "visits/staff_visit.html", context)
