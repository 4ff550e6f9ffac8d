"""The ledger's invariants, checked by one function (used by `openvisit ledger check` and the
benchmark): it passes on a sound ledger and names each kind of breakage."""

from __future__ import annotations

from sqlalchemy import insert

from openvisit.billing import ledger, settlement
from openvisit.billing import service as billing
from openvisit.billing.models import AccountKind, BillingSettlement, LedgerEntry, LedgerTransaction

from .helpers import fund
from .test_capture import book, family, hold_live  # noqa: F401 - family is a fixture


def _raw_transaction(db, clock, key: str, postings: list[tuple[int, int]]) -> int:
    """Write entries straight to the tables, as a bug or a hand-edit would (bypassing post)."""
    txn_id = db.execute(
        insert(LedgerTransaction)
        .values(idempotency_key=key, kind="manual", digest="x", created_at=clock.now())
        .returning(LedgerTransaction.id)
    ).scalar_one()
    db.execute(
        insert(LedgerEntry),
        [{"transaction_id": txn_id, "account_id": a, "amount_cents": c} for a, c in postings],
    )
    return txn_id


def test_a_sound_ledger_passes_the_invariant_check(db, clock, settings, family):  # noqa: F811
    visit = book(db, clock, family)
    hold_live(db, clock, settings, visit, seconds=600)
    assert settlement.settle_pending(db, clock, settings) == 1
    report = ledger.check_invariants(db)
    assert report.ok, report.problems
    assert report.entries_total_cents == 0


def test_the_invariant_check_names_unbalanced_negative_and_unsettled_money(
    db,
    clock,
    settings,
    family,  # noqa: F811
):
    visit = book(db, clock, family)  # $4.50 held
    received = ledger.account(db, clock, AccountKind.PAYMENTS_RECEIVED)
    wallet = billing.wallet(db, clock, family.visitor.id)
    lonely = _raw_transaction(db, clock, "bug:one-sided", [(received.id, 7)])
    overdrawn = family.make_visitor("overdrawn@example.com")
    fund(db, overdrawn.id, 1_00)
    empty = billing.wallet(db, clock, overdrawn.id)
    _raw_transaction(db, clock, "bug:overdraw", [(empty.id, -3_00), (received.id, 3_00)])
    db.add(
        BillingSettlement(visit_id=visit.id, outcome="released", settled_at=clock.now())
    )  # marked settled, but its hold was never released
    db.flush()
    report = ledger.check_invariants(db)
    assert not report.ok
    assert report.entries_total_cents == 7
    assert report.unbalanced_transactions == [lonely]
    assert report.negative_accounts == [(empty.owner_key, -2_00)]
    assert report.unsettled_holds == [(visit.id, 450)]
    assert wallet.owner_key not in dict(report.negative_accounts)
    assert f"visit {visit.id} is settled but 450 cents are still held" in report.problems
