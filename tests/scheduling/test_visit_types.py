"""On-site visits need a lobby terminal; privileged visits are for verified professionals."""

from __future__ import annotations

from openvisit.facilities.models import Kiosk, KioskLocation
from openvisit.people.models import ProfessionalCredential, ProfessionKind, ReviewStatus
from tests.factories import sign_in_visitor
from tests.times import FRIDAY_9AM

from .conftest import approve, book


def test_an_on_site_visit_takes_a_lobby_terminal_too(client, family, db, clock):
    sign_in_visitor(client, family.visitor)
    r = book(client, family.resident.id, FRIDAY_9AM, visit_type="onsite")
    assert (r.status_code, r.json()["error"]["code"]) == (409, "no_kiosk")
    lobby = Kiosk(
        facility_id=family.facility.id,
        unit_id=None,
        name="Lobby 1",
        location=KioskLocation.LOBBY,
        created_at=clock.now(),
    )
    db.add(lobby)
    family.commit()
    r = book(client, family.resident.id, FRIDAY_9AM, visit_type="onsite")
    assert r.status_code == 201, r.text
    assert r.json()["rate_cents_per_minute"] == "0.00"  # on-site visits are free by default


def test_an_attorney_with_a_verified_credential_books_an_unrecorded_free_visit(
    client, personas, db, clock
):
    personas.kiosk  # noqa: B018
    attorney = personas.make_visitor("counsel@lawfirm.example", name="Dana Counsel")
    approve(db, attorney, personas.resident, relationship="attorney")
    personas.commit()
    sign_in_visitor(client, attorney)
    r = book(client, personas.resident.id, FRIDAY_9AM, visit_type="privileged")
    assert (r.status_code, r.json()["error"]["code"]) == (403, "credential_not_verified")
    db.add(
        ProfessionalCredential(
            visitor_id=attorney.id,
            facility_id=personas.facility.id,
            kind=ProfessionKind.ATTORNEY,
            number="OH-12345",
            issuer="Supreme Court of Ohio",
            status=ReviewStatus.VERIFIED,
            submitted_at=clock.now(),
        )
    )
    personas.commit()
    r = book(client, personas.resident.id, FRIDAY_9AM, visit_type="privileged")
    assert r.status_code == 201, r.text
    assert r.json()["recorded"] is False and r.json()["rate_cents_per_minute"] == "0.00"


def test_a_family_member_cannot_book_a_privileged_visit(client, family):
    sign_in_visitor(client, family.visitor)
    r = book(client, family.resident.id, FRIDAY_9AM, visit_type="privileged")
    assert (r.status_code, r.json()["error"]["code"]) == (403, "not_a_professional")
