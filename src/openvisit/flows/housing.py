"""Housing units as residents see them: a unit is deleted only when nobody lives there,
which residents know and facilities do not."""

from __future__ import annotations

from sqlalchemy.orm import Session

from openvisit.audit.service import AuditActor
from openvisit.clock import Clock
from openvisit.facilities import units
from openvisit.facilities.models import HousingUnit
from openvisit.residents import service as residents


def delete_unit(session: Session, clock: Clock, actor: AuditActor, unit: HousingUnit) -> None:
    """Delete an empty unit; refused while residents, kiosks or closures refer to it."""
    units.delete_unit(
        session, clock, actor, unit, residents=residents.count_in_unit(session, unit.id)
    )
