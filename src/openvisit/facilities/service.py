"""Facilities, housing units, visiting hours, closures, kiosks and settings."""

from __future__ import annotations

from sqlalchemy.orm import Session

from openvisit.auth.context import StaffContext
from openvisit.auth.permissions import Permission
from openvisit.errors import Forbidden, NotFound
from openvisit.facilities.models import Facility


def access_facility(session: Session, staff: StaffContext, facility_id: int,
                    permission: Permission = Permission.VIEW_FACILITY) -> Facility:
    """The facility, if this staff member works there and holds the permission.

    Another facility's id answers "not found" (never "forbidden"), so staff
    can't even learn which ids exist elsewhere.
    """
    facility = session.get(Facility, facility_id)
    if facility is None or not staff.works_at(facility_id):
        raise NotFound("We couldn't find that facility.")
    if not staff.can(facility_id, permission):
        raise Forbidden("Your role doesn't allow that at this facility.")
    return facility
