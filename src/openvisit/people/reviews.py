"""What identity checks and professional credentials share: a visitor sends something to
one facility, whose staff verify or reject it.

A review is found through the facility the caller authorized, so another facility's
reviews are "not found"; a decision is a compare-and-set on the pending row, so two
colleagues can't both decide, and the visitor is told by e-mail.
"""

from __future__ import annotations

from typing import Any, TypeVar, cast

from sqlalchemy import select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from openvisit import audit
from openvisit.audit.service import AuditActor
from openvisit.clock import Clock
from openvisit.config import Settings
from openvisit.errors import Code, Conflict, InvalidInput, NotFound
from openvisit.facilities.models import Facility
from openvisit.notifications.service import queue_email
from openvisit.people.models import Reviewed, ReviewStatus, Visitor

R = TypeVar("R", bound=Reviewed)


class AlreadyDecided(Conflict):
    code = Code.ALREADY_DECIDED
    message = "A colleague already decided this."


def chosen_facility(session: Session, facility_id: int | None) -> Facility:
    """The facility a visitor sends a review to."""
    facility = session.get(Facility, facility_id) if facility_id else None
    if facility is None:
        raise InvalidInput(
            "Choose the facility you want to visit.", fields={"facility_id": "Choose a facility"}
        )
    return facility


def pending(session: Session, model: type[R], facility: Facility) -> list[tuple[R, Visitor]]:
    """This facility's reviews waiting for a decision, oldest first, with their visitors."""
    rows = session.execute(
        select(model, Visitor)
        .join(Visitor, Visitor.id == model.visitor_id)
        .where(model.facility_id == facility.id, model.status == ReviewStatus.PENDING)
        .order_by(model.submitted_at, model.id)
    )
    return [(review, visitor) for review, visitor in rows]


def access(
    session: Session, model: type[R], facility: Facility, review_id: int, *, missing: str
) -> tuple[R, Visitor]:
    """A review of this facility; another facility's answers "not found" (``missing``)."""
    review = session.scalar(
        select(model).where(model.id == review_id, model.facility_id == facility.id)
    )
    if review is None:
        raise NotFound(missing)
    visitor = session.get(Visitor, review.visitor_id)
    assert visitor is not None
    return review, visitor


def check_reason(verified: bool, reason: str) -> str:
    reason = reason.strip()
    if verified:
        return ""
    if not reason:
        msg = "Enter the reason, which the visitor will see"
        raise InvalidInput(msg + ".", fields={"reason": msg})
    if len(reason) > 500:
        msg = "The reason must be 500 characters or fewer"
        raise InvalidInput(msg + ".", fields={"reason": msg})
    return reason


def decide(
    session: Session,
    clock: Clock,
    actor: AuditActor,
    facility: Facility,
    model: type[R],
    review_id: int,
    *,
    verified: bool,
    reason: str,
    missing: str,
    tag: str,
    subject: str,
) -> tuple[R, Visitor]:
    """Verify or reject a pending review; audited as ``{tag}:verified`` (or rejected)
    about ``(subject, id)``. A rejection needs a reason, which the visitor will see."""
    now = clock.now()
    reason = check_reason(verified, reason)
    review, visitor = access(session, model, facility, review_id, missing=missing)
    status = ReviewStatus.VERIFIED if verified else ReviewStatus.REJECTED
    decided = cast(
        CursorResult[Any],
        session.execute(
            update(model)
            .where(model.id == review.id, model.status == ReviewStatus.PENDING)
            .values(status=status, reason=reason, reviewed_at=now, reviewed_by_staff_id=actor.id)
            .execution_options(synchronize_session=False)
        ),
    )
    if decided.rowcount != 1:
        raise AlreadyDecided()
    session.refresh(review)
    audit.service.record(
        session,
        tag=f"{tag}:{status.value}",
        actor=actor,
        at=now,
        facility_id=facility.id,
        subject=(subject, review.id),
        data={"visitor_id": visitor.id, "reason": reason},
    )
    return review, visitor


def tell_visitor(
    session: Session, clock: Clock, settings: Settings, visitor: Visitor, subject: str, text: str
) -> None:
    """E-mail the visitor what was decided."""
    queue_email(
        session,
        clock,
        settings,
        to=visitor.email,
        subject=subject,
        body=f"Hello {visitor.legal_name},\n\n{text}",
    )
    session.flush()
