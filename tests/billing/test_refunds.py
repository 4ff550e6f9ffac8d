"""Unused money is always the family's: refunds on request and after 180 days unused."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from openvisit import worker
from openvisit.app import create_app
from openvisit.billing import refunds
from openvisit.billing import service as billing
from openvisit.billing.gateway import SandboxGateway, gateway_for
from openvisit.config import Settings
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
    assert refunds.refund_inactive_wallets(db, clock, settings, gateway) == 0
    clock.advance(days=2)
    assert refunds.refund_inactive_wallets(db, clock, settings, gateway) == 1
    assert refunds.refund_inactive_wallets(db, clock, settings, gateway) == 0  # nothing left
    assert gateway.paid_out_cents == 7_00
    assert billing.wallet_summary(db, personas.visitor.id).available_cents == 0
    mail = db.scalars(
        select(Notification).where(Notification.to_address == personas.visitor.email)
    ).one()
    assert mail.subject == "Refunded: $7.00 from your OpenVisit wallet"
    assert entry_total(db) == 0


def test_the_worker_pays_unused_wallets_back_through_the_gateway_the_app_chose(
    app, db, clock, settings, personas, monkeypatch
):
    fund(db, personas.visitor.id, 7_00)
    personas.commit()
    monkeypatch.setattr(worker, "_last_inactivity_scan", [])  # no scan this hour yet
    clock.set(clock.now().replace(year=2027, month=5, day=1))
    worker.run_jobs_once(db.info["factory"], clock, settings, app.state.payment_gateway)
    assert app.state.payment_gateway.paid_out_cents == 7_00
    db.expire_all()
    assert billing.wallet_summary(db, personas.visitor.id).available_cents == 0


def test_in_production_no_gateway_is_wired_so_cards_are_refused_and_nothing_is_paid_out(
    tmp_path, db, clock, personas
):
    settings = Settings(
        env="production",
        var_dir=tmp_path,
        database_url="sqlite://",
        secret_key="production-key-" + "x" * 32,
    )
    assert gateway_for(settings) is None
    app = create_app(settings, clock=clock, sessionmaker=db.info["factory"])
    assert app.state.payment_gateway is None
    personas.visitor  # noqa: B018
    personas.commit()
    with TestClient(app, base_url="https://testserver") as client:
        sign_in_visitor(client, personas.visitor)
        r = client.post(
            "/api/v1/me/wallet/deposits",
            json={
                "amount_cents": 500,
                "card_number": "4242424242424242",
                "idempotency_key": "k-0001",
            },
        )
    assert (r.status_code, r.json()["error"]["code"]) == (503, "payments_unavailable")
