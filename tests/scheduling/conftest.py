from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from openvisit.approvals.models import Approval, ApprovalStatus
from openvisit.visits.models import Visit
from tests.billing.helpers import fund
from tests.times import FRIDAY_9AM as FRIDAY_9AM  # still importable from here

# The clock of these tests: Thursday 26 November 2026, 12:00 in New York (tests/times.py).
# Default settings: 12 h notice, 14-day horizon, 20/30-minute visits every 10 minutes,
# Unit A open 09:00-17:00 every day, one kiosk.


def approve(db, visitor, resident, relationship: str = "brother") -> Approval:
    """Approve the visitor, and put $100 in their wallet so that paid visits can be booked."""
    approval = Approval(
        facility_id=resident.facility_id,
        visitor_id=visitor.id,
        resident_id=resident.id,
        relationship=relationship,
        status=ApprovalStatus.APPROVED,
        requested_at=dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
    )
    db.add(approval)
    db.flush()
    fund(db, visitor.id)
    return approval


def visit_count(db) -> int:
    db.expire_all()
    return db.scalar(select(func.count()).select_from(Visit))


@pytest.fixture
def family(personas, db):
    """Maria, identity verified and approved to visit James; James's unit has one kiosk."""
    personas.kiosk  # noqa: B018 - build it
    approve(db, personas.visitor, personas.resident)
    personas.commit()
    return personas


def book(client, resident_id: int, start: dt.datetime, length: int = 30, visit_type="remote"):
    return client.post(
        "/api/v1/me/visits",
        json={
            "resident_id": resident_id,
            "start": start.isoformat(),
            "length": length,
            "visit_type": visit_type,
        },
    )
