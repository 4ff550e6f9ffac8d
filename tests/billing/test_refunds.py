"""Unused money is always the family's: refunds on request and after 180 days unused."""

from __future__ import annotations

from sqlalchemy import select

from openvisit.billing import service as billing
from openvisit.billing.gateway import SandboxGateway
from openvisit.notifications.models import Notification
from tests.billing.helpers import entry_total, fund, transaction_count
from tests.factories import sign_in_visitor


def test_a_family_gets_its_whole_available_balance_back_once(client, personas, db):
    fund(db, personas.visitor.id, 42_50)
    personas.commit()
    sign_in_visitor(client, personas.visitor)
    body = {"idempotency_key": "refund-attempt-1"}
    first = client.post("/api/v1/me/wallet/refund", json=body)
    assert first.status_code == 201, first.text
    again = client.post("/api/v1/me/wallet/refund", json=body)
    assert again.status_code == 201
    assert again.json()["transaction"]["id"] == first.json()["transaction"]["id"]
    assert first.json()["transaction"]["amount_cents"] == -42_50
    assert client.get("/api/v1/me/wallet").json()["available_cents"] == 0
    assert transaction_count(db) == 2  # the deposit and one refund
    assert entry_total(db) == 0
    empty = client.post("/api/v1/me/wallet/refund", json={"idempotency_key": "refund-attempt-2"})
    assert (empty.status_code, empty.json()["error"]["code"]) == (409, "nothing_to_refund")


def test_a_wallet_unused_for_180_days_is_refunded_and_its_owner_told(db, clock, settings, personas):
    fund(db, personas.visitor.id, 7_00)  # the helper posts it on 1 November 2026
    db.flush()
    gateway = SandboxGateway()
    clock.set(clock.now().replace(year=2027, month=4, day=29))  # 179 days after the deposit
    assert billing.refund_inactive_wallets(db, clock, settings, gateway) == 0
    clock.advance(days=2)
    assert billing.refund_inactive_wallets(db, clock, settings, gateway) == 1
    assert billing.refund_inactive_wallets(db, clock, settings, gateway) == 0  # nothing left
    assert gateway.paid_out_cents == 7_00
    assert billing.wallet_summary(db, personas.visitor.id).available_cents == 0
    mail = db.scalars(
        select(Notification).where(Notification.to_address == personas.visitor.email)
    ).one()
    assert mail.subject == "Refunded: $7.00 from your OpenVisit wallet"
    assert entry_total(db) == 0
