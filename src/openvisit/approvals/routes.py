"""Approval requests and decisions, blocks: API and pages."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from openvisit.approvals import service
from openvisit.approvals.pages import pages
from openvisit.approvals.schemas import (
    ApprovalOut,
    ApprovalRequest,
    BlockIn,
    BlockOut,
    Decision,
    ResidentFound,
)
from openvisit.auth.permissions import Permission
from openvisit.deps import (
    ClockDep,
    CurrentResident,
    CurrentStaff,
    CurrentVisitor,
    DbSession,
    SettingsDep,
)
from openvisit.facilities.models import Facility
from openvisit.facilities.service import access_facility
from openvisit.residents.models import Resident

api = APIRouter(prefix="/api/v1", tags=["approvals"])
__all__ = ["api", "pages"]


@api.get("/resident-lookup", response_model=ResidentFound)
def resident_lookup(
    visitor: CurrentVisitor,
    db: DbSession,
    facility_id: int,
    booking_number: Annotated[str, Query(max_length=40)],
    last_name: Annotated[str, Query(max_length=100)],
) -> ResidentFound:
    """Find a resident by booking number and last name (both must match)."""
    resident = service.find_resident_for_visitor(db, facility_id, booking_number, last_name)
    facility = db.get(Facility, resident.facility_id)
    assert facility is not None
    return ResidentFound(
        id=resident.id,
        first_name=resident.first_name,
        last_initial=resident.last_name[:1],
        facility_id=facility.id,
        facility_name=facility.name,
    )


@api.post("/me/approvals", response_model=ApprovalOut, status_code=201)
def request_approval(
    body: ApprovalRequest, visitor: CurrentVisitor, db: DbSession, clock: ClockDep
) -> ApprovalOut:
    resident = db.get(Resident, body.resident_id)
    if resident is None:
        from openvisit.errors import Code, NotFound

        raise NotFound("We couldn't find that resident.", code=Code.RESIDENT_NOT_FOUND)
    approval = service.request_approval(
        db,
        clock,
        visitor.visitor,
        visitor.actor,
        resident=resident,
        relationship=body.relationship,
        minors=[m.model_dump() for m in body.minors],
    )
    return ApprovalOut.model_validate(approval)


@api.get("/me/approvals", response_model=list[ApprovalOut])
def my_approvals(visitor: CurrentVisitor, db: DbSession) -> list[ApprovalOut]:
    return [ApprovalOut.model_validate(a) for a in service.for_visitor(db, visitor.visitor.id)]


@api.get(
    "/facilities/{facility_id}/approvals",
    response_model=list[ApprovalOut],
    openapi_extra={"x-permission": Permission.REVIEW_VISITORS.value},
)
def pending_approvals(facility_id: int, staff: CurrentStaff, db: DbSession) -> list[ApprovalOut]:
    access_facility(db, staff, facility_id, Permission.REVIEW_VISITORS)
    return [ApprovalOut.model_validate(a) for a in service.pending_for_facility(db, facility_id)]


def _decide(
    facility_id: int,
    approval_id: int,
    approve: bool,
    body: Decision,
    staff: CurrentStaff,
    db: DbSession,
    clock: ClockDep,
    settings: SettingsDep,
) -> ApprovalOut:
    access_facility(db, staff, facility_id, Permission.REVIEW_VISITORS)
    approval = service.decide(
        db,
        clock,
        settings,
        staff.actor,
        staff.member.id,
        facility_id=facility_id,
        approval_id=approval_id,
        approve=approve,
        reason=body.reason,
    )
    return ApprovalOut.model_validate(approval)


@api.post(
    "/facilities/{facility_id}/approvals/{approval_id}/approve",
    response_model=ApprovalOut,
    openapi_extra={"x-permission": Permission.REVIEW_VISITORS.value},
)
def approve(
    facility_id: int,
    approval_id: int,
    body: Decision,
    staff: CurrentStaff,
    db: DbSession,
    clock: ClockDep,
    settings: SettingsDep,
) -> ApprovalOut:
    return _decide(facility_id, approval_id, True, body, staff, db, clock, settings)


@api.post(
    "/facilities/{facility_id}/approvals/{approval_id}/deny",
    response_model=ApprovalOut,
    openapi_extra={"x-permission": Permission.REVIEW_VISITORS.value},
)
def deny(
    facility_id: int,
    approval_id: int,
    body: Decision,
    staff: CurrentStaff,
    db: DbSession,
    clock: ClockDep,
    settings: SettingsDep,
) -> ApprovalOut:
    return _decide(facility_id, approval_id, False, body, staff, db, clock, settings)


@api.post(
    "/facilities/{facility_id}/approvals/{approval_id}/revoke",
    response_model=ApprovalOut,
    openapi_extra={"x-permission": Permission.REVIEW_VISITORS.value},
)
def revoke(
    facility_id: int,
    approval_id: int,
    body: Decision,
    staff: CurrentStaff,
    db: DbSession,
    clock: ClockDep,
) -> ApprovalOut:
    access_facility(db, staff, facility_id, Permission.REVIEW_VISITORS)
    approval = service.revoke(
        db,
        clock,
        staff.actor,
        staff.member.id,
        facility_id=facility_id,
        approval_id=approval_id,
        reason=body.reason,
    )
    return ApprovalOut.model_validate(approval)


@api.post(
    "/facilities/{facility_id}/blocks",
    response_model=BlockOut,
    status_code=201,
    openapi_extra={"x-permission": Permission.REVIEW_VISITORS.value},
)
def block(
    facility_id: int, body: BlockIn, staff: CurrentStaff, db: DbSession, clock: ClockDep
) -> BlockOut:
    access_facility(db, staff, facility_id, Permission.REVIEW_VISITORS)
    created = service.block_visitor(
        db,
        clock,
        staff.actor,
        staff.member.id,
        facility_id=facility_id,
        visitor_id=body.visitor_id,
        resident_id=body.resident_id,
        reason=body.reason,
        until=body.until,
    )
    return BlockOut.model_validate(created)


@api.delete(
    "/facilities/{facility_id}/blocks/{block_id}",
    response_model=BlockOut,
    openapi_extra={"x-permission": Permission.REVIEW_VISITORS.value},
)
def lift_block(
    facility_id: int, block_id: int, staff: CurrentStaff, db: DbSession, clock: ClockDep
) -> BlockOut:
    access_facility(db, staff, facility_id, Permission.REVIEW_VISITORS)
    lifted = service.lift_block(db, clock, staff.actor, facility_id=facility_id, block_id=block_id)
    return BlockOut.model_validate(lifted)


@api.get("/kiosk/approval-requests", response_model=list[ApprovalOut])
def kiosk_requests(kiosk: CurrentResident, db: DbSession) -> list[ApprovalOut]:
    assert kiosk.resident_id is not None
    return [
        ApprovalOut.model_validate(a) for a in service.pending_for_resident(db, kiosk.resident_id)
    ]


@api.post("/kiosk/approval-requests/{approval_id}/decline", response_model=ApprovalOut)
def kiosk_decline(
    approval_id: int, kiosk: CurrentResident, db: DbSession, clock: ClockDep
) -> ApprovalOut:
    assert kiosk.resident_id is not None
    approval = service.resident_decline(
        db, clock, kiosk.actor, resident_id=kiosk.resident_id, approval_id=approval_id
    )
    return ApprovalOut.model_validate(approval)
