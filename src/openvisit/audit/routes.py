"""The audit log viewer: JSON API and the staff page, one facility at a time."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from openvisit.audit import viewer
from openvisit.audit.models import AuditEvent
from openvisit.auth.permissions import Permission
from openvisit.deps import CurrentStaff, DbSession
from openvisit.facilities.service import access_facility
from openvisit.web.render import render

api = APIRouter(prefix="/api/v1", tags=["audit"])
pages = APIRouter(include_in_schema=False)

VIEW_AUDIT = {"x-permission": Permission.VIEW_AUDIT.value}


class AuditEventOut(BaseModel):
    id: int
    at: dt.datetime
    tag: str
    actor_type: str
    actor_id: int | None
    actor_label: str
    subject_type: str | None
    subject_id: int | None
    ip: str | None
    data: dict[str, Any]


class AuditPageOut(BaseModel):
    events: list[AuditEventOut]
    older_before_id: int | None


def _out(event: AuditEvent) -> AuditEventOut:
    return AuditEventOut(
        id=event.id,
        at=event.at,
        tag=event.tag,
        actor_type=event.actor_type,
        actor_id=event.actor_id,
        actor_label=event.actor_label,
        subject_type=event.subject_type,
        subject_id=event.subject_id,
        ip=event.ip,
        data=event.data or {},
    )


BeforeId = Annotated[int | None, Query(ge=1)]
TagPrefix = Annotated[str, Query(max_length=64)]


@api.get("/facilities/{facility_id}/audit", response_model=AuditPageOut, openapi_extra=VIEW_AUDIT)
def api_events(
    facility_id: int,
    staff: CurrentStaff,
    db: DbSession,
    before_id: BeforeId = None,
    tag: TagPrefix = "",
) -> AuditPageOut:
    """The facility's audit events, newest first, 50 at a time (``before_id`` pages back)."""
    facility = access_facility(db, staff, facility_id, Permission.VIEW_AUDIT)
    page = viewer.facility_events(db, facility.id, before_id=before_id, tag=tag)
    return AuditPageOut(events=[_out(e) for e in page.events], older_before_id=page.older_before_id)


@pages.get("/staff/facilities/{facility_id}/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    facility_id: int,
    staff: CurrentStaff,
    db: DbSession,
    before_id: BeforeId = None,
    tag: TagPrefix = "",
) -> HTMLResponse:
    facility = access_facility(db, staff, facility_id, Permission.VIEW_AUDIT)
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
