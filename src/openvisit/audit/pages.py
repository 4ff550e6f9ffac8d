"""The audit log, one facility at a time: the staff page."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from openvisit.audit import viewer
from openvisit.audit.routes import BeforeId, TagPrefix
from openvisit.deps import AuditedFacility, CurrentStaff, DbSession
from openvisit.web.render import render

router = APIRouter(include_in_schema=False)


@router.get("/staff/facilities/{facility_id}/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    facility: AuditedFacility,
    staff: CurrentStaff,
    db: DbSession,
    before_id: BeforeId = None,
    tag: TagPrefix = "",
) -> HTMLResponse:
    chain = viewer.chain_status(db)
    page = viewer.facility_events(db, facility.id, before_id=before_id, tag=tag)
    return render(
        request,
        "audit/list.html",
        {
            "staff": staff,
            "facility": facility,
            "page": page,
            "chain": chain,
            "before_id": before_id,
        },
    )
