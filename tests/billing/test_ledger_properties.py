"""Random sequences of deposits, bookings, cancellations and replays keep the ledger sound.

After every step: all entries sum to zero (and each transaction's), no wallet or hold
is below zero, a settled visit holds nothing, and replaying any earlier operation
changes nothing.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from openvisit.audit.service import SYSTEM
from openvisit.billing import ledger, settlement
from openvisit.billing import service as billing
from openvisit.billing.ledger import InsufficientFunds
from openvisit.billing.models import NEVER_NEGATIVE, LedgerAccount, LedgerEntry
from openvisit.visits import states
from openvisit.visits.models import Visit, VisitState, VisitType

START = dt.datetime(2026, 12, 1, 14, tzinfo=dt.UTC)

operations = st.lists(
    st.one_of(
        st.tuples(st.just("deposit"), st.integers(min_value=1, max_value=3000)),
        st.tuples(
            st.just("book"),
            st.sampled_from([20, 30]),
            st.decimals(min_value=0, max_value=25, places=2, allow_nan=False),
        ),
        st.tuples(st.just("cancel"), st.integers(min_value=0, max_value=30)),
        st.tuples(st.just("replay"), st.integers(min_value=0, max_value=30)),
    ),
    min_size=1,
    max_size=25,
)


def snapshot(db) -> tuple:
    rows = db.execute(
        select(LedgerEntry.account_id, func.sum(LedgerEntry.amount_cents), func.count())
        .group_by(LedgerEntry.account_id)
        .order_by(LedgerEntry.account_id)
    ).all()
    return tuple(tuple(r) for r in rows)


def check_invariants(db, settled: list[int]) -> None:
    assert db.scalar(select(func.coalesce(func.sum(LedgerEntry.amount_cents), 0))) == 0
    unbalanced = db.execute(
        select(LedgerEntry.transaction_id)
        .group_by(LedgerEntry.transaction_id)
        .having(func.sum(LedgerEntry.amount_cents) != 0)
    ).all()
    assert unbalanced == []
    for kind, total in db.execute(
        select(LedgerAccount.kind, func.sum(LedgerEntry.amount_cents))
        .join(LedgerEntry, LedgerEntry.account_id == LedgerAccount.id)
        .group_by(LedgerAccount.id, LedgerAccount.kind)
    ):
        if kind in NEVER_NEGATIVE:
            assert total >= 0, kind
    for visit_id in settled:
        assert billing.visit_hold_cents(db, visit_id) == 0


@pytest.fixture
def world(personas, db):
    personas.kiosk  # noqa: B018
    personas.visitor, personas.resident  # noqa: B018 - built before any example
    db.flush()
    return personas


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=operations)
def test_random_money_operations_keep_every_invariant(world, db, clock, ops):
    savepoint = db.begin_nested()
    try:
        _run(world, db, clock, ops)
    finally:
        savepoint.rollback()
        db.expire_all()


def _run(world, db, clock, ops) -> None:
    visitor = world.visitor
    received = ledger.account(db, clock, ledger.AccountKind.PAYMENTS_RECEIVED)
    done: list[tuple] = []  # operations that took effect, for replays
    booked: list[Visit] = []
    settled: list[int] = []

    def deposit(key: str, amount: int) -> None:
        ledger.post(
            db,
            clock,
            key,
            "deposit",
            [(received, -amount), (billing.wallet(db, clock, visitor.id), amount)],
            "test deposit",
        )

    for step, op in enumerate(ops):
        if op[0] == "deposit":
            key = f"prop-deposit-{step}"
            deposit(key, op[1])
            done.append(("deposit", key, op[1]))
        elif op[0] == "book":
            start = START + dt.timedelta(hours=len(booked) + 1)
            visit = Visit(
                facility_id=world.facility.id,
                resident_id=world.resident.id,
                visitor_id=visitor.id,
                visit_type=VisitType.REMOTE,
                resident_kiosk_id=world.kiosk.id,
                starts_at=start,
                ends_at=start + dt.timedelta(minutes=op[1]),
                state=VisitState.SCHEDULED,
                participants=[],
                rate_cents_per_minute=Decimal(op[2]),
                recorded=True,
                reference=f"P{step:03d}-{len(booked):04d}",
                booked_by_type="visitor",
                booked_by_id=visitor.id,
                created_at=clock.now(),
            )
            nested = db.begin_nested()
            db.add(visit)
            db.flush()
            before = billing.wallet_summary(db, visitor.id).available_cents
            try:
                billing.hold_for_visit(db, clock, visit)
            except InsufficientFunds:
                assert before < billing.hold_cents(op[1], Decimal(op[2]))
                nested.rollback()
            else:
                nested.commit()
                booked.append(visit)
                done.append(("book", visit))
        elif op[0] == "cancel":
            live = [v for v in booked if v.state == VisitState.SCHEDULED]
            if not live:
                continue
            visit = live[op[1] % len(live)]
            states.transition(
                db, visit, VisitState.CANCELLED, actor=SYSTEM, at=clock.now(), cause="visitor"
            )
            settlement.settle_pending(db, clock, None)  # type: ignore[arg-type]
            settled.append(visit.id)
            done.append(("cancel", visit))
        else:  # replay an earlier operation: nothing may change
            if not done:
                continue
            earlier = done[op[1] % len(done)]
            before = snapshot(db)
            if earlier[0] == "deposit":
                deposit(earlier[1], earlier[2])
            elif earlier[0] == "book":
                billing.hold_for_visit(db, clock, earlier[1])
            else:
                billing.release_hold(db, clock, earlier[1])
                settlement.settle_pending(db, clock, None)  # type: ignore[arg-type]
            db.flush()
            assert snapshot(db) == before
        db.flush()
        check_invariants(db, settled)


def test_a_replayed_key_with_other_postings_is_refused(world, db, clock):
    received = ledger.account(db, clock, ledger.AccountKind.PAYMENTS_RECEIVED)
    w = billing.wallet(db, clock, world.visitor.id)
    ledger.post(db, clock, "same-key", "deposit", [(received, -100), (w, 100)])
    with pytest.raises(ledger.IdempotencyConflict):
        ledger.post(db, clock, "same-key", "deposit", [(received, -200), (w, 200)])


@pytest.mark.parametrize(
    "amounts", [[100, -99], [100], [Decimal(1), Decimal(-1)], [1.0, -1.0], [True, -1], [0, 0]]
)
def test_unbalanced_or_non_integer_postings_are_refused(world, db, clock, amounts):
    received = ledger.account(db, clock, ledger.AccountKind.PAYMENTS_RECEIVED)
    w = billing.wallet(db, clock, world.visitor.id)
    accounts = [received, w]
    with pytest.raises(ledger.InvalidInput):
        ledger.post(db, clock, "bad", "deposit", list(zip(accounts, amounts, strict=False)))
    assert ledger.find_transaction(db, "bad") is None


def test_a_wallet_cannot_be_spent_below_zero(world, db, clock):
    received = ledger.account(db, clock, ledger.AccountKind.PAYMENTS_RECEIVED)
    w = billing.wallet(db, clock, world.visitor.id)
    h = billing.hold_account(db, clock, world.visitor.id)
    ledger.post(db, clock, "in", "deposit", [(received, -100), (w, 100)])
    with pytest.raises(InsufficientFunds):
        ledger.post(db, clock, "out", "hold", [(w, -101), (h, 101)])
    assert ledger.balance(db, w.id) == 100


def test_the_ledger_refuses_to_change_or_delete_what_was_posted(world, db, clock):
    from sqlalchemy import delete, update
    from sqlalchemy.exc import DBAPIError

    received = ledger.account(db, clock, ledger.AccountKind.PAYMENTS_RECEIVED)
    w = billing.wallet(db, clock, world.visitor.id)
    ledger.post(db, clock, "in", "deposit", [(received, -100), (w, 100)])
    for statement in (
        update(LedgerEntry).values(amount_cents=1_000_000),
        delete(LedgerEntry),
    ):
        nested = db.begin_nested()
        with pytest.raises(DBAPIError):
            db.execute(statement)
        nested.rollback()
    assert ledger.balance(db, w.id) == 100
