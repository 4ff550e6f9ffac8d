"""Who may visit whom, JSON API: a family asks, staff decide, revoke and block, a resident
declines at the kiosk."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from openvisit.approvals import service
from openvisit.approvals.models import Approval
from openvisit.approvals.schemas import (
    ApprovalOut,
    ApprovalRequest,
    BlockIn,
    BlockOut,
    Decision,
    ResidentFound,
)
from openvisit.deps import (
    ClockDep,
    CurrentResident,
    CurrentStaff,
    CurrentVisitor,
    DbSession,
    Id,
    ReviewingFacility,
    SettingsDep,
)
from openvisit.facilities.models import Facility

router = APIRouter(prefix="/api/v1", tags=["approvals"])


@router.get("/resident-lookup", response_model=ResidentFound)
def resident_lookup(
    visitor: CurrentVisitor,
    db: DbSession,
    facility_id: Id,
    booking_number: Annotated[str, Query(max_length=40)],
    last_name: Annotated[str, Query(max_length=100)],
) -> ResidentFound:
    """Find a resident by booking number and last name (both must match). Any mismatch,
    whatever exists, answers the same "not found"."""
    resident = service.find_resident_for_visitor(db, facility_id, booking_number, last_name)
    facility = db.get(Facility, resident.facility_id)
    assert facility is not None  # a resident's facility is never deleted
    return ResidentFound(
        first_name=resident.first_name,
        last_initial=resident.last_name[:1],
        facility_id=facility.id,
        facility_name=facility.name,
    )


@router.post("/me/approvals", response_model=ApprovalOut, status_code=201)
def request_approval(
    body: ApprovalRequest, visitor: CurrentVisitor, db: DbSession, clock: ClockDep
) -> ApprovalOut:
    approval = service.request_approval(
        db,
        clock,
        visitor.visitor,
        visitor.actor,
        resident=service.find_resident_for_visitor(
            db, body.facility_id, body.booking_number, body.last_name
        ),
        relationship=body.relationship,
        minors=[m.model_dump() for m in body.minors],
    )
    return ApprovalOut.model_validate(approval)


@router.get("/me/approvals", response_model=list[ApprovalOut])
def my_approvals(visitor: CurrentVisitor, db: DbSession) -> list[ApprovalOut]:
    return [ApprovalOut.model_validate(a) for a in service.for_visitor(db, visitor.visitor.id)]


@router.get("/facilities/{facility_id}/approvals", response_model=list[ApprovalOut])
def pending_approvals(facility: ReviewingFacility, db: DbSession) -> list[ApprovalOut]:
    return [ApprovalOut.model_validate(a) for a in service.pending_for_facility(db, facility.id)]


class Reviewer:
    """A staff member deciding requests at their facility, with what a decision needs (the
    API's approve and deny, and the queue page and its decisions)."""

    def __init__(
        self,
        facility: ReviewingFacility,
        staff: CurrentStaff,
        db: DbSession,
        clock: ClockDep,
        settings: SettingsDep,
    ) -> None:
        self.facility = facility
        self.staff = staff
        self.db = db
        self.clock = clock
        self.settings = settings

    def decide(self, approval_id: Id, *, approve: bool, reason: str) -> Approval:
        return service.decide(
            self.db,
            self.clock,
            self.settings,
            self.staff.actor,
            self.staff.member.id,
            facility_id=self.facility.id,
            approval_id=approval_id,
            approve=approve,
            reason=reason,
        )


DecidingReviewer = Annotated[Reviewer, Depends()]


@router.post(
    "/facilities/{facility_id}/approvals/{approval_id}/approve", response_model=ApprovalOut
)
def approve(approval_id: Id, body: Decision, reviewer: DecidingReviewer) -> ApprovalOut:
    return ApprovalOut.model_validate(
        reviewer.decide(approval_id, approve=True, reason=body.reason)
    )


@router.post("/facilities/{facility_id}/approvals/{approval_id}/deny", response_model=ApprovalOut)
def deny(approval_id: Id, body: Decision, reviewer: DecidingReviewer) -> ApprovalOut:
    return ApprovalOut.model_validate(
        reviewer.decide(approval_id, approve=False, reason=body.reason)
    )


@router.post("/facilities/{facility_id}/approvals/{approval_id}/revoke", response_model=ApprovalOut)
def revoke(
    approval_id: Id,
    body: Decision,
    facility: ReviewingFacility,
    staff: CurrentStaff,
    db: DbSession,
    clock: ClockDep,
) -> ApprovalOut:
    approval = service.revoke(
        db,
        clock,
        staff.actor,
        staff.member.id,
        facility_id=facility.id,
        approval_id=approval_id,
        reason=body.reason,
    )
    return ApprovalOut.model_validate(approval)


@router.post("/facilities/{facility_id}/blocks", response_model=BlockOut, status_code=201)
def block(
    body: BlockIn, facility: ReviewingFacility, staff: CurrentStaff, db: DbSession, clock: ClockDep
) -> BlockOut:
    created = service.block_visitor(
        db, clock, staff.actor, staff.member.id, facility_id=facility.id, **body.model_dump()
    )
    return BlockOut.model_validate(created)


@router.delete("/facilities/{facility_id}/blocks/{block_id}", response_model=BlockOut)
def lift_block(
    block_id: Id, facility: ReviewingFacility, staff: CurrentStaff, db: DbSession, clock: ClockDep
) -> BlockOut:
    lifted = service.lift_block(db, clock, staff.actor, facility_id=facility.id, block_id=block_id)
    return BlockOut.model_validate(lifted)


@router.get("/kiosk/approval-requests", response_model=list[ApprovalOut])
def kiosk_requests(kiosk: CurrentResident, db: DbSession) -> list[ApprovalOut]:
    assert kiosk.resident_id is not None  # CurrentResident has one
    return [
        ApprovalOut.model_validate(a) for a in service.pending_for_resident(db, kiosk.resident_id)
    ]


@router.post("/kiosk/approval-requests/{approval_id}/decline", response_model=ApprovalOut)
def kiosk_decline(
    approval_id: Id, kiosk: CurrentResident, db: DbSession, clock: ClockDep
) -> ApprovalOut:
    assert kiosk.resident_id is not None  # CurrentResident has one
    approval = service.resident_decline(
        db, clock, kiosk.actor, resident_id=kiosk.resident_id, approval_id=approval_id
    )
    return ApprovalOut.model_validate(approval)
