"""Live visits for officers, JSON API: the monitoring wall's list, warnings,
termination, and who monitored a visit.

The media itself goes over /ws/visits/{id} (signaling.routes); the live-visit
watcher (signaling.live) pushes warnings and endings to the visit's screens.
"""

from __future__ import annotations

from fastapi import APIRouter

from openvisit.deps import (
    AuditedFacility,
    ClockDep,
    CurrentStaff,
    DbSession,
    Id,
    MonitoredFacility,
)
from openvisit.visits import service
from openvisit.visits.schemas import (
    LiveVisitOut,
    MonitorOut,
    TerminateIn,
    VisitActionOut,
    WarningIn,
)

router = APIRouter(prefix="/api/v1", tags=["live visits"])

VisitId = Id


@router.get("/facilities/{facility_id}/live-visits", response_model=list[LiveVisitOut])
def list_live_visits(facility: MonitoredFacility, db: DbSession) -> list[LiveVisitOut]:
    """The facility's visits whose join window is open or that are live."""
    return service.live_visits(db, facility)


@router.post(
    "/facilities/{facility_id}/visits/{visit_id}/warnings",
    response_model=VisitActionOut,
    status_code=201,
)
def send_warning(
    facility: MonitoredFacility,
    visit_id: VisitId,
    body: WarningIn,
    staff: CurrentStaff,
    db: DbSession,
    clock: ClockDep,
) -> VisitActionOut:
    """A warning text on both parties' screens (privileged visits can't be monitored)."""
    visit = service.send_warning(db, clock, facility, visit_id, body.text, actor=staff.actor)
    return VisitActionOut.of(visit)


@router.post("/facilities/{facility_id}/visits/{visit_id}/terminate", response_model=VisitActionOut)
def terminate_visit(
    facility: MonitoredFacility,
    visit_id: VisitId,
    body: TerminateIn,
    staff: CurrentStaff,
    db: DbSession,
    clock: ClockDep,
) -> VisitActionOut:
    """End a live visit now, with the reason both parties are shown."""
    visit = service.terminate_visit(db, clock, facility, visit_id, body.reason, actor=staff.actor)
    return VisitActionOut.of(visit)


@router.get("/facilities/{facility_id}/visits/{visit_id}/monitors", response_model=list[MonitorOut])
def list_monitors(facility: AuditedFacility, visit_id: VisitId, db: DbSession) -> list[MonitorOut]:
    """Who watched the visit (from the audit log; the parties are never told)."""
    visit = service.access_visit(db, facility, visit_id)
    return service.monitors_of(db, visit)
