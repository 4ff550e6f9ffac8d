"""Closure effects: a lockdown or blackout recorded by facilities, and the visits it
cancels through scheduling, in one transaction."""

from __future__ import annotations

from sqlalchemy.orm import Session

from openvisit.audit.service import AuditActor
from openvisit.clock import Clock
from openvisit.config import Settings
from openvisit.facilities import closures
from openvisit.facilities.models import Closure, Facility
from openvisit.scheduling import service as scheduling
from openvisit.visits.models import Visit


def declare_closure(
    session: Session,
    clock: Clock,
    settings: Settings,
    actor: AuditActor,
    facility: Facility,
    new: closures.NewClosure,
    *,
    staff_id: int,
) -> tuple[Closure, list[Visit]]:
    """Record a lockdown or blackout and cancel the visits it covers, telling each family.

    The families see a plain reason; the staff's own reason stays in the closure.
    """
    created = closures.create_closure(session, clock, actor, facility, new, staff_id=staff_id)
    affected = scheduling.visits_affected_by(
        session,
        facility_id=facility.id,
        unit_id=created.unit_id,
        starts_at=created.starts_at,
        ends_at=created.ends_at,
    )
    kind = created.kind.value
    cancelled = scheduling.cancel_visits(
        session,
        clock,
        settings,
        actor,
        affected,
        cause=kind,
        reason=f"The facility is closed for visits ({kind}).",
    )
    return created, cancelled
