"""Live visits on screen: the device check and the visit page of visitors and
kiosks, the staff monitoring wall, and a visit's record for staff.

The pages only show; the media goes over /ws/visits/{id} (signaling.routes) and
the wall's actions over the JSON API (visits.routes).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from openvisit.auth.permissions import Permission
from openvisit.config import Settings
from openvisit.deps import (
    CurrentResident,
    CurrentStaff,
    CurrentVisitor,
    DbSession,
    MonitoredFacility,
    ViewedFacility,
)
from openvisit.scheduling import presenters
from openvisit.visits import service
from openvisit.visits.routes import VisitId
from openvisit.visits.service import VisitView
from openvisit.web.render import render

router = APIRouter(include_in_schema=False)


def _context(view: VisitView, **more: Any) -> dict[str, Any]:
    """What every visit page shows of the visit."""
    return {
        "visit": view.visit,
        "facility": view.facility,
        "resident": view.resident,
        "visitor_name": view.visitor_name,
        "span": presenters.span_label,
        "privileged": view.privileged,
        **more,
    }


def _visit_page(request: Request, view: VisitView, party: str, **more: Any) -> HTMLResponse:
    """The visit page of a party (a visitor at home, a resident at a kiosk); its
    script's settings go in as JSON."""
    settings: Settings = request.app.state.settings
    config = {
        "visitId": view.visit.id,
        "party": party,
        "privileged": view.privileged,
        "maxBitrate": settings.media_max_bitrate,
    }
    if party == "visitor":
        where = {"layout": "people/layout.html", "back": f"/visits/{view.visit.id}"}
        other_name = view.resident_name
    else:
        where = {"layout": "kiosk/layout.html", "back": "/kiosk"}
        other_name = view.visitor_name
    context = _context(view, config=config, other_name=other_name, **where, **more)
    return render(request, "visits/visit.html", context)


# --- visitor and kiosk pages -------------------------------------------------------------


def _visitors_visit(visit_id: VisitId, visitor: CurrentVisitor, db: DbSession) -> VisitView:
    return service.view_visit(db, visitor, visit_id)


def _residents_visit(visit_id: VisitId, kiosk: CurrentResident, db: DbSession) -> VisitView:
    return service.view_visit(db, kiosk, visit_id)


# The visit, as the signed-in visitor (or the resident at this kiosk) may see it.
VisitorsVisit = Annotated[VisitView, Depends(_visitors_visit)]
ResidentsVisit = Annotated[VisitView, Depends(_residents_visit)]


@router.get("/visits/{visit_id}/check", response_class=HTMLResponse)
def device_check_page(
    request: Request, view: VisitorsVisit, visitor: CurrentVisitor
) -> HTMLResponse:
    """Camera and microphone preview before joining, with help when they don't work."""
    context = _context(view, visitor=visitor.visitor, joinable=view.joinable)
    return render(request, "visits/device_check.html", context)


@router.get("/visits/{visit_id}/live", response_class=HTMLResponse)
def visitor_visit_page(
    request: Request, view: VisitorsVisit, visitor: CurrentVisitor
) -> HTMLResponse:
    return _visit_page(request, view, "visitor", visitor=visitor.visitor)


@router.get("/kiosk/visits/{visit_id}", response_class=HTMLResponse)
def kiosk_visit_page(request: Request, view: ResidentsVisit) -> HTMLResponse:
    return _visit_page(request, view, "resident")


# --- staff: the monitoring wall and a visit's record --------------------------------------


@router.get("/staff/facilities/{facility_id}/monitoring", response_class=HTMLResponse)
def monitoring_wall(
    request: Request, facility: MonitoredFacility, staff: CurrentStaff, db: DbSession
) -> HTMLResponse:
    """A tile per open or live visit; monitor.js keeps the wall up to date."""
    return render(
        request,
        "visits/monitoring.html",
        {"staff": staff, "facility": facility, "visits": service.live_visits(db, facility)},
    )


@router.get("/staff/facilities/{facility_id}/visits/{visit_id}", response_class=HTMLResponse)
def staff_visit_page(
    request: Request,
    facility: ViewedFacility,
    visit_id: VisitId,
    staff: CurrentStaff,
    db: DbSession,
) -> HTMLResponse:
    """A visit's story: transitions, connection events, recordings and, for those who
    may read the audit log, who monitored it."""
    can_audit = staff.can(facility.id, Permission.VIEW_AUDIT)
    story = service.visit_story(db, facility, visit_id, with_monitors=can_audit)
    context = _context(
        story.view,
        staff=staff,
        transitions=story.transitions,
        events=story.events,
        recordings=story.recordings,
        monitors=story.monitors,
    )
    return render(request, "visits/staff_visit.html", context)
