"""The ledger (DESIGN §4, Metering and billing): accounts, transactions, entries.

Double-entry and append-only: a transaction's entries sum to zero, nothing is
ever updated or deleted (PostgreSQL refuses it by trigger, see migration 0004),
and every balance is a SUM over entries.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from openvisit.db import Base, BigId, enum_column, intpk


class AccountKind(enum.StrEnum):
    VISITOR_WALLET = "visitor_wallet"  # the family's money, spendable
    VISITOR_HOLD = "visitor_hold"  # set aside for booked visits
    FACILITY_REVENUE = "facility_revenue"  # charges captured for a facility's visits
    PAYMENTS_RECEIVED = "payments_received"  # money that came in (cards, cash, money orders)
    REFUNDS_PAID = "refunds_paid"  # money paid back out


# Accounts that may never go below zero: they hold a family's own money.
NEVER_NEGATIVE = frozenset({AccountKind.VISITOR_WALLET, AccountKind.VISITOR_HOLD})


class LedgerAccount(Base):
    __tablename__ = "ledger_accounts"

    id: Mapped[intpk]
    kind: Mapped[AccountKind] = enum_column(AccountKind)
    # "visitor_wallet:12", "facility_revenue:3", "payments_received": one account per key.
    owner_key: Mapped[str] = mapped_column(String(64), unique=True)
    visitor_id: Mapped[int | None] = mapped_column(ForeignKey("visitors.id"), index=True)
    facility_id: Mapped[int | None] = mapped_column(ForeignKey("facilities.id"))
    created_at: Mapped[dt.datetime]


class LedgerTransaction(Base):
    __tablename__ = "ledger_transactions"

    id: Mapped[intpk]
    idempotency_key: Mapped[str] = mapped_column(String(160), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    # SHA-256 of the postings (and what else identifies the operation): a replayed key
    # with other content is refused instead of silently answered.
    digest: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime]
    memo: Mapped[str] = mapped_column(String(500), default="")
    visit_id: Mapped[int | None] = mapped_column(ForeignKey("visits.id"), index=True)
    facility_id: Mapped[int | None] = mapped_column(ForeignKey("facilities.id"))
    actor_type: Mapped[str] = mapped_column(String(16), default="system")
    actor_id: Mapped[int | None] = mapped_column(BigId)


class LedgerEntry(Base):
    __tablename__ = "ledger_entries"
    __table_args__ = (
        CheckConstraint("amount_cents <> 0", name="amount_nonzero"),
        Index("ix_ledger_entries_account", "account_id", "transaction_id"),
    )

    id: Mapped[intpk]
    transaction_id: Mapped[int] = mapped_column(ForeignKey("ledger_transactions.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id"))
    amount_cents: Mapped[int] = mapped_column(BigInteger)  # signed: + into the account


class BillingSettlement(Base):
    """A visit whose money is settled (hold released or captured): the worker's
    "done" mark on the visit-transition outbox."""

    __tablename__ = "billing_settlements"

    visit_id: Mapped[int] = mapped_column(ForeignKey("visits.id"), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(24))  # released | captured | nothing_held
    transaction_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_transactions.id"))
    settled_at: Mapped[dt.datetime]
    # What the receipt shows (billing.service.receipt), fixed when the visit settled.
    held_cents: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    charge_cents: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    released_cents: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    billable_seconds: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    credited_seconds: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # [{"minute": n, "seconds": billed seconds not charged, "reasons": [...]}] (billing.quality)
    credits: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    # Of the resident's weekly free minutes, the seconds this visit used: never used again.
    free_seconds_used: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
