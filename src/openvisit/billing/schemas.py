"""The money API's shapes, and their builders from what the services return."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, Field

from openvisit.billing import reports
from openvisit.billing.ledger import dollars
from openvisit.billing.lobby import LobbyDeposit, LobbyVisitor
from openvisit.billing.models import LedgerTransaction
from openvisit.billing.service import HistoryLine, WalletSummary
from openvisit.billing.settlement import Receipt
from openvisit.facilities.models import Facility


class CardDepositIn(BaseModel):
    # Any JSON value: the service answers `invalid_amount` for anything but a whole
    # number of cents in range (a float, a string, zero, negative or huge).
    amount_cents: Any = Field(description="whole cents, 1 to 50000")
    card_number: str = Field(max_length=40)
    idempotency_key: str = Field(max_length=100, description="the same key on every retry")


class RefundIn(BaseModel):
    idempotency_key: str = Field(min_length=8, max_length=100)


class LobbyDepositIn(BaseModel):
    visitor: str = Field(
        max_length=200,
        description="the visitor's reference from GET /facilities/{facility_id}/lobby-visitors",
    )
    amount_cents: Any = Field(description="whole cents, 1 to 50000")
    method: Literal["cash", "money_order"]
    reference: str = Field(default="", max_length=100, description="the money order's number")
    idempotency_key: str | None = Field(default=None, max_length=100)


class LobbyVisitorOut(BaseModel):
    """A family linked to the facility, as staff at the lobby find it (no balance)."""

    reference: str = Field(description="name this in a lobby deposit")
    name: str
    email: str
    account_closed: bool

    @classmethod
    def of(cls, found: LobbyVisitor) -> LobbyVisitorOut:
        return cls(
            reference=found.reference,
            name=found.name,
            email=found.email,
            account_closed=found.account_closed,
        )


class LobbyDepositOut(BaseModel):
    """A lobby deposit's receipt. It never shows the wallet's balance."""

    transaction_id: int
    receipt_number: str
    recorded_at: dt.datetime
    amount_cents: int
    amount: str
    method: str
    reference: str
    visitor_name: str
    facility: str
    recorded_by: str
    description: str

    @classmethod
    def of(cls, d: LobbyDeposit) -> LobbyDepositOut:
        return cls(
            transaction_id=d.transaction_id,
            receipt_number=d.receipt_number,
            recorded_at=d.at,
            amount_cents=d.amount_cents,
            amount=dollars(d.amount_cents),
            method=d.method,
            reference=d.reference,
            visitor_name=d.visitor_name,
            facility=d.facility_name,
            recorded_by=d.recorded_by,
            description=d.memo,
        )


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

    @classmethod
    def of(cls, summary: WalletSummary) -> WalletOut:
        return cls(
            balance_cents=summary.balance_cents,
            held_cents=summary.held_cents,
            available_cents=summary.available_cents,
            balance=dollars(summary.balance_cents),
            held=dollars(summary.held_cents),
            available=dollars(summary.available_cents),
        )


class DepositOut(BaseModel):
    """A deposit or a refund, and the wallet after it."""

    transaction: TransactionOut
    wallet: WalletOut

    @classmethod
    def of(cls, txn: LedgerTransaction, amount_cents: int, summary: WalletSummary) -> DepositOut:
        """``amount_cents``: how much ``txn`` moved the wallet (+ in, - out)."""
        return cls(
            transaction=TransactionOut(
                id=txn.id,
                kind=txn.kind,
                amount_cents=amount_cents,
                description=txn.memo,
                created_at=txn.created_at,
            ),
            wallet=WalletOut.of(summary),
        )


class EntryOut(BaseModel):
    at: dt.datetime
    kind: str
    description: str
    amount_cents: int
    balance_after_cents: int
    visit_id: int | None

    @classmethod
    def of(cls, line: HistoryLine) -> EntryOut:
        return cls(**vars(line))


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

    @classmethod
    def of(cls, r: Receipt) -> ReceiptOut:
        data = {k: v for k, v in vars(r).items() if k not in ("timezone", "credited_minutes")}
        data["rate_cents_per_minute"] = f"{r.rate_cents_per_minute:.2f}"
        return cls(
            **data,
            credited_minutes=[CreditedMinuteOut(**vars(c)) for c in r.credited_minutes],
            charge=dollars(r.charge_cents),
        )


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

    @classmethod
    def of(cls, trail: reports.MoneyTrail) -> MoneyTrailOut:
        row = trail.settlement
        return cls(
            visit_id=trail.visit.id,
            reference=trail.visit.reference,
            state=trail.visit.state.value,
            starts_at=trail.visit.starts_at,
            visitor=trail.visitor_name,
            resident=trail.resident_name,
            booked_minutes=trail.booked_minutes,
            rate_cents_per_minute=f"{trail.rate_cents_per_minute:.2f}",
            steps=[
                TrailStepOut(
                    at=step.at,
                    transaction_id=step.transaction_id,
                    kind=step.kind,
                    title=step.title,
                    description=step.memo,
                    entries=[TrailEntryOut(**vars(e)) for e in step.entries],
                    held_after_cents=step.held_after_cents,
                )
                for step in trail.steps
            ],
            held_now_cents=trail.held_now_cents,
            settled=row is not None,
            connected_seconds=row.billable_seconds if row else None,
            credited_minutes=[CreditedMinuteOut(**vars(c)) for c in trail.credits],
            free_seconds_used=row.free_seconds_used if row else None,
            charge_cents=row.charge_cents if row else None,
            released_cents=row.released_cents if row else None,
        )


class RevenueDayOut(BaseModel):
    date: dt.date
    visits_charged: int
    revenue_cents: int


class _FacilityDaysOut(BaseModel):
    """A staff money report over a range of the facility's local days."""

    facility_id: int
    timezone: str
    from_date: dt.date = Field(serialization_alias="from")
    to_date: dt.date = Field(serialization_alias="to")

    @staticmethod
    def span_of(facility: Facility, span: reports.DateRange) -> dict[str, Any]:
        return {
            "facility_id": facility.id,
            "timezone": facility.timezone,
            "from_date": span.first,
            "to_date": span.last,
        }


class RevenueOut(_FacilityDaysOut):
    days: list[RevenueDayOut]
    total_cents: int
    total_visits_charged: int

    @classmethod
    def of(cls, facility: Facility, revenue: reports.Revenue) -> RevenueOut:
        return cls(
            **cls.span_of(facility, revenue.span),
            days=[
                RevenueDayOut(date=d.day, visits_charged=d.visits, revenue_cents=d.cents)
                for d in revenue.days
            ],
            total_cents=revenue.total_cents,
            total_visits_charged=revenue.total_visits,
        )


class RefundOut(BaseModel):
    at: dt.datetime
    transaction_id: int
    visitor_id: int
    visitor: str = Field(validation_alias="visitor_name")
    amount_cents: int
    reason: Literal["on_request", "inactivity", "account_closure", "other"]
    reason_words: str
    payout: str


class RefundsOut(_FacilityDaysOut):
    refunds: list[RefundOut]
    total_cents: int

    @classmethod
    def of(cls, facility: Facility, found: reports.Refunds) -> RefundsOut:
        return cls(
            **cls.span_of(facility, found.span),
            refunds=[RefundOut.model_validate(line, from_attributes=True) for line in found.lines],
            total_cents=found.total_cents,
        )
