from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, Field


class CardDepositIn(BaseModel):
    # Any JSON value: the service answers `invalid_amount` for anything but a whole
    # number of cents in range (a float, a string, zero, negative or huge).
    amount_cents: Any = Field(description="whole cents, 1 to 50000")
    card_number: str = Field(max_length=40)
    idempotency_key: str = Field(max_length=100, description="the same key on every retry")


class LobbyDepositIn(BaseModel):
    visitor_id: int
    amount_cents: Any = Field(description="whole cents, 1 to 50000")
    method: Literal["cash", "money_order"]
    reference: str = Field(default="", max_length=100)
    idempotency_key: str | None = Field(default=None, max_length=100)


class TransactionOut(BaseModel):
    id: int
    kind: str
    amount_cents: int
    description: str
    created_at: dt.datetime


class WalletOut(BaseModel):
    balance_cents: int
    held_cents: int
    available_cents: int
    balance: str  # "$12.50"
    held: str
    available: str


class DepositOut(BaseModel):
    transaction: TransactionOut
    wallet: WalletOut


class EntryOut(BaseModel):
    at: dt.datetime
    kind: str
    description: str
    amount_cents: int
    balance_after_cents: int
    visit_id: int | None


class CreditedMinuteOut(BaseModel):
    minute: int
    starts_at: dt.datetime
    seconds: int
    reasons: list[str]


class ReceiptOut(BaseModel):
    visit_id: int
    reference: str
    state: str
    starts_at: dt.datetime
    booked_minutes: int
    connected_seconds: int
    credited_minutes: list[CreditedMinuteOut]
    credited_seconds: int
    rate_cents_per_minute: str = Field(description="decimal cents per minute, e.g. '15.50'")
    free_seconds_used: int
    charge_cents: int
    held_cents: int
    released_cents: int
    charge: str
    settled_at: dt.datetime


# --- staff -------------------------------------------------------------------------------


class TrailEntryOut(BaseModel):
    account: str
    amount_cents: int


class TrailStepOut(BaseModel):
    at: dt.datetime
    transaction_id: int
    kind: str
    title: str
    description: str
    entries: list[TrailEntryOut]
    held_after_cents: int


class MoneyTrailOut(BaseModel):
    visit_id: int
    reference: str
    state: str
    starts_at: dt.datetime
    visitor: str
    resident: str
    booked_minutes: int
    rate_cents_per_minute: str
    steps: list[TrailStepOut]
    held_now_cents: int
    settled: bool
    connected_seconds: int | None
    credited_minutes: list[CreditedMinuteOut]
    free_seconds_used: int | None
    charge_cents: int | None
    released_cents: int | None


class RevenueDayOut(BaseModel):
    date: dt.date
    visits_charged: int
    revenue_cents: int


class RevenueOut(BaseModel):
    facility_id: int
    timezone: str
    from_date: dt.date = Field(serialization_alias="from")
    to_date: dt.date = Field(serialization_alias="to")
    days: list[RevenueDayOut]
    total_cents: int
    total_visits_charged: int


class RefundOut(BaseModel):
    at: dt.datetime
    transaction_id: int
    visitor_id: int
    visitor: str
    amount_cents: int
    reason: Literal["on_request", "inactivity", "account_closure", "other"]
    reason_words: str
    payout: str


class RefundsOut(BaseModel):
    facility_id: int
    timezone: str
    from_date: dt.date = Field(serialization_alias="from")
    to_date: dt.date = Field(serialization_alias="to")
    refunds: list[RefundOut]
    total_cents: int
