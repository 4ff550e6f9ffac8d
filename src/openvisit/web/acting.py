"""What a staff member's JSON action at one facility works with.

A route that acts for a staff member at a facility takes one ``AtFacility`` (or a
subclass with the domain's own helpers) instead of the facility, the staff member, the
session, the clock and the settings one by one. ``acting`` builds it behind
``FacilityFor(permission)``, so the route still declares its access and another
facility's id is refused before the route runs.
"""

from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends
from sqlalchemy.orm import Session

from openvisit.audit.service import AuditActor
from openvisit.auth.permissions import Permission
from openvisit.clock import Clock
from openvisit.config import Settings
from openvisit.deps import ClockDep, CurrentStaff, DbSession, FacilityFor, SettingsDep
from openvisit.facilities.models import Facility
from openvisit.people.context import StaffContext


@dataclass(frozen=True)
class AtFacility:
    """A staff member acting at one facility (the route's permission checked there), with
    what the action needs."""

    facility: Facility
    staff: StaffContext
    db: Session
    settings: Settings
    clock: Clock

    @property
    def actor(self) -> AuditActor:
        """Who the audit log names for what the route does."""
        return self.staff.actor


A = TypeVar("A", bound=AtFacility)


def acting(permission: Permission, kind: type[A] = AtFacility) -> Any:  # type: ignore[assignment]
    """The dependency that builds ``kind`` for a staff member holding ``permission`` at
    the facility in the path."""

    # (This module has no ``from __future__ import annotations``: the annotation below names
    # ``permission``, which FastAPI could not find again from a string.)
    def dependency(
        facility: Annotated[Facility, FacilityFor(permission)],
        staff: CurrentStaff,
        db: DbSession,
        settings: SettingsDep,
        clock: ClockDep,
    ) -> A:
        return kind(facility, staff, db, settings, clock)

    return Depends(dependency)
