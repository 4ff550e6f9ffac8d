from __future__ import annotations

from sqlalchemy import func, select

from openvisit.audit.models import AuditEvent
from openvisit.people.models import ProfessionalCredential, ReviewStatus
from tests.factories import sign_in_staff, sign_in_visitor

from .helpers import mails_to


def _credentials(db) -> int:
    db.expire_all()
    return db.scalar(select(func.count()).select_from(ProfessionalCredential))


def _submit(client, personas, **overrides):  # type: ignore[no-untyped-def]
    body = {
        "facility_id": personas.facility.id,
        "kind": "attorney",
        "number": "OH-0071234",
        "issuer": "State Bar of Ohio",
    } | overrides
    return client.post("/api/v1/me/credentials", json=body)


def test_an_attorney_submits_a_bar_number_and_sees_it_pending(client, personas, db):
    maria = personas.visitor
    personas.facility  # noqa: B018
    personas.commit()
    sign_in_visitor(client, maria)
    r = _submit(client, personas)
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "pending" and r.json()["kind"] == "attorney"
    mine = client.get("/api/v1/me/credentials").json()
    assert [c["number"] for c in mine] == ["OH-0071234"]
    page = client.get("/account/credentials")
    assert "OH-0071234" in page.text and "Being checked" in page.text


def test_a_bad_credential_is_refused_with_reasons_and_nothing_is_saved(client, personas, db):
    maria = personas.visitor
    personas.facility  # noqa: B018
    personas.commit()
    sign_in_visitor(client, maria)
    r = _submit(client, personas, kind="wizard", number=" ", issuer="", facility_id=999999)
    assert r.status_code == 422
    assert set(r.json()["error"]["fields"]) == {"kind", "number", "issuer", "facility_id"}
    assert _credentials(db) == 0


def test_visitors_only_see_their_own_credentials(client, other_client, personas, db):
    maria, sam = personas.visitor, personas.new_visitor
    personas.facility  # noqa: B018
    personas.commit()
    sign_in_visitor(client, maria)
    _submit(client, personas)
    sign_in_visitor(other_client, sam)
    assert other_client.get("/api/v1/me/credentials").json() == []
    page = other_client.get("/account/credentials")
    assert "OH-0071234" not in page.text and "You haven" in page.text


def test_staff_verify_a_credential_and_a_second_decision_is_refused(
    client, other_client, personas, db, clock
):
    maria = personas.visitor
    scheduler = personas.scheduler
    personas.commit()
    sign_in_visitor(other_client, maria)
    cred_id = _submit(other_client, personas).json()["id"]
    sign_in_staff(client, scheduler, clock)
    fid = personas.facility.id
    queue = client.get(f"/api/v1/facilities/{fid}/credential-reviews")
    assert [c["id"] for c in queue.json()] == [cred_id]
    assert queue.json()[0]["visitor"]["legal_name"] == "Maria Lopez"
    r = client.post(f"/api/v1/facilities/{fid}/credential-reviews/{cred_id}/verify")
    assert r.status_code == 200 and r.json()["status"] == "verified"
    twice = client.post(
        f"/api/v1/facilities/{fid}/credential-reviews/{cred_id}/reject",
        json={"reason": "Not found at the bar"},
    )
    assert twice.status_code == 409 and twice.json()["error"]["code"] == "already_decided"
    assert "verified" in mails_to(db, maria.email)[-1].subject
    assert other_client.get("/api/v1/me/credentials").json()[0]["status"] == "verified"
    tags = db.scalars(select(AuditEvent.tag).where(AuditEvent.tag.like("credential:%"))).all()
    assert tags == ["credential:submitted", "credential:verified"]


def test_rejecting_a_credential_needs_a_reason(client, other_client, personas, db, clock):
    maria = personas.visitor
    admin = personas.admin
    personas.commit()
    sign_in_visitor(other_client, maria)
    cred_id = _submit(other_client, personas).json()["id"]
    sign_in_staff(client, admin, clock)
    url = f"/api/v1/facilities/{personas.facility.id}/credential-reviews/{cred_id}/reject"
    assert client.post(url, json={"reason": ""}).status_code == 422
    db.expire_all()
    assert db.get(ProfessionalCredential, cred_id).status == ReviewStatus.PENDING
    r = client.post(url, json={"reason": "No such bar number in the Ohio register."})
    assert r.status_code == 200 and r.json()["reason"].startswith("No such bar number")


def test_another_facilitys_staff_cannot_see_or_decide_our_credentials(
    client, other_client, personas, db, clock
):
    maria = personas.visitor
    other = personas.other_admin
    personas.commit()
    sign_in_visitor(other_client, maria)
    cred_id = _submit(other_client, personas).json()["id"]
    sign_in_staff(client, other, clock)
    ours, theirs = personas.facility.id, personas.other_facility.id
    assert client.get(f"/api/v1/facilities/{ours}/credential-reviews").status_code == 404
    assert client.get(f"/api/v1/facilities/{theirs}/credential-reviews").json() == []
    r = client.post(f"/api/v1/facilities/{theirs}/credential-reviews/{cred_id}/verify")
    assert r.status_code == 404
    db.expire_all()
    assert db.get(ProfessionalCredential, cred_id).status == ReviewStatus.PENDING


def test_the_staff_credential_page_lists_waiting_credentials_and_decides(
    client, other_client, personas, db, clock
):
    maria = personas.visitor
    scheduler = personas.scheduler
    personas.commit()
    sign_in_staff(client, scheduler, clock)
    fid = personas.facility.id
    assert (
        "No credentials are waiting"
        in client.get(f"/staff/facilities/{fid}/credential-reviews").text
    )
    sign_in_visitor(other_client, maria)
    cred_id = _submit(other_client, personas).json()["id"]
    page = client.get(f"/staff/facilities/{fid}/credential-reviews")
    assert "OH-0071234" in page.text and "Maria Lopez" in page.text
    token = client.cookies.get("ov_csrf")
    missing = client.post(
        f"/staff/facilities/{fid}/credential-reviews/{cred_id}/reject",
        data={"csrf_token": token, "reason": ""},
    )
    assert missing.status_code == 422 and "Enter the reason" in missing.text
    done = client.post(
        f"/staff/facilities/{fid}/credential-reviews/{cred_id}/reject",
        data={"csrf_token": token, "reason": "Expired credential"},
    )
    assert done.status_code == 200 and "not verified" in done.text
    db.expire_all()
    assert db.get(ProfessionalCredential, cred_id).status == ReviewStatus.REJECTED
