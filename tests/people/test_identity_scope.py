"""An identity check belongs to the facility that made it (issue 10, item 7).

Maria's identity was confirmed by Riverside. At Lakeview that counts only once Lakeview
says it accepts other facilities' checks (off by default) or Lakeview's own staff have
checked her: for asking to visit someone there and for booking there.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from openvisit.approvals import service as approvals
from openvisit.approvals.models import Approval, ApprovalStatus
from openvisit.audit.service import AuditActor
from openvisit.errors import DomainError
from openvisit.facilities.models import Kiosk, KioskLocation
from openvisit.people.models import IdentityStatus, Visitor
from openvisit.people.verifications import facilities_that_verified, verified_at
from openvisit.scheduling import service as scheduling
from openvisit.visits.models import VisitType
from tests.factories import sign_in_staff, sign_in_visitor

from .helpers import image_bytes

# Friday 27 November 2026, 09:00 in Chicago (Lakeview's zone).
LAKEVIEW_FRIDAY_9AM = dt.datetime(2026, 11, 27, 15, 0, tzinfo=dt.UTC)
MARIA = AuditActor("visitor", 0, "Maria")


@pytest.fixture
def lakeview(personas, db):
    """Lakeview Prison with Ann Ray in Block 1 and a kiosk there; Maria's identity was
    confirmed by Riverside only."""
    db.add(
        Kiosk(
            facility_id=personas.other_facility.id,
            unit_id=personas.other_unit.id,
            name="Block 1 kiosk",
            location=KioskLocation.HOUSING,
            created_at=personas.clock.now(),
        )
    )
    personas.other_resident, personas.visitor, personas.other_admin  # noqa: B018
    db.flush()
    return personas


def approve_at_lakeview(db, personas) -> None:
    """As if Lakeview approved Maria before the rule (or by mistake): booking still asks."""
    db.add(
        Approval(
            facility_id=personas.other_facility.id,
            visitor_id=personas.visitor.id,
            resident_id=personas.other_resident.id,
            relationship="sister",
            status=ApprovalStatus.APPROVED,
            requested_at=dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
        )
    )
    db.flush()


def accept_others(client, personas, clock, accept: bool) -> dict:
    clock.advance(seconds=30)  # a code works once: each sign-in here uses the next one
    sign_in_staff(client, personas.other_admin, clock)
    url = f"/api/v1/facilities/{personas.other_facility.id}/settings"
    shown = client.get(url).json()
    r = client.put(url, json={**shown, "accepts_other_identity_checks": accept})
    assert r.status_code == 200, r.text
    return dict(r.json())


def lakeview_slots(db, clock, personas):
    return scheduling.availability(
        db,
        clock,
        resident_id=personas.other_resident.id,
        visitor_id=personas.visitor.id,
        visit_type=VisitType.REMOTE,
        length_minutes=30,
    )


def test_a_facility_accepts_only_its_own_identity_checks_by_default(client, lakeview, clock):
    lakeview.commit()
    sign_in_staff(client, lakeview.other_admin, clock)
    shown = client.get(f"/api/v1/facilities/{lakeview.other_facility.id}/settings").json()
    assert shown["accepts_other_identity_checks"] is False
    page = client.get(f"/staff/facilities/{lakeview.other_facility.id}/settings").text
    assert 'id="accepts_other_identity_checks"' in page
    assert "checked" not in page.split('id="accepts_other_identity_checks"')[1].split(">")[0]


def test_riverside_s_check_does_not_let_maria_ask_to_visit_at_lakeview(db, lakeview, clock):
    maria = lakeview.visitor
    assert verified_at(db, maria.id, lakeview.facility.id)
    assert not verified_at(db, maria.id, lakeview.other_facility.id)
    with pytest.raises(DomainError) as refused:
        approvals.request_approval(
            db, clock, maria, MARIA, resident=lakeview.other_resident, relationship="sister"
        )
    assert refused.value.code == "identity_not_verified"
    assert "Lakeview Prison needs to check your identity" in refused.value.message
    assert db.scalar(select(Approval).where(Approval.visitor_id == maria.id)) is None


def test_riverside_s_check_counts_at_lakeview_once_lakeview_accepts_others(
    client, db, lakeview, clock
):
    lakeview.commit()
    assert accept_others(client, lakeview, clock, True)["accepts_other_identity_checks"]
    db.expire_all()
    maria = db.get(Visitor, lakeview.visitor.id)
    assert verified_at(db, maria.id, lakeview.other_facility.id)
    approval = approvals.request_approval(
        db, clock, maria, MARIA, resident=lakeview.other_resident, relationship="sister"
    )
    assert approval.status == ApprovalStatus.PENDING
    # ... and stops counting when Lakeview turns it off again.
    accept_others(client, lakeview, clock, False)
    db.expire_all()
    assert not verified_at(db, maria.id, lakeview.other_facility.id)


def test_booking_at_lakeview_needs_an_identity_check_that_counts_there(client, db, lakeview, clock):
    approve_at_lakeview(db, lakeview)
    lakeview.commit()
    with pytest.raises(DomainError) as refused:
        lakeview_slots(db, clock, lakeview)
    assert refused.value.code == "identity_not_verified"
    with pytest.raises(DomainError) as not_booked:
        scheduling.book(
            db,
            clock,
            MARIA,
            resident_id=lakeview.other_resident.id,
            visitor_id=lakeview.visitor.id,
            visit_type=VisitType.REMOTE,
            start=LAKEVIEW_FRIDAY_9AM,
            length_minutes=30,
        )
    assert not_booked.value.code == "identity_not_verified"
    accept_others(client, lakeview, clock, True)
    db.expire_all()
    assert LAKEVIEW_FRIDAY_9AM in [s.start for s in lakeview_slots(db, clock, lakeview).slots]


def test_lakeview_s_own_check_of_maria_counts_at_lakeview(
    client, other_client, db, lakeview, clock
):
    """Maria sends her photos to Lakeview; Lakeview's admin confirms them; that check is
    Lakeview's, and now counts there without accepting anyone else's."""
    approve_at_lakeview(db, lakeview)
    lakeview.commit()
    sign_in_visitor(other_client, lakeview.visitor)
    page = other_client.get("/account/identity").text
    assert "already confirmed by Riverside Jail" in page and 'name="photo_id"' in page
    sent = other_client.post(
        "/api/v1/me/identity",
        data={"facility_id": str(lakeview.other_facility.id)},
        files={
            "photo_id": ("id.png", image_bytes("PNG"), "image/png"),
            "selfie": ("me.jpg", image_bytes("JPEG"), "image/jpeg"),
        },
    )
    assert sent.status_code == 201, sent.text
    again = other_client.post(
        "/api/v1/me/identity",
        data={"facility_id": str(lakeview.facility.id)},
        files={
            "photo_id": ("id.png", image_bytes("PNG"), "image/png"),
            "selfie": ("me.jpg", image_bytes("JPEG"), "image/jpeg"),
        },
    )
    assert again.status_code == 409  # Riverside has checked her already
    db.expire_all()
    assert db.get(Visitor, lakeview.visitor.id).identity_status == IdentityStatus.VERIFIED
    sign_in_staff(client, lakeview.other_admin, clock)
    fid = lakeview.other_facility.id
    r = client.post(f"/api/v1/facilities/{fid}/identity-reviews/{sent.json()['id']}/verify")
    assert r.status_code == 200, r.text
    db.expire_all()
    confirmed_by = facilities_that_verified(db, lakeview.visitor.id)
    assert [f.name for f in confirmed_by] == ["Lakeview Prison", "Riverside Jail"]
    assert LAKEVIEW_FRIDAY_9AM in [s.start for s in lakeview_slots(db, clock, lakeview).slots]


def test_the_approvals_queue_says_whose_identity_counts_here(client, db, lakeview, clock):
    db.add(
        Approval(
            facility_id=lakeview.other_facility.id,
            visitor_id=lakeview.visitor.id,
            resident_id=lakeview.other_resident.id,
            relationship="sister",
            status=ApprovalStatus.PENDING,
            requested_at=dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
        )
    )
    lakeview.commit()
    sign_in_staff(client, lakeview.other_admin, clock)
    fid = lakeview.other_facility.id
    assert (
        "Identity not confirmed for Lakeview Prison"
        in client.get(f"/staff/facilities/{fid}/approvals").text
    )
    accept_others(client, lakeview, clock, True)
    assert "Identity confirmed" in client.get(f"/staff/facilities/{fid}/approvals").text
