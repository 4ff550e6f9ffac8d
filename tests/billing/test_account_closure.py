"""A family closes its account: upcoming visits are cancelled and their money given back, the
whole balance is paid back through the gateway, every session ends, and it is audited; if
the payout fails, nothing has changed and a retry pays exactly once."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from openvisit.audit.models import AuditEvent
from openvisit.audit.service import SYSTEM, AuditActor
from openvisit.billing import ledger, settlement
from openvisit.billing import service as billing
from openvisit.billing.gateway import PayoutTimeout, SandboxGateway
from openvisit.billing.models import LedgerTransaction
from openvisit.notifications.models import Notification
from openvisit.people.models import Visitor
from openvisit.scheduling import service as scheduling
from openvisit.visits import states
from openvisit.visits.models import Visit, VisitState, VisitTransition, VisitType
from tests.factories import PASSWORD, sign_in_staff, sign_in_visitor
from tests.times import FRIDAY_9AM

from ..scheduling.conftest import approve
from .helpers import entry_total

CLOSE = "/api/v1/me/close-account"


@pytest.fixture
def family(personas, db):
    """Maria ($100 in her wallet) is approved to visit James at 15 cents a minute."""
    personas.kiosk  # noqa: B018
    approve(db, personas.visitor, personas.resident)
    personas.commit()
    return personas


def book(client, family, start=FRIDAY_9AM) -> int:
    r = client.post(
        "/api/v1/me/visits",
        json={
            "resident_id": family.resident.id,
            "start": start.isoformat(),
            "length": 30,
            "visit_type": "remote",
        },
    )
    assert r.status_code == 201, r.text
    return r.json()["id"]


def gateway(app, **kw) -> SandboxGateway:
    app.state.payment_gateway = SandboxGateway(**kw)
    return app.state.payment_gateway


def state_of(db, visit_id) -> VisitState:
    db.expire_all()
    return db.get(Visit, visit_id).state


def count(db, model, *where) -> int:
    db.expire_all()
    return db.scalar(select(func.count()).select_from(model).where(*where))


def test_closing_an_account_cancels_visits_pays_everything_back_and_ends_every_session(
    app, client, other_client, family, db, clock, settings
):
    paid = gateway(app)
    sign_in_visitor(client, family.visitor)
    sign_in_visitor(other_client, family.visitor)  # the same family on a second device
    first = book(client, family)
    second = book(client, family, FRIDAY_9AM + dt.timedelta(hours=2))
    assert client.get("/api/v1/me/wallet").json()["held_cents"] == 900

    r = client.post(CLOSE, json={"confirm": True, "password": PASSWORD})

    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["refunded_cents"], body["refunded"]) == (100_00, "$100.00")
    assert sorted(body["cancelled_visit_ids"]) == sorted([first, second])
    assert body["payout"].startswith("sandbox-payout-")
    assert paid.paid_out_cents == 100_00
    assert state_of(db, first) == state_of(db, second) == VisitState.CANCELLED
    causes = db.scalars(
        select(VisitTransition.cause).where(VisitTransition.to_state == "cancelled")
    ).all()
    assert causes == ["account_closed", "account_closed"]
    assert billing.visit_hold_cents(db, first) == billing.visit_hold_cents(db, second) == 0
    summary = billing.wallet_summary(db, family.visitor.id)
    assert (summary.available_cents, summary.held_cents) == (0, 0)
    refund = db.scalars(select(LedgerTransaction).where(LedgerTransaction.kind == "refund")).one()
    assert refund.idempotency_key.startswith(f"account-closure:{family.visitor.id}:")
    assert "Refunded $100.00 on account closure" in refund.memo
    assert ledger.check_invariants(db).ok
    assert entry_total(db) == 0
    # Signed out everywhere, and can't sign in again.
    assert client.get("/api/v1/me").status_code == 401
    assert other_client.get("/api/v1/me").status_code == 401
    again = client.post(
        "/api/v1/visitor-session", json={"email": family.visitor.email, "password": PASSWORD}
    )
    assert (again.status_code, again.json()["error"]["code"]) == (403, "account_closed")
    assert db.get(Visitor, family.visitor.id).closed_at == clock.now()
    event = db.scalars(select(AuditEvent).where(AuditEvent.tag == "visitor:account_closed")).one()
    assert event.data["refunded_cents"] == 100_00
    assert sorted(event.data["cancelled_visit_ids"]) == sorted([first, second])
    mail = db.scalars(
        select(Notification).where(Notification.subject == "Your OpenVisit account is closed")
    ).one()
    assert "$100.00, your whole balance" in mail.body
    # The worker finds nothing left to do: the holds came back with the closure.
    assert settlement.settle_pending(db, clock, settings) == 0


def test_a_payout_that_fails_changes_nothing_and_the_retry_pays_once(
    app, client, family, db, clock
):
    paid = gateway(app, payouts_to_time_out=1)
    sign_in_visitor(client, family.visitor)
    visit = book(client, family)
    transactions_before = count(db, LedgerTransaction)

    failed = client.post(CLOSE, json={"confirm": True, "password": PASSWORD})

    assert failed.status_code == 503
    assert failed.json()["error"]["code"] == "payout_failed"
    assert "your account is still open and nothing has changed" in failed.json()["error"]["message"]
    assert client.get("/api/v1/me").status_code == 200  # still signed in
    assert state_of(db, visit) == VisitState.SCHEDULED
    assert client.get("/api/v1/me/wallet").json()["held_cents"] == 450
    assert count(db, LedgerTransaction) == transactions_before
    assert count(db, AuditEvent, AuditEvent.tag == "visitor:account_closed") == 0
    assert db.get(Visitor, family.visitor.id).closed_at is None
    assert paid.paid_out_cents == 0

    retry = client.post(CLOSE, json={"confirm": True, "password": PASSWORD})

    assert retry.status_code == 200, retry.text
    assert retry.json()["refunded_cents"] == 100_00
    assert paid.paid_out_cents == 100_00
    assert state_of(db, visit) == VisitState.CANCELLED


class AnswerLostOnce(SandboxGateway):
    """The payout goes through, but its answer is lost on the way back (the worst case)."""

    def __init__(self) -> None:
        super().__init__()
        self.lost = False

    def payout(self, *, idempotency_key: str, amount_cents: int, visitor_id: int) -> str:
        reference = super().payout(
            idempotency_key=idempotency_key, amount_cents=amount_cents, visitor_id=visitor_id
        )
        if not self.lost:
            self.lost = True
            raise PayoutTimeout()
        return reference


def test_a_payout_that_went_through_unseen_is_not_paid_again_on_retry(app, client, family, db):
    paid = app.state.payment_gateway = AnswerLostOnce()
    sign_in_visitor(client, family.visitor)
    book(client, family)
    assert client.post(CLOSE, json={"confirm": True, "password": PASSWORD}).status_code == 503
    assert paid.paid_out_cents == 100_00  # the family was paid, but we couldn't know
    retry = client.post(CLOSE, json={"confirm": True, "password": PASSWORD})
    assert retry.status_code == 200, retry.text
    assert paid.paid_out_cents == 100_00  # the same payout answered again, not a second one
    assert retry.json()["payout"] == "sandbox-payout-000001"


def test_closing_refuses_without_confirmation_or_the_password_and_changes_nothing(
    app, client, family, db
):
    paid = gateway(app)
    sign_in_visitor(client, family.visitor)
    visit = book(client, family)
    no = client.post(CLOSE, json={"confirm": False, "password": PASSWORD})
    assert (no.status_code, no.json()["error"]["code"]) == (422, "not_confirmed")
    wrong = client.post(CLOSE, json={"confirm": True, "password": "not my password"})
    assert wrong.status_code == 401
    assert wrong.json()["error"]["fields"] == {"password": "Enter your current password."}
    garbage = client.post(CLOSE, json={"confirm": "maybe"})
    assert garbage.status_code == 422
    assert state_of(db, visit) == VisitState.SCHEDULED
    assert db.get(Visitor, family.visitor.id).closed_at is None
    assert paid.calls == 0
    assert client.get("/api/v1/me").status_code == 200


def test_closing_waits_for_a_visit_in_progress_and_for_a_charge_not_yet_settled(
    app, client, family, db, clock, settings
):
    gateway(app)
    sign_in_visitor(client, family.visitor)
    visit_id = book(client, family)
    visit = db.get(Visit, visit_id)
    states.transition(db, visit, VisitState.OPEN, actor=SYSTEM, at=clock.now(), cause="test")
    family.commit()
    busy = client.post(CLOSE, json={"confirm": True, "password": PASSWORD})
    assert (busy.status_code, busy.json()["error"]["code"]) == (409, "visit_in_progress")
    states.transition(db, visit, VisitState.LIVE, actor=SYSTEM, at=clock.now(), cause="test")
    states.transition(db, visit, VisitState.COMPLETED, actor=SYSTEM, at=clock.now(), cause="t")
    family.commit()
    pending = client.post(CLOSE, json={"confirm": True, "password": PASSWORD})
    assert (pending.status_code, pending.json()["error"]["code"]) == (409, "settlement_pending")
    assert db.get(Visitor, family.visitor.id).closed_at is None
    settlement.settle_pending(db, clock, settings)  # the worker's next tick
    family.commit()
    done = client.post(CLOSE, json={"confirm": True, "password": PASSWORD})
    assert done.status_code == 200, done.text
    assert ledger.check_invariants(db).ok


def test_the_close_account_page_explains_asks_and_closes(app, client, family, db):
    gateway(app)
    sign_in_visitor(client, family.visitor)
    visit = book(client, family)
    reference = db.get(Visit, visit).reference
    assert 'href="/account/close"' in client.get("/account").text
    page = client.get("/account/close")
    assert page.status_code == 200
    assert "we pay <strong>$100.00</strong>, everything in your wallet" in page.text
    assert reference in page.text
    csrf = client.cookies["ov_csrf"]
    missing = client.post("/account/close", data={"csrf_token": csrf, "password": PASSWORD})
    assert missing.status_code == 422
    assert "<title>Error:" in missing.text and 'id="answer-error"' in missing.text
    keep = client.post("/account/close", data={"csrf_token": csrf, "answer": "no"})
    assert "Your account is still open." in keep.text
    no_csrf = client.post(
        "/account/close",
        data={"answer": "yes", "password": PASSWORD},
        headers={"X-CSRF-Token": "forged"},
    )
    assert no_csrf.status_code == 403
    assert db.get(Visitor, family.visitor.id).closed_at is None
    closed = client.post(
        "/account/close",
        data={"csrf_token": csrf, "answer": "yes", "password": PASSWORD},
        follow_redirects=False,
    )
    assert closed.status_code == 303 and closed.headers["location"] == "/"
    home = client.get("/")
    assert "Your account is closed. $100.00 is on its way back to your payment method." in (
        home.text
    )
    assert client.get("/account", follow_redirects=False).status_code in (302, 303, 401)


def test_a_closed_account_gets_no_deposits_no_bookings_and_no_reset_links(
    app, client, family, db, clock, settings
):
    gateway(app)
    sign_in_visitor(client, family.visitor)
    assert client.post(CLOSE, json={"confirm": True, "password": PASSWORD}).status_code == 200
    family.scheduler  # noqa: B018
    family.commit()
    with TestClient(app, base_url="https://testserver") as staff:
        sign_in_staff(staff, family.scheduler, clock)
        found = staff.get(
            f"/api/v1/facilities/{family.facility.id}/lobby-visitors", params={"q": "maria"}
        ).json()
        assert [(v["name"], v["account_closed"]) for v in found] == [("Maria Lopez", True)]
        r = staff.post(
            f"/api/v1/facilities/{family.facility.id}/wallet-deposits",
            json={"visitor": found[0]["reference"], "amount_cents": 20_00, "method": "cash"},
        )
        assert (r.status_code, r.json()["error"]["code"]) == (403, "account_closed")
    with pytest.raises(Exception) as refused:
        scheduling.book(
            db,
            clock,
            AuditActor("staff", 1, "Scheduler"),
            resident_id=family.resident.id,
            visitor_id=family.visitor.id,
            visit_type=VisitType.REMOTE,
            start=FRIDAY_9AM,
            length_minutes=30,
        )
    assert getattr(refused.value, "code", "") == "account_closed"
    before = count(db, Notification)
    r = client.post("/api/v1/password-reset", json={"email": family.visitor.email})
    assert r.status_code == 202
    assert count(db, Notification) == before  # no link for a closed account
    signup = client.post(
        "/api/v1/visitors",
        json={
            "email": family.visitor.email,
            "password": "another long password",
            "legal_name": "Maria Lopez",
            "date_of_birth": "1980-05-17",
        },
    )
    # Sign-up says what it says for any address; the closed account's owner is told by
    # e-mail that the address can't be used again, and no account is made.
    assert signup.status_code == 202
    [told] = db.scalars(
        select(Notification).where(
            Notification.to_address == family.visitor.email,
            Notification.subject == "You already have an OpenVisit account",
        )
    ).all()
    assert "was closed" in told.body
    assert count(db, Visitor) == 1


def test_refunds_on_closure_are_listed_for_staff_with_their_reason(app, client, family, db, clock):
    gateway(app)
    sign_in_visitor(client, family.visitor)
    assert client.post(CLOSE, json={"confirm": True, "password": PASSWORD}).status_code == 200
    family.admin  # noqa: B018
    family.commit()
    with TestClient(app, base_url="https://testserver") as staff:
        sign_in_staff(staff, family.admin, clock)
        body = staff.get(f"/api/v1/facilities/{family.facility.id}/refunds").json()
        assert [(r["visitor"], r["amount_cents"], r["reason"]) for r in body["refunds"]] == [
            ("Maria Lopez", 100_00, "account_closure")
        ]
        page = staff.get(f"/staff/facilities/{family.facility.id}/refunds").text
        assert "Account closed</td>" in page.split('id="refund-list"')[1]
