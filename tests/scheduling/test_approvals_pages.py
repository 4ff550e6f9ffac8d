"""Who may visit whom, on the pages: a family finds a resident and asks; staff decide from
the queue; a decision that is neither approve nor deny changes nothing."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from openvisit.approvals.models import Approval, ApprovalStatus, Block
from openvisit.notifications.models import Notification
from tests.factories import sign_in_staff, sign_in_visitor


def form(client, **fields):
    return {"csrf_token": client.cookies["ov_csrf"], **fields}


def ask_on_the_pages(client, personas, **fields):
    """Find James by booking number and last name, then send the request form."""
    found = client.get(
        "/visits/find",
        params={
            "facility_id": personas.facility.id,
            "booking_number": "B-1001",
            "last_name": "Lopez",
        },
        follow_redirects=False,
    )
    assert found.status_code == 303, found.text
    token = found.headers["location"].split("found=")[1]
    page = client.get(f"/visits/request?found={token}")
    assert page.status_code == 200 and "Ask to visit James L." in page.text
    return client.post("/visits/request", data=form(client, found=token, **fields))


def test_a_family_finds_a_resident_and_asks_to_visit_on_the_pages(client, personas, db):
    personas.resident  # noqa: B018
    personas.commit()
    sign_in_visitor(client, personas.visitor)
    sent = ask_on_the_pages(client, personas, relationship="sibling")
    assert sent.status_code == 200 and "Request sent. Riverside Jail will reply" in sent.text
    [approval] = db.scalars(select(Approval)).all()
    assert (approval.relationship, approval.status) == ("sibling", ApprovalStatus.PENDING)


def test_a_child_over_17_is_refused_beside_that_childs_date_and_nothing_is_asked(
    client, personas, db
):
    personas.resident  # noqa: B018
    personas.commit()
    sign_in_visitor(client, personas.visitor)
    refused = ask_on_the_pages(
        client,
        personas,
        relationship="parent",
        child_name_1="Tom Lopez",
        child_dob_1="2000-01-01",
    )
    assert refused.status_code == 422
    assert 'id="child_dob_1-error"' in refused.text
    assert 'value="Tom Lopez"' in refused.text  # what was typed stays
    assert db.scalars(select(Approval)).all() == []


def _a_request_in_the_queue(client, other_client, personas, clock):
    scheduler = personas.scheduler
    personas.resident  # noqa: B018
    personas.commit()
    sign_in_visitor(client, personas.visitor)
    r = client.post(
        "/api/v1/me/approvals",
        json={
            "facility_id": personas.facility.id,
            "booking_number": "B-1001",
            "last_name": "Lopez",
            "relationship": "sister",
        },
    )
    assert r.status_code == 201, r.text
    sign_in_staff(other_client, scheduler, clock)
    queue = other_client.get(f"/staff/facilities/{personas.facility.id}/approvals")
    assert queue.status_code == 200 and "Maria Lopez" in queue.text
    return r.json()["id"]


def test_staff_approve_from_the_queue_page_and_the_family_is_told(
    client, other_client, personas, db, clock
):
    request_id = _a_request_in_the_queue(client, other_client, personas, clock)
    done = other_client.post(
        f"/staff/facilities/{personas.facility.id}/approvals/{request_id}/decide",
        data=form(other_client, decision="approve"),
    )
    assert done.status_code == 200 and "Maria Lopez approved. We e-mailed them." in done.text
    db.expire_all()
    assert db.get(Approval, request_id).status == ApprovalStatus.APPROVED
    twice = other_client.post(
        f"/staff/facilities/{personas.facility.id}/approvals/{request_id}/decide",
        data=form(other_client, decision="deny", reason="No"),
    )
    assert "A colleague already decided this request (approved)." in twice.text


def test_a_decision_that_is_neither_approve_nor_deny_is_refused_and_changes_nothing(
    client, other_client, personas, db, clock
):
    request_id = _a_request_in_the_queue(client, other_client, personas, clock)
    url = f"/staff/facilities/{personas.facility.id}/approvals/{request_id}/decide"
    for fields in ({"decision": "maybe", "reason": "Unsure"}, {"reason": "No decision"}, {}):
        r = other_client.post(url, data=form(other_client, **fields))
        assert r.status_code == 422, fields
        assert "Some of the information given is not valid." in r.text
    db.expire_all()
    approval = db.get(Approval, request_id)
    assert (approval.status, approval.decided_at, approval.reason) == (
        ApprovalStatus.PENDING,
        None,
        "",
    )
    assert not db.scalars(
        select(Notification).where(Notification.to_address == personas.visitor.email)
    ).all()


def test_a_blocked_visitor_is_told_until_when_in_the_facilitys_own_dates(
    client, personas, db, clock
):
    personas.resident  # noqa: B018
    db.add(
        Block(
            facility_id=personas.facility.id,
            visitor_id=personas.visitor.id,
            resident_id=None,
            reason="Contraband",
            # 04:00 UTC on 1 February is still 31 January in New York.
            until=dt.datetime(2027, 2, 1, 4, 0, tzinfo=dt.UTC),
            created_at=clock.now(),
        )
    )
    personas.commit()
    sign_in_visitor(client, personas.visitor)
    r = client.post(
        "/api/v1/me/approvals",
        json={
            "facility_id": personas.facility.id,
            "booking_number": "B-1001",
            "last_name": "Lopez",
            "relationship": "sister",
        },
    )
    assert (r.status_code, r.json()["error"]["message"]) == (
        403,
        "You can't visit at this facility until 31 January 2027. "
        "Contact the facility if you think this is wrong.",
    )
