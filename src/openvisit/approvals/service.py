"""Who may visit whom: approval requests and decisions, blocks, and the eligibility check."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date
from sqlalchemy import ColumnElement, Select, and_, bindparam, func, or_, select
from sqlalchemy.orm import Session

from openvisit import audit, bounds
from openvisit.approvals.models import ACTIVE_APPROVAL, Approval, ApprovalStatus, Block
from openvisit.audit.service import AuditActor
from openvisit.clock import Clock
from openvisit.config import Settings
from openvisit.errors import Code, Conflict, DomainError, InvalidInput, NotFound
from openvisit.facilities.models import Facility, FacilitySettings
from openvisit.notifications import service as notifications
from openvisit.people import verifications
from openvisit.people.models import (
    ProfessionalCredential,
    ReviewStatus,
    Visitor,
)
from openvisit.residents.models import CustodyStatus, Resident

PROFESSIONAL_RELATIONSHIPS = {"attorney", "clergy"}


class NotEligible(DomainError):
    """A rule says this visitor can't visit this resident (now). Not a validation error."""


def _clean_text(value: str, field: str, label: str, max_len: int) -> str:
    value = value.strip()
    if not value:
        raise InvalidInput(f"Enter {label}.", fields={field: f"Enter {label}"})
    if len(value) > max_len:
        raise InvalidInput(
            f"{label.capitalize()} must be {max_len} characters or fewer.",
            fields={field: f"Use {max_len} characters or fewer"},
        )
    return value


def _clean_minors(minors: Sequence[dict[str, str]], today: dt.date) -> list[dict[str, str]]:
    cleaned = []
    for index, minor in enumerate(minors):
        name = (minor.get("name") or "").strip()
        if not name or len(name) > 120:
            raise InvalidInput(
                "Enter each child's name.",
                fields={f"minors.{index}.name": "Enter the child's name"},
            )
        try:
            born = bounds.parse_date(minor.get("date_of_birth") or "")
        except ValueError:
            raise InvalidInput(
                "Enter each child's date of birth as a real date.",
                fields={f"minors.{index}.date_of_birth": "Enter a real date of birth"},
            ) from None
        age = (today - born).days // 365
        if born >= today or age >= 18:
            raise InvalidInput(
                f"{name} must be under 18 to be listed as a child.",
                fields={f"minors.{index}.date_of_birth": "A child must be under 18"},
            )
        cleaned.append({"name": name, "date_of_birth": born.isoformat()})
    if len(cleaned) > 6:
        raise InvalidInput("List at most 6 children.", fields={"minors": "At most 6 children"})
    return cleaned


def find_resident_for_visitor(
    session: Session, facility_id: int, booking_number: str, last_name: str
) -> Resident:
    """A visitor finds a resident by booking number AND last name, so numbers can't be
    enumerated to learn names. Every mismatch (no such facility, number or name, or a
    resident no longer held) is the same "not found", so an answer tells nothing about
    what exists where. The pages and the API both come this way; neither takes a raw
    resident id from a visitor."""
    resident = session.scalar(
        select(Resident).where(
            Resident.facility_id == facility_id,
            func.lower(Resident.booking_number) == booking_number.strip().lower(),
        )
    )
    if (
        resident is None
        or resident.last_name.lower() != last_name.strip().lower()
        or resident.custody_status != CustodyStatus.IN_CUSTODY
    ):
        raise NotFound(
            "We couldn't find that resident. The number may be wrong, or they may have moved.",
            code=Code.RESIDENT_NOT_FOUND,
        )
    return resident


def _active_blocks(
    session: Session,
    visitor_id: int,
    facility_id: int,
    now: dt.datetime,
    resident_id: int | None = None,
) -> list[Block]:
    query = select(Block).where(
        Block.visitor_id == visitor_id,
        Block.facility_id == facility_id,
        Block.lifted_at.is_(None),
        or_(Block.until.is_(None), Block.until > now),
    )
    if resident_id is not None:
        query = query.where(or_(Block.resident_id.is_(None), Block.resident_id == resident_id))
    return list(session.scalars(query))


def check_not_blocked(
    session: Session, visitor_id: int, facility_id: int, resident_id: int, now: dt.datetime, tz: str
) -> None:
    blocks = _active_blocks(session, visitor_id, facility_id, now, resident_id)
    if blocks:
        raise NotEligible(_blocked_message(blocks[0].until, tz), code=Code.VISITOR_BLOCKED)


def request_approval(
    session: Session,
    clock: Clock,
    visitor: Visitor,
    actor: AuditActor,
    *,
    resident: Resident,
    relationship: str,
    minors: Sequence[dict[str, str]] = (),
) -> Approval:
    now = clock.now()
    relationship = _clean_text(relationship, "relationship", "your relationship", 60).lower()
    facility = session.get(Facility, resident.facility_id)
    assert facility is not None
    if not verifications.verified_at(session, visitor.id, facility.id):
        raise NotEligible(_not_verified_message(facility), code=Code.IDENTITY_NOT_VERIFIED)
    check_not_blocked(session, visitor.id, facility.id, resident.id, now, facility.timezone)
    existing = session.scalar(
        select(Approval).where(
            Approval.visitor_id == visitor.id,
            Approval.resident_id == resident.id,
            Approval.status.in_(ACTIVE_APPROVAL),
        )
    )
    if existing is not None:
        if existing.status == ApprovalStatus.APPROVED:
            raise Conflict(
                "You're already approved to visit this resident.", code=Code.ALREADY_APPROVED
            )
        raise Conflict(
            "You've already asked to visit this resident. We'll e-mail you when staff decide.",
            code=Code.ALREADY_REQUESTED,
        )
    _check_limit(session, resident)
    approval = Approval(
        facility_id=facility.id,
        visitor_id=visitor.id,
        resident_id=resident.id,
        relationship=relationship,
        minors=_clean_minors(minors, now.date()),
        status=ApprovalStatus.PENDING,
        requested_at=now,
    )
    session.add(approval)
    _audit(
        session,
        actor,
        now,
        "approval:requested",
        approval,
        {"resident_id": resident.id, "relationship": relationship},
    )
    return approval


def _not_verified_message(facility: Facility) -> str:
    return (
        f"{facility.name} needs to check your identity before you can ask to visit there. "
        f"Upload your photo ID and choose {facility.name}."
    )


def _check_limit(session: Session, resident: Resident) -> None:
    settings = session.get(FacilitySettings, resident.facility_id)
    limit = settings.approved_visitors_per_resident if settings else 10
    approved = (
        session.scalar(
            select(func.count()).where(
                Approval.resident_id == resident.id, Approval.status == ApprovalStatus.APPROVED
            )
        )
        or 0
    )
    if approved >= limit:
        raise Conflict(
            f"This resident already has {approved} approved visitors, the most the "
            "facility allows.",
            code=Code.APPROVAL_LIMIT_REACHED,
        )


def _audit(
    session: Session,
    actor: AuditActor,
    now: dt.datetime,
    tag: str,
    row: Approval | Block,
    data: dict[str, Any] | None = None,
) -> None:
    """Audit an event at the row's facility: an approval is its own subject; a block's
    subject is the visitor it blocks."""
    session.flush()  # a new row's id
    subject = ("approval", row.id) if isinstance(row, Approval) else ("visitor", row.visitor_id)
    audit.service.record(
        session,
        tag=tag,
        actor=actor,
        at=now,
        facility_id=row.facility_id,
        subject=subject,
        data=data,
    )


def access_approval(
    session: Session, facility_id: int, approval_id: int, for_update: bool = False
) -> Approval:
    query = select(Approval).where(Approval.id == approval_id, Approval.facility_id == facility_id)
    if for_update:
        query = query.with_for_update()
    approval = session.scalar(query)
    if approval is None:
        raise NotFound("We couldn't find that request.")
    return approval


def _notify(
    session: Session, clock: Clock, settings: Settings, approval: Approval, subject: str, body: str
) -> None:
    visitor = session.get(Visitor, approval.visitor_id)
    if visitor is not None:
        notifications.queue_email(
            session, clock, settings, to=visitor.email, subject=subject, body=body
        )


def _record_decision(
    session: Session, actor: AuditActor, staff_id: int, now: dt.datetime, approval: Approval
) -> None:
    """Stamp a staff member's decision (its status and reason already set) and audit it
    as ``approval:<status>``."""
    approval.decided_at = now
    approval.decided_by_staff_id = staff_id
    _audit(
        session,
        actor,
        now,
        f"approval:{approval.status.value}",
        approval,
        {"reason": approval.reason},
    )


def decide(
    session: Session,
    clock: Clock,
    settings: Settings,
    actor: AuditActor,
    staff_id: int,
    *,
    facility_id: int,
    approval_id: int,
    approve: bool,
    reason: str = "",
) -> Approval:
    now = clock.now()
    approval = access_approval(session, facility_id, approval_id, for_update=True)
    if approval.status != ApprovalStatus.PENDING:
        raise Conflict(
            f"A colleague already decided this request ({approval.status.value}).",
            code=Code.ALREADY_DECIDED,
        )
    resident = session.get(Resident, approval.resident_id)
    assert resident is not None
    if approve:
        _check_limit(session, resident)
        approval.status = ApprovalStatus.APPROVED
        approval.reason = reason.strip()[:500]
    else:
        approval.reason = _clean_text(reason, "reason", "a reason", 500)
        approval.status = ApprovalStatus.DENIED
    _record_decision(session, actor, staff_id, now, approval)
    name = resident.full_name
    if approve:
        _notify(
            session,
            clock,
            settings,
            approval,
            f"Approved: you can book visits with {name}",
            f"You're approved to visit {name}. Sign in to book a visit.",
        )
    else:
        _notify(
            session,
            clock,
            settings,
            approval,
            f"Not approved: your request to visit {name}",
            f"Your request to visit {name} was not approved.\n\nReason: {approval.reason}",
        )
    return approval


def revoke(
    session: Session,
    clock: Clock,
    actor: AuditActor,
    staff_id: int,
    *,
    facility_id: int,
    approval_id: int,
    reason: str,
) -> Approval:
    now = clock.now()
    approval = access_approval(session, facility_id, approval_id, for_update=True)
    if approval.status != ApprovalStatus.APPROVED:
        raise Conflict("Only an approved visitor can be revoked.", code=Code.NOT_APPROVED)
    approval.reason = _clean_text(reason, "reason", "a reason", 500)
    approval.status = ApprovalStatus.REVOKED
    _record_decision(session, actor, staff_id, now, approval)
    return approval


def resident_decline(
    session: Session, clock: Clock, actor: AuditActor, *, resident_id: int, approval_id: int
) -> Approval:
    now = clock.now()
    approval = session.scalar(
        select(Approval)
        .where(Approval.id == approval_id, Approval.resident_id == resident_id)
        .with_for_update()
    )
    if approval is None:
        raise NotFound("We couldn't find that request.")
    if approval.status != ApprovalStatus.PENDING:
        raise Conflict("This request was already decided.", code=Code.ALREADY_DECIDED)
    approval.status = ApprovalStatus.DECLINED
    approval.reason = "Declined by the resident"
    approval.decided_at = now
    _audit(session, actor, now, "approval:declined_by_resident", approval)
    return approval


def has_asked(session: Session, visitor_id: int, resident_id: int) -> bool:
    """Whether the visitor ever asked to visit this resident (whatever came of it)."""
    asked = session.scalar(
        select(Approval.id)
        .where(Approval.visitor_id == visitor_id, Approval.resident_id == resident_id)
        .limit(1)
    )
    return asked is not None


def approval_for(session: Session, visitor_id: int, resident_id: int) -> Approval | None:
    return session.scalar(
        select(Approval).where(
            Approval.visitor_id == visitor_id,
            Approval.resident_id == resident_id,
            Approval.status == ApprovalStatus.APPROVED,
        )
    )


@dataclass(frozen=True)
class Standing:
    """What the booking rules need of a visitor and their approval for one resident."""

    id: int  # the visitor's
    identity_verified: bool  # at this facility (people.verifications)
    approval_id: int | None
    relationship: str
    minors: list[dict[str, str]]
    block_until: dt.datetime | None
    blocked: bool
    closed: bool = False  # the visitor closed their account


# The visitor, their approval for this resident and an active block, in one Core query
# built once: this runs for every availability search and booking.
_STANDING = (
    select(
        Visitor.id,
        verifications.counts_at(Visitor.id, bindparam("facility_id")).label("identity_verified"),
        Visitor.closed_at,
        Approval.id.label("approval_id"),
        Approval.relationship,
        Approval.minors,
        Block.id.label("block_id"),
        Block.until,
    )
    .outerjoin(
        Approval,
        and_(
            Approval.visitor_id == Visitor.id,
            Approval.resident_id == bindparam("resident_id"),
            Approval.status == ApprovalStatus.APPROVED,
        ),
    )
    .outerjoin(
        Block,
        and_(
            Block.visitor_id == Visitor.id,
            Block.facility_id == bindparam("facility_id"),
            Block.lifted_at.is_(None),
            or_(Block.until.is_(None), Block.until > bindparam("now")),
            or_(Block.resident_id.is_(None), Block.resident_id == bindparam("resident_id")),
        ),
    )
    .where(Visitor.id == bindparam("visitor_id"))
    .limit(1)
)


def standing(
    session: Session, *, visitor_id: int, resident_id: int, facility_id: int, now: dt.datetime
) -> Standing:
    row = (
        session.connection()
        .execute(
            _STANDING,
            {
                "visitor_id": visitor_id,
                "resident_id": resident_id,
                "facility_id": facility_id,
                "now": now,
            },
        )
        .first()
    )
    if row is None:
        raise NotFound("We couldn't find that visitor.", code=Code.VISITOR_NOT_FOUND)
    return Standing(
        id=row.id,
        identity_verified=bool(row.identity_verified),
        approval_id=row.approval_id,
        relationship=row.relationship or "",
        minors=list(row.minors or []),
        block_until=row.until,
        blocked=row.block_id is not None,
        closed=row.closed_at is not None,
    )


def _blocked_message(until_at: dt.datetime | None, tz: str) -> str:
    """The refusal a blocked visitor reads (through the API and on the pages alike), the
    block's end as a date in the facility's zone."""
    until = ""
    if until_at:
        day = until_at.astimezone(ZoneInfo(tz)).date()
        until = f" until {format_date(day, 'd MMMM yyyy', locale='en_US')}"
    return (
        f"You can't visit at this facility{until}. Contact the facility if you think this is wrong."
    )


def check_eligible(
    session: Session,
    *,
    visitor: Standing,
    resident: Resident,
    facility: Facility,
    professional: bool,
) -> Standing:
    """Every standing rule between this visitor and this resident (``visitor`` comes from
    ``standing``); returns it when all hold, the approval's relationship and minors in it."""
    if resident.custody_status != CustodyStatus.IN_CUSTODY:
        raise NotEligible(
            "This resident is no longer at the facility.", code=Code.RESIDENT_NOT_IN_CUSTODY
        )
    if visitor.closed:
        raise NotEligible("This visitor's account is closed.", code=Code.ACCOUNT_CLOSED)
    if not visitor.identity_verified:
        raise NotEligible(_not_verified_message(facility), code=Code.IDENTITY_NOT_VERIFIED)
    if visitor.blocked:
        raise NotEligible(
            _blocked_message(visitor.block_until, facility.timezone), code=Code.VISITOR_BLOCKED
        )
    if visitor.approval_id is None:
        raise NotEligible(
            "You're not approved to visit this resident yet.", code=Code.VISITOR_NOT_APPROVED
        )
    if professional:
        if visitor.relationship not in PROFESSIONAL_RELATIONSHIPS:
            raise NotEligible(
                "Privileged visits are for attorneys and clergy with their clients.",
                code=Code.NOT_A_PROFESSIONAL,
            )
        credential = session.scalar(
            select(ProfessionalCredential).where(
                ProfessionalCredential.visitor_id == visitor.id,
                ProfessionalCredential.facility_id == facility.id,
                ProfessionalCredential.kind == visitor.relationship,
                ProfessionalCredential.status == ReviewStatus.VERIFIED,
            )
        )
        if credential is None:
            raise NotEligible(
                "Your professional credential hasn't been verified at this facility.",
                code=Code.CREDENTIAL_NOT_VERIFIED,
            )
    return visitor


def block_visitor(
    session: Session,
    clock: Clock,
    actor: AuditActor,
    staff_id: int,
    *,
    facility_id: int,
    visitor_id: int,
    resident_id: int | None,
    reason: str,
    until: dt.datetime | None,
) -> Block:
    now = clock.now()
    if session.get(Visitor, visitor_id) is None:
        raise NotFound("We couldn't find that visitor.")
    if resident_id is not None:
        resident = session.get(Resident, resident_id)
        if resident is None or resident.facility_id != facility_id:
            raise NotFound("We couldn't find that resident.")
    if until is not None and until <= now:
        raise InvalidInput(
            "The end of the block must be in the future.",
            fields={"until": "Enter a date in the future"},
        )
    block = Block(
        facility_id=facility_id,
        visitor_id=visitor_id,
        resident_id=resident_id,
        reason=_clean_text(reason, "reason", "a reason", 500),
        until=until,
        created_by_staff_id=staff_id,
        created_at=now,
    )
    session.add(block)
    _audit(
        session,
        actor,
        now,
        "visitor:blocked",
        block,
        {
            "resident_id": resident_id,
            "reason": block.reason,
            "until": until.isoformat() if until else None,
        },
    )
    return block


def lift_block(
    session: Session, clock: Clock, actor: AuditActor, *, facility_id: int, block_id: int
) -> Block:
    now = clock.now()
    block = session.scalar(
        select(Block).where(Block.id == block_id, Block.facility_id == facility_id)
    )
    if block is None:
        raise NotFound("We couldn't find that block.")
    if block.lifted_at is not None:
        raise Conflict("This block was already lifted.", code=Code.ALREADY_LIFTED)
    block.lifted_at = now
    _audit(session, actor, now, "visitor:block_lifted", block)
    return block


def _pending(session: Session, *where: ColumnElement[bool]) -> list[Approval]:
    """Requests waiting for a decision, oldest first."""
    query = select(Approval).where(*where, Approval.status == ApprovalStatus.PENDING)
    return list(session.scalars(query.order_by(Approval.requested_at)))


def pending_for_facility(session: Session, facility_id: int) -> list[Approval]:
    return _pending(session, Approval.facility_id == facility_id)


@dataclass(frozen=True)
class ReviewQueue:
    """The facility's requests waiting for a decision, oldest first, with who asked and
    whom they asked to visit."""

    pending: list[Approval]
    visitors: dict[int, Visitor]
    residents: dict[int, Resident]
    verified_here: set[int]  # visitors whose identity counts at this facility


def review_queue(session: Session, facility_id: int) -> ReviewQueue:
    pending = pending_for_facility(session, facility_id)
    visitors = session.scalars(
        select(Visitor).where(Visitor.id.in_({a.visitor_id for a in pending}))
    )
    residents = session.scalars(
        select(Resident).where(Resident.id.in_({a.resident_id for a in pending}))
    )
    found = {v.id: v for v in visitors}
    verified = set(
        session.scalars(
            select(Visitor.id).where(
                Visitor.id.in_(found), verifications.counts_at(Visitor.id, facility_id)
            )
        )
    )
    return ReviewQueue(pending, found, {r.id: r for r in residents}, verified)


def visitor_ids_at(facility_id: int) -> Select[Any]:
    """The ids of every visitor who ever asked to visit someone at this facility (any
    status), as a subquery for other domains' reports."""
    return select(Approval.visitor_id).where(Approval.facility_id == facility_id).distinct()


def linked_visitor_ids(facility_id: int) -> Select[Any]:
    """The ids of the visitors linked to this facility now: a request pending there or an
    approval, as a subquery (whom its staff may look up and record lobby money for)."""
    return (
        select(Approval.visitor_id)
        .where(Approval.facility_id == facility_id, Approval.status.in_(ACTIVE_APPROVAL))
        .distinct()
    )


def for_visitor(session: Session, visitor_id: int) -> list[Approval]:
    return list(
        session.scalars(
            select(Approval)
            .where(Approval.visitor_id == visitor_id)
            .order_by(Approval.requested_at.desc())
        )
    )


def visitor_timezone(session: Session, visitor_id: int) -> str:
    """Where a visitor's times are shown: the zone of the facility they most recently asked
    to visit someone at, else UTC."""
    mine = for_visitor(session, visitor_id)
    facility = session.get(Facility, mine[0].facility_id) if mine else None
    return facility.timezone if facility else "UTC"


def pending_for_resident(session: Session, resident_id: int) -> list[Approval]:
    return _pending(session, Approval.resident_id == resident_id)
