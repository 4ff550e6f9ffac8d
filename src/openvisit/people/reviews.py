"""What identity checks and professional credentials share: a visitor sends something to
one facility, whose staff verify or reject it.

A review is found through the facility the caller authorized, so another facility's
reviews are "not found"; a decision is a compare-and-set on the pending row, so two
colleagues can't both decide, and the visitor is told by e-mail.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

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


@dataclass(frozen=True)
class Kind(Generic[R]):
    """One kind of review: its rows, and the words for it in messages and the audit log."""

    model: type[R]
    missing: str  # the message when a review of another facility (or none) is asked for
    tag: str  # decisions are audited as "{tag}:verified" or "{tag}:rejected"
    subject: str  # about ("{subject}", id)
    # The e-mail that tells the visitor a decision: (subject, text).
    letter: Callable[[R, Facility, Settings], tuple[str, str]]
    # What else a decision changes (an identity check: the facility's verification and
    # the visitor's identity status), in the decision's transaction.
    decided: Callable[[Session, R, Visitor], None] | None = None
    # What follows a decision, once it is recorded (an identity check: the documents it
    # replaced are deleted): (session, settings, review, who decided, when).
    then: Callable[[Session, Settings, R, AuditActor, dt.datetime], None] | None = None


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


def record(
    session: Session,
    kind: Kind[R],
    review: R,
    what: str,
    actor: AuditActor,
    now: dt.datetime,
    data: dict[str, Any] | None = None,
) -> None:
    """Audit what happened to a review (its row flushed): "submitted", "verified"..."""
    audit.service.record(
        session,
        tag=f"{kind.tag}:{what}",
        actor=actor,
        at=now,
        facility_id=review.facility_id,
        subject=(kind.subject, review.id),
        data=data,
    )


def pending(session: Session, kind: Kind[R], facility: Facility) -> list[tuple[R, Visitor]]:
    """This facility's reviews waiting for a decision, oldest first, with their visitors.
    The caller authorized the facility."""
    model = kind.model
    rows = session.execute(
        select(model, Visitor)
        .join(Visitor, Visitor.id == model.visitor_id)
        .where(model.facility_id == facility.id, model.status == ReviewStatus.PENDING)
        .order_by(model.submitted_at, model.id)
    )
    return [(review, visitor) for review, visitor in rows]


def access(
    session: Session, kind: Kind[R], facility: Facility, review_id: int
) -> tuple[R, Visitor]:
    """A review of this facility; another facility's answers "not found"."""
    model = kind.model
    review = session.scalar(
        select(model).where(model.id == review_id, model.facility_id == facility.id)
    )
    if review is None:
        raise NotFound(kind.missing)
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
    settings: Settings,
    actor: AuditActor,
    facility: Facility,
    kind: Kind[R],
    review_id: int,
    *,
    verified: bool,
    reason: str = "",
) -> tuple[R, Visitor]:
    """Verify or reject a pending review of this facility, and tell the visitor by e-mail.
    A rejection needs a reason, which the visitor will see."""
    now = clock.now()
    reason = check_reason(verified, reason)
    review, visitor = access(session, kind, facility, review_id)
    model = kind.model
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
    if kind.decided is not None:
        kind.decided(session, review, visitor)
    record(
        session,
        kind,
        review,
        status.value,
        actor,
        now,
        {"visitor_id": visitor.id, "reason": reason},
    )
    if kind.then is not None:
        kind.then(session, settings, review, actor, now)
    subject, text = kind.letter(review, facility, settings)
    queue_email(
        session,
        clock,
        settings,
        to=visitor.email,
        subject=subject,
        body=f"Hello {visitor.legal_name},\n\n{text}",
    )
    session.flush()
    return review, visitor
