"""The audit log, one facility at a time: JSON API."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from openvisit.audit import viewer
from openvisit.audit.schemas import AuditEventOut, AuditPageOut
from openvisit.deps import AuditedFacility, DbSession, Id

router = APIRouter(prefix="/api/v1", tags=["audit"])

BeforeId = Annotated[Id | None, Query()]
TagPrefix = Annotated[str, Query(max_length=64)]


@router.get("/facilities/{facility_id}/audit", response_model=AuditPageOut)
def api_events(
    facility: AuditedFacility, db: DbSession, before_id: BeforeId = None, tag: TagPrefix = ""
) -> AuditPageOut:
    """The facility's audit events, newest first, 50 at a time (``before_id`` pages back)."""
    page = viewer.facility_events(db, facility.id, before_id=before_id, tag=tag)
    return AuditPageOut(
        events=[AuditEventOut.of(e) for e in page.events], older_before_id=page.older_before_id
    )
