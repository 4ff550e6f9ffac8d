from __future__ import annotations

import pytest

from openvisit.audit.service import AuditActor
from openvisit.scheduling import service as scheduling
from openvisit.visits.models import VisitType
from tests.times import FRIDAY_9AM

from ..scheduling.conftest import approve

# The clock of these tests starts on Thursday 26 November 2026, 12:00 in New York.
# The visit starts FRIDAY_9AM; the facility's join window is 10 minutes, the grace 90 s.


@pytest.fixture
def visit(personas, db, clock):
    """A 30-minute remote visit of Maria with James, booked for Friday 09:00."""
    personas.kiosk  # noqa: B018 - build it
    approve(db, personas.visitor, personas.resident)
    booked = scheduling.book(
        db,
        clock,
        AuditActor("visitor", personas.visitor.id, "Maria"),
        resident_id=personas.resident.id,
        visitor_id=personas.visitor.id,
        visit_type=VisitType.REMOTE,
        start=FRIDAY_9AM,
        length_minutes=30,
    )
    db.flush()
    return booked
