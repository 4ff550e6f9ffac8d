"""Test helpers for money: fund a wallet straight through the ledger, read the totals."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from openvisit.billing import ledger
from openvisit.billing import service as billing
from openvisit.billing.models import AccountKind, LedgerEntry, LedgerTransaction
from openvisit.clock import FrozenClock

_CLOCK = FrozenClock(dt.datetime(2026, 11, 1, tzinfo=dt.UTC))


def fund(
    db: Session, visitor_id: int, cents: int = 100_00, key: str | None = None, memo: str = ""
) -> None:
    """Put money in a visitor's wallet as if they had paid it in."""
    received = ledger.account(db, _CLOCK, AccountKind.PAYMENTS_RECEIVED)
    ledger.post(
        db,
        _CLOCK,
        key or f"test-fund:{visitor_id}:{cents}",
        "deposit",
        [(received, -cents), (billing.wallet(db, _CLOCK, visitor_id), cents)],
        memo or f"Added {ledger.dollars(cents)} (test)",
    )
    db.flush()


def entry_total(db: Session) -> int:
    return int(db.scalar(select(func.coalesce(func.sum(LedgerEntry.amount_cents), 0))))


def transaction_count(db: Session) -> int:
    db.expire_all()
    return int(db.scalar(select(func.count()).select_from(LedgerTransaction)))
