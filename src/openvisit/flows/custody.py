"""Custody change: a release or transfer recorded by residents, and the visits it
cancels through scheduling, in one transaction."""

from __future__ import annotations

from sqlalchemy.orm import Session

from openvisit.audit.service import AuditActor
from openvisit.clock import Clock
from openvisit.config import Settings
from openvisit.residents import service as residents
from openvisit.residents.models import CustodyStatus, Resident
from openvisit.scheduling import service as scheduling


def change_custody_status(
    session: Session,
    clock: Clock,
    settings: Settings,
    actor: AuditActor,
    resident: Resident,
    status: CustodyStatus,
    reason: str,
) -> None:
    """Every custody change goes through here, so whatever must follow a release or
    transfer happens in the same transaction: the resident is signed out of every
    kiosk and their visits that have not started are cancelled (the families are
    told; billing releases the holds from the stored transitions)."""
    residents.change_custody_status(session, clock, actor, resident, status, reason)
    if status != CustodyStatus.IN_CUSTODY:
        scheduling.cancel_for_custody_change(
            session, clock, settings, actor, resident, cause=status.value
        )
