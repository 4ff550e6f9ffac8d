"""Families add money by card, staff record cash at the lobby; bad input posts nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from openvisit.approvals.models import Approval, ApprovalStatus
from openvisit.audit.models import AuditEvent
from tests.factories import sign_in_staff, sign_in_visitor

from .helpers import entry_total, transaction_count

CARD = "4242 4242 4242 4242"


def deposit(client, amount=2500, key="first-deposit-0001", card=CARD):
    return client.post(
        "/api/v1/me/wallet/deposits",
        json={"amount_cents": amount, "card_number": card, "idempotency_key": key},
    )


def wallet(client):
    r = client.get("/api/v1/me/wallet")
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture
def maria(client, personas):
    personas.visitor  # noqa: B018
    personas.commit()
    sign_in_visitor(client, personas.visitor)
    return personas.visitor


def test_a_new_visitor_has_an_empty_wallet_and_no_history(client, maria):
    assert wallet(client) == {
        "balance_cents": 0,
        "held_cents": 0,
        "available_cents": 0,
        "balance": "$0.00",
        "held": "$0.00",
        "available": "$0.00",
    }
    assert client.get("/api/v1/me/wallet/entries").json() == []


def test_adding_money_by_card_shows_in_the_wallet_and_its_history_with_no_fee(client, maria):
    r = deposit(client, 2500)
    assert r.status_code == 201, r.text
    assert r.json()["transaction"]["amount_cents"] == 2500
    assert wallet(client)["available_cents"] == 2500
    [line] = client.get("/api/v1/me/wallet/entries").json()
    assert line["amount_cents"] == 2500 and line["balance_after_cents"] == 2500
    assert line["description"].startswith("Added $25.00 by card ending 4242")


def test_a_retried_deposit_with_the_same_key_adds_the_money_once(client, maria, app):
    first = deposit(client, 2500)
    again = deposit(client, 2500)
    assert again.status_code == 201
    assert again.json()["transaction"]["id"] == first.json()["transaction"]["id"]
    assert wallet(client)["available_cents"] == 2500
    assert app.state.payment_gateway.charged_cents == 2500


def test_a_key_replayed_with_another_amount_is_refused_and_changes_nothing(client, maria, db):
    deposit(client, 2500)
    r = deposit(client, 9900)
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "idempotency_conflict"
    assert wallet(client)["available_cents"] == 2500
    assert transaction_count(db) == 1


@pytest.mark.parametrize(
    "amount", [0, -100, 12.5, 100.0, "100", 50_001, 10**30, True, None, [100], {"cents": 1}]
)
def test_a_bad_amount_is_refused_and_nothing_is_posted(client, maria, db, app, amount):
    r = deposit(client, amount)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "invalid_amount"
    assert transaction_count(db) == 0
    assert app.state.payment_gateway.calls == 0  # the card was never asked


@pytest.mark.parametrize("card", ["", "4242", "4242-4242-4242-424x", "1" * 20])
def test_a_bad_card_number_is_refused(client, maria, db, card):
    r = deposit(client, 1000, card=card)
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "invalid_card"
    assert transaction_count(db) == 0


@pytest.mark.parametrize("key", ["", "short", "has spaces in it", "x" * 101])
def test_a_bad_idempotency_key_is_refused(client, maria, db, key):
    r = deposit(client, 1000, key=key)
    assert r.status_code == 422
    assert r.json()["error"]["code"] in ("invalid_idempotency_key", "invalid_input")
    assert transaction_count(db) == 0


def test_a_declined_card_adds_nothing(client, maria, db):
    r = deposit(client, 1000, card="4000 0000 0000 0002")
    assert r.status_code == 402
    assert r.json()["error"]["code"] == "card_declined"
    assert wallet(client)["available_cents"] == 0
    assert transaction_count(db) == 0


def test_a_timed_out_payment_posts_nothing_and_its_retry_goes_through_exactly_once(
    client, maria, db, app
):
    card = "4000 0000 0000 0003"
    r = deposit(client, 1500, key="timeout-retry-01", card=card)
    assert r.status_code == 504
    assert r.json()["error"]["code"] == "gateway_timeout"
    assert transaction_count(db) == 0
    assert wallet(client)["available_cents"] == 0
    assert deposit(client, 1500, key="timeout-retry-01", card=card).status_code == 201
    assert deposit(client, 1500, key="timeout-retry-01", card=card).status_code == 201
    assert wallet(client)["available_cents"] == 1500
    assert app.state.payment_gateway.charged_cents == 1500
    assert transaction_count(db) == 1


def test_the_wallet_needs_a_signed_in_visitor(client, personas):
    assert client.get("/api/v1/me/wallet").status_code == 401
    r = client.post(
        "/api/v1/me/wallet/deposits",
        json={"amount_cents": 100, "card_number": CARD, "idempotency_key": "anon-key-0001"},
    )
    assert r.status_code == 401


def test_two_visitors_using_the_same_key_do_not_collide(client, other_client, personas):
    other = personas.make_visitor("cousin@example.com")
    personas.visitor  # noqa: B018
    personas.commit()
    sign_in_visitor(client, personas.visitor)
    sign_in_visitor(other_client, other)
    assert deposit(client, 1000, key="shared-key-0001").status_code == 201
    assert deposit(other_client, 2000, key="shared-key-0001").status_code == 201
    assert wallet(client)["available_cents"] == 1000
    assert wallet(other_client)["available_cents"] == 2000


# --- staff at the lobby --------------------------------------------------------------
# Who staff may reach, the cap, the receipt and the audit: tests/billing/test_lobby_deposits.py.


@pytest.fixture
def linked(personas, db):
    """Maria asked to visit James at Riverside, so Riverside's staff can find her."""
    db.add(
        Approval(
            facility_id=personas.facility.id,
            visitor_id=personas.visitor.id,
            resident_id=personas.resident.id,
            relationship="sister",
            status=ApprovalStatus.PENDING,
            requested_at=personas.clock.now(),
        )
    )
    db.flush()
    return personas


def lobby(client, facility_id, visitor, **body):
    return client.post(
        f"/api/v1/facilities/{facility_id}/wallet-deposits",
        json={"visitor": visitor, "amount_cents": 2000, "method": "cash", **body},
    )


def maria_ref(client, personas) -> str:
    found = client.get(
        f"/api/v1/facilities/{personas.facility.id}/lobby-visitors", params={"q": "maria"}
    )
    assert found.status_code == 200, found.text
    return str(found.json()[0]["reference"])


def test_a_scheduler_records_cash_paid_at_the_lobby_and_it_is_audited(
    client, other_client, linked, clock, db
):
    personas = linked
    personas.scheduler  # noqa: B018
    personas.commit()
    sign_in_staff(client, personas.scheduler, clock)
    r = lobby(client, personas.facility.id, maria_ref(client, personas))
    assert r.status_code == 201, r.text
    assert r.json()["amount_cents"] == 2000
    assert "cash at Riverside Jail" in r.json()["description"]
    event = db.scalars(select(AuditEvent).where(AuditEvent.tag == "wallet:deposit_recorded")).one()
    assert event.actor_id == personas.scheduler.member.id
    assert event.data["amount_cents"] == 2000
    sign_in_visitor(other_client, personas.visitor)
    assert wallet(other_client)["available_cents"] == 2000


def test_a_money_order_needs_its_number(client, linked, clock, db):
    personas = linked
    personas.scheduler  # noqa: B018
    personas.commit()
    sign_in_staff(client, personas.scheduler, clock)
    ref = maria_ref(client, personas)
    r = lobby(client, personas.facility.id, ref, method="money_order")
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "invalid_reference"
    assert transaction_count(db) == 0
    ok = lobby(client, personas.facility.id, ref, method="money_order", reference="MO-77")
    assert ok.status_code == 201


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"amount_cents": 0}, "invalid_amount"),
        ({"amount_cents": 20.5}, "invalid_amount"),
        ({"amount_cents": 50_001}, "invalid_amount"),
        ({"method": "bitcoin"}, "invalid_input"),
        ({"visitor": "999999"}, "visitor_not_found"),
        ({"visitor": "WzEsOTk5OTk5XQ.forged"}, "visitor_not_found"),
    ],
)
def test_bad_lobby_deposits_are_refused_and_nothing_is_posted_or_audited(
    client, linked, clock, db, body, code
):
    personas = linked
    personas.scheduler  # noqa: B018
    personas.commit()
    sign_in_staff(client, personas.scheduler, clock)
    r = lobby(client, personas.facility.id, **{"visitor": maria_ref(client, personas), **body})
    assert r.status_code in (404, 422), r.text
    assert r.json()["error"]["code"] == code
    assert transaction_count(db) == 0
    assert entry_total(db) == 0
    assert not db.scalars(
        select(AuditEvent).where(AuditEvent.tag == "wallet:deposit_recorded")
    ).all()
