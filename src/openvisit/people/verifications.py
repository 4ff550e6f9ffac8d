"""Whose identity check counts where (issue 10, item 7).

A facility's staff confirm a visitor's identity (people.identity, people.reviews): that
confirmation belongs to the facility. It counts there, and at another facility only if
that one accepts other facilities' checks (``accepts_other_identity_checks``, off by
default). Booking and approval requests ask ``verified_at``; the booking rules' one query
uses ``counts_at`` as a column.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ColumnElement, and_, exists, or_, select, true
from sqlalchemy.orm import QueryableAttribute, Session

from openvisit.facilities.models import Facility, FacilitySettings
from openvisit.people.models import IdentityVerification

Ref = ColumnElement[int] | QueryableAttribute[int] | int


def counts_at(visitor_id: Ref, facility_id: Ref) -> ColumnElement[bool]:
    """True where the visitor's identity counts at the facility: checked by it, or by any
    facility if it accepts others' checks."""
    accepts_others = exists().where(
        FacilitySettings.facility_id == facility_id,
        FacilitySettings.accepts_other_identity_checks == true(),
    )
    return exists().where(
        and_(
            IdentityVerification.visitor_id == visitor_id,
            or_(IdentityVerification.facility_id == facility_id, accepts_others),
        )
    )


def verified_at(session: Session, visitor_id: int, facility_id: int) -> bool:
    return bool(session.scalar(select(counts_at(visitor_id, facility_id))))


def verified_anywhere(session: Session, visitor_id: int) -> bool:
    return bool(
        session.scalar(select(exists().where(IdentityVerification.visitor_id == visitor_id)))
    )


def facilities_that_verified(session: Session, visitor_id: int) -> list[Facility]:
    """The facilities whose staff confirmed this visitor's identity, by name."""
    return list(
        session.scalars(
            select(Facility)
            .join(IdentityVerification, IdentityVerification.facility_id == Facility.id)
            .where(IdentityVerification.visitor_id == visitor_id)
            .order_by(Facility.name)
        )
    )


def record_verification(
    session: Session,
    *,
    visitor_id: int,
    facility_id: int,
    at: dt.datetime,
    submission_id: int | None = None,
    staff_id: int | None = None,
) -> IdentityVerification:
    """Store that this facility confirmed the visitor's identity (once per facility)."""
    found = session.scalar(
        select(IdentityVerification).where(
            IdentityVerification.visitor_id == visitor_id,
            IdentityVerification.facility_id == facility_id,
        )
    )
    if found is not None:
        return found
    row = IdentityVerification(
        visitor_id=visitor_id,
        facility_id=facility_id,
        submission_id=submission_id,
        verified_by_staff_id=staff_id,
        verified_at=at,
    )
    session.add(row)
    session.flush()
    return row
