"""Live visits for officers, JSON API: the monitoring wall's list, warnings,
termination, and who monitored a visit.

The media itself goes over /ws/visits/{id} (signaling.routes); the live-visit
watcher (signaling.live) pushes warnings and endings to the visit's screens.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from openvisit.auth.permissions import Permission
from openvisit.deps import (
    AuditedFacility,
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
from openvisit.web.acting import AtFacility, acting

router = APIRouter(prefix="/api/v1", tags=["live visits"])

VisitId = Id
# An officer watching the facility's live visits.
Monitoring = Annotated[AtFacility, acting(Permission.MONITOR_VISITS)]


@router.get("/facilities/{facility_id}/live-visits", response_model=list[LiveVisitOut])
def list_live_visits(facility: MonitoredFacility, db: DbSession) -> list[LiveVisitOut]:
    """The facility's visits whose join window is open or that are live."""
    return service.live_visits(db, facility)


@router.post(
    "/facilities/{facility_id}/visits/{visit_id}/warnings",
    response_model=VisitActionOut,
    status_code=201,
)
def send_warning(officer: Monitoring, visit_id: VisitId, body: WarningIn) -> VisitActionOut:
    """A warning text on both parties' screens (privileged visits can't be monitored)."""
    visit = service.send_warning(
        officer.db, officer.clock, officer.facility, visit_id, body.text, actor=officer.actor
    )
    return VisitActionOut.of(visit)


@router.post("/facilities/{facility_id}/visits/{visit_id}/terminate", response_model=VisitActionOut)
def terminate_visit(officer: Monitoring, visit_id: VisitId, body: TerminateIn) -> VisitActionOut:
    """End a live visit now, with the reason both parties are shown."""
    visit = service.terminate_visit(
        officer.db, officer.clock, officer.facility, visit_id, body.reason, actor=officer.actor
    )
    return VisitActionOut.of(visit)


@router.get("/facilities/{facility_id}/visits/{visit_id}/monitors", response_model=list[MonitorOut])
def list_monitors(facility: AuditedFacility, visit_id: VisitId, db: DbSession) -> list[MonitorOut]:
    """Who watched the visit (from the audit log; the parties are never told)."""
    visit = service.access_visit(db, facility, visit_id)
    return service.monitors_of(db, visit)
