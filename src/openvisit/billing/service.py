"""Wallets, deposits, visit holds, their capture and release, receipts (DESIGN §4,
Metering and billing).

A visit that went live and ended (completed or terminated) is charged for its metered
seconds, less fair-quality credited minutes (billing.quality) and the resident's weekly
free minutes; every other ended visit gets its whole hold back. ``settle_pending`` (the
worker job) does both, exactly once per visit, and stores what the receipt shows.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import re
import secrets
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from openvisit import audit
from openvisit.audit.service import SYSTEM, AuditActor
from openvisit.billing import ledger, quality
from openvisit.billing.gateway import PaymentGateway
from openvisit.billing.ledger import InsufficientFunds, dollars
from openvisit.billing.models import (
    AccountKind,
    BillingSettlement,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
)
from openvisit.clock import Clock
from openvisit.config import Settings
from openvisit.errors import Code, Conflict, InvalidInput, NotFound
from openvisit.facilities.models import Facility, FacilitySettings
from openvisit.people.models import Visitor
from openvisit.residents.models import Resident
from openvisit.visits.models import Visit, VisitEvent, VisitMeter, VisitTransition

log = logging.getLogger(__name__)

MAX_DEPOSIT_CENTS = 50_000
DEPOSIT_METHODS = {"cash": "Cash", "money_order": "Money order"}
# A visit that ends in one of these states gets its whole hold back (a missed visit was
# never connected: nothing to charge).
RELEASE_STATES = ("cancelled", "denied", "failed", "missed")
# A visit that went live and ended in one of these is charged for what was metered.
CAPTURE_STATES = ("completed", "terminated")
_KEY = re.compile(r"^[A-Za-z0-9._:-]{8,100}$")


# --- checking input ------------------------------------------------------------------


def check_amount(value: object) -> int:
    """A deposit amount: a whole number of cents from 1 to 50,000 (a JSON int, nothing else)."""
    if type(value) is not int or not 1 <= value <= MAX_DEPOSIT_CENTS:
        raise InvalidInput(
            f"Enter a whole number of cents from 1 to {MAX_DEPOSIT_CENTS:,} "
            f"({dollars(MAX_DEPOSIT_CENTS)} at most per deposit).",
            code=Code.INVALID_AMOUNT,
            fields={"amount_cents": f"Enter from 1 to {MAX_DEPOSIT_CENTS} cents"},
        )
    return value


def check_key(value: str) -> str:
    if not _KEY.match(value or ""):
        raise InvalidInput(
            "The idempotency key must be 8 to 100 letters, digits or . _ : -",
            code=Code.INVALID_IDEMPOTENCY_KEY,
            fields={"idempotency_key": "Use 8 to 100 letters, digits or . _ : -"},
        )
    return value


def check_card(value: str) -> str:
    digits = re.sub(r"[ -]", "", value or "")
    if not digits.isdigit() or not 12 <= len(digits) <= 19:
        raise InvalidInput(
            "Enter the card number: 12 to 19 digits.",
            code=Code.INVALID_CARD,
            fields={"card_number": "Enter 12 to 19 digits"},
        )
    return digits


def hold_cents(length_minutes: int, rate_cents_per_minute: Decimal) -> int:
    """What a booking sets aside: length x rate, rounded half down to the cent."""
    return ledger.cents_half_down(Decimal(length_minutes) * Decimal(rate_cents_per_minute))


# --- wallets ---------------------------------------------------------------------------


def wallet(session: Session, clock: Clock, visitor_id: int) -> LedgerAccount:
    """The visitor's wallet; their hold account is opened with it, so that booking (the
    busy path) finds both in one query."""
    found = ledger.find_account(session, AccountKind.VISITOR_WALLET, visitor_id)
    if found is not None:
        return found
    ledger.account(session, clock, AccountKind.VISITOR_HOLD, visitor_id=visitor_id)
    return ledger.account(session, clock, AccountKind.VISITOR_WALLET, visitor_id=visitor_id)


def hold_account(session: Session, clock: Clock, visitor_id: int) -> LedgerAccount:
    return ledger.account(session, clock, AccountKind.VISITOR_HOLD, visitor_id=visitor_id)


@dataclass(frozen=True)
class WalletSummary:
    available_cents: int
    held_cents: int

    @property
    def balance_cents(self) -> int:
        return self.available_cents + self.held_cents


def wallet_summary(session: Session, visitor_id: int) -> WalletSummary:
    """Balances are sums of entries; a visitor without accounts yet has zero."""
    w = ledger.find_account(session, AccountKind.VISITOR_WALLET, visitor_id)
    h = ledger.find_account(session, AccountKind.VISITOR_HOLD, visitor_id)
    return WalletSummary(
        available_cents=ledger.balance(session, w.id if w else None),
        held_cents=ledger.balance(session, h.id if h else None),
    )


@dataclass(frozen=True)
class HistoryLine:
    at: dt.datetime
    kind: str
    description: str
    amount_cents: int  # + into the wallet, - out of it
    balance_after_cents: int
    visit_id: int | None


def history_csv(session: Session, visitor_id: int) -> str:
    """The wallet's history as CSV (oldest first), for the family's own records."""
    buffer = io.StringIO()
    out = csv.writer(buffer)
    out.writerow(["date_utc", "what", "amount_usd", "balance_after_usd", "visit_id"])
    for line in reversed(history(session, visitor_id)):
        out.writerow(
            [
                line.at.astimezone(dt.UTC).isoformat(timespec="seconds"),
                line.description,
                _usd(line.amount_cents),
                _usd(line.balance_after_cents),
                line.visit_id or "",
            ]
        )
    return buffer.getvalue()


def _cell(text: str) -> str:
    """Text a spreadsheet won't run as a formula (a memo may carry staff-typed words)."""
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _usd(cents: int) -> str:
    """Cents as a plain decimal number of dollars (no float): -1250 -> "-12.50"."""
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}"


def history(session: Session, visitor_id: int) -> list[HistoryLine]:
    """Every movement of the wallet, newest first, each in plain words."""
    w = ledger.find_account(session, AccountKind.VISITOR_WALLET, visitor_id)
    if w is None:
        return []
    rows = session.execute(
        select(LedgerTransaction, LedgerEntry.amount_cents)
        .join(LedgerEntry, LedgerEntry.transaction_id == LedgerTransaction.id)
        .where(LedgerEntry.account_id == w.id)
        .order_by(LedgerEntry.id)
    ).all()
    lines, running = [], 0
    for txn, amount in rows:
        running += amount
        lines.append(HistoryLine(txn.created_at, txn.kind, txn.memo, amount, running, txn.visit_id))
    return lines[::-1]


def wallet_change(session: Session, transaction_id: int, visitor_id: int) -> int:
    """How much one transaction moved this visitor's wallet (+ in, - out)."""
    w = ledger.find_account(session, AccountKind.VISITOR_WALLET, visitor_id)
    if w is None:
        return 0
    return int(
        session.scalar(  # type: ignore[arg-type]  # COALESCE never gives NULL
            select(func.coalesce(func.sum(LedgerEntry.amount_cents), 0)).where(
                LedgerEntry.transaction_id == transaction_id, LedgerEntry.account_id == w.id
            )
        )
    )


# --- deposits --------------------------------------------------------------------------


def deposit_by_card(
    session: Session,
    clock: Clock,
    gateway: PaymentGateway,
    actor: AuditActor,
    visitor: Visitor,
    *,
    amount_cents: object,
    card_number: str,
    idempotency_key: str,
) -> LedgerTransaction:
    """Add money from a card. Retrying with the same key never charges twice; a timeout
    leaves nothing posted and the retry goes through once."""
    amount = check_amount(amount_cents)
    key = f"deposit:{visitor.id}:{check_key(idempotency_key)}"
    card = check_card(card_number)
    received = ledger.account(session, clock, AccountKind.PAYMENTS_RECEIVED)
    postings = [(received, -amount), (wallet(session, clock, visitor.id), amount)]
    extra = {"method": "card", "card_last4": card[-4:]}
    existing = ledger.find_transaction(session, key)
    if existing is not None:  # a replay: answer it without going to the card again
        return ledger.post(session, clock, key, "deposit", postings, extra=extra, actor=actor)
    result = gateway.charge(idempotency_key=key, amount_cents=amount, card_number=card)
    return ledger.post(
        session,
        clock,
        key,
        "deposit",
        postings,
        f"Added {dollars(amount)} by card ending {card[-4:]} (payment {result.reference})",
        actor=actor,
        extra=extra,
    )


def record_lobby_deposit(
    session: Session,
    clock: Clock,
    actor: AuditActor,
    facility: Facility,
    *,
    visitor_id: int,
    amount_cents: object,
    method: str,
    reference: str = "",
    idempotency_key: str | None = None,
) -> LedgerTransaction:
    """Staff record cash or a money order taken at the lobby; audited."""
    amount = check_amount(amount_cents)
    if method not in DEPOSIT_METHODS:
        raise InvalidInput(
            "Choose cash or money order.",
            code=Code.INVALID_METHOD,
            fields={"method": "Choose cash or money order"},
        )
    reference = " ".join((reference or "").split())
    if len(reference) > 100 or (method == "money_order" and not reference):
        raise InvalidInput(
            "Enter the money order's number (at most 100 characters).",
            code=Code.INVALID_REFERENCE,
            fields={"reference": "Enter the money order number"},
        )
    visitor = session.get(Visitor, visitor_id)
    if visitor is None:
        raise NotFound("We couldn't find that visitor.", code=Code.VISITOR_NOT_FOUND)
    if visitor.closed_at is not None:
        raise Conflict(
            "This visitor closed their account, so money can't be added to it. "
            "Give the money back to the family.",
            code=Code.ACCOUNT_CLOSED,
        )
    key = (
        f"lobby:{facility.id}:{check_key(idempotency_key)}"
        if idempotency_key
        else f"lobby:{facility.id}:{secrets.token_hex(12)}"
    )
    received = ledger.account(session, clock, AccountKind.PAYMENTS_RECEIVED)
    label = DEPOSIT_METHODS[method]
    memo = f"Added {dollars(amount)}: {label.lower()} at {facility.name}" + (
        f" (ref {reference})" if reference else ""
    )
    txn = ledger.post(
        session,
        clock,
        key,
        "deposit",
        [(received, -amount), (wallet(session, clock, visitor.id), amount)],
        memo,
        facility_id=facility.id,
        actor=actor,
        extra={"method": method, "reference": reference},
    )
    audit.service.record(
        session,
        tag="wallet:deposit_recorded",
        actor=actor,
        at=clock.now(),
        facility_id=facility.id,
        subject=("visitor", visitor.id),
        data={
            "amount_cents": amount,
            "method": method,
            "reference": reference,
            "transaction_id": txn.id,
        },
    )
    return txn


# --- visit holds -----------------------------------------------------------------------


def visit_hold_cents(session: Session, visit_id: int) -> int:
    """What is still set aside for this visit (zero once it is settled)."""
    return int(
        session.scalar(  # type: ignore[arg-type]  # COALESCE never gives NULL
            select(func.coalesce(func.sum(LedgerEntry.amount_cents), 0))
            .join(LedgerTransaction, LedgerTransaction.id == LedgerEntry.transaction_id)
            .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
            .where(
                LedgerTransaction.visit_id == visit_id,
                LedgerAccount.kind == AccountKind.VISITOR_HOLD,
            )
        )
    )


def _when(session: Session, visit: Visit) -> str:
    facility = session.get(Facility, visit.facility_id)
    tz = ZoneInfo(facility.timezone) if facility else dt.UTC
    return visit.starts_at.astimezone(tz).strftime("%a %d %b %Y at %I:%M %p")


def hold_for_visit(
    session: Session, clock: Clock, visit: Visit, *, replaces: int | None = None
) -> LedgerTransaction | None:
    """Set aside length x rate from the visitor's wallet for a paid visit just booked,
    in the booking's own transaction. Not enough money: ``insufficient_funds``, and the
    caller's rollback takes the booking away too.

    ``replaces``: the visit this one reschedules; its hold comes back first.
    """
    if replaces is not None:
        old = session.get(Visit, replaces)
        if old is not None:
            release_hold(session, clock, old)
    minutes = int((visit.ends_at - visit.starts_at).total_seconds() // 60)
    amount = hold_cents(minutes, visit.rate_cents_per_minute)
    if amount <= 0:
        return None
    w, h = ledger.accounts(
        session,
        clock,
        [
            (AccountKind.VISITOR_WALLET, visit.visitor_id),
            (AccountKind.VISITOR_HOLD, visit.visitor_id),
        ],
    )
    try:
        return ledger.post(
            session,
            clock,
            f"visit:{visit.id}:hold",
            "hold",
            [(w, -amount), (h, amount)],
            f"Set aside {dollars(amount)} for your visit on {_when(session, visit)} "
            f"(ref {visit.reference})",
            visit_id=visit.id,
            facility_id=visit.facility_id,
        )
    except InsufficientFunds as exc:
        have = exc.details.get("available_cents", 0)
        raise InsufficientFunds(
            f"This {minutes}-minute visit costs up to {dollars(amount)}, which is set aside "
            f"when you book; your wallet has {dollars(have)} available. Add money to your "
            "wallet, or choose a shorter visit.",
            available_cents=have,
            needed_cents=amount,
        ) from None


_RELEASE_WORDS = {
    "cancelled": "was cancelled",
    "denied": "was not approved",
    "failed": "failed",
    "missed": "did not take place",
}


def release_hold(session: Session, clock: Clock, visit: Visit) -> LedgerTransaction | None:
    """Give back everything still set aside for ``visit``, exactly once."""
    key = f"visit:{visit.id}:release"
    existing = ledger.find_transaction(session, key)
    if existing is not None:
        return existing
    amount = visit_hold_cents(session, visit.id)
    if amount <= 0:
        return None
    words = _RELEASE_WORDS.get(visit.state.value, "ended")
    return ledger.post(
        session,
        clock,
        key,
        "release",
        [
            (hold_account(session, clock, visit.visitor_id), -amount),
            (wallet(session, clock, visit.visitor_id), amount),
        ],
        f"{dollars(amount)} back in your wallet: your visit on {_when(session, visit)} "
        f"(ref {visit.reference}) {words}",
        visit_id=visit.id,
        facility_id=visit.facility_id,
    )


def _mark_settled(
    session: Session,
    clock: Clock,
    visit_id: int,
    txn: LedgerTransaction | None,
    *,
    outcome: str,
    **values: object,
) -> None:
    session.execute(
        ledger._insert(session, BillingSettlement)
        .values(
            visit_id=visit_id,
            outcome=outcome if txn is not None else "nothing_held",
            transaction_id=txn.id if txn is not None else None,
            settled_at=clock.now(),
            **values,
        )
        .on_conflict_do_nothing(index_elements=["visit_id"])
    )


def _settled(session: Session, visit_id: int) -> bool:
    return (
        session.scalar(
            select(BillingSettlement.visit_id).where(BillingSettlement.visit_id == visit_id)
        )
        is not None
    )


def _release_and_settle(session: Session, clock: Clock, visit: Visit) -> bool:
    if _settled(session, visit.id):
        return False
    txn = release_hold(session, clock, visit)
    amount = wallet_change(session, txn.id, visit.visitor_id) if txn is not None else 0
    meter = session.get(VisitMeter, visit.id)
    _mark_settled(
        session,
        clock,
        visit.id,
        txn,
        outcome="released",
        held_cents=max(amount, 0),
        released_cents=max(amount, 0),
        billable_seconds=meter.billable_seconds if meter else 0,
        credits=[],
    )
    return True


# --- capture of a visit that went live and ended ----------------------------------------


def week_bounds(starts_at: dt.datetime, timezone: str) -> tuple[dt.datetime, dt.datetime]:
    """The facility-local Monday 00:00 to the next Monday 00:00 around ``starts_at``, in UTC
    (a week with a DST change is 167 or 169 hours long)."""
    tz = ZoneInfo(timezone)
    monday = starts_at.astimezone(tz).date()
    monday -= dt.timedelta(days=monday.weekday())
    lo = dt.datetime.combine(monday, dt.time(0), tzinfo=tz)
    hi = dt.datetime.combine(monday + dt.timedelta(days=7), dt.time(0), tzinfo=tz)
    return lo.astimezone(dt.UTC), hi.astimezone(dt.UTC)


def free_seconds_used_elsewhere(session: Session, visit: Visit, timezone: str) -> int:
    """The resident's weekly free time already used by their other settled visits that
    started in the same facility-local week as ``visit``."""
    lo, hi = week_bounds(visit.starts_at, timezone)
    return int(
        session.scalar(  # type: ignore[arg-type]  # COALESCE never gives NULL
            select(func.coalesce(func.sum(BillingSettlement.free_seconds_used), 0))
            .join(Visit, Visit.id == BillingSettlement.visit_id)
            .where(
                Visit.resident_id == visit.resident_id,
                Visit.starts_at >= lo,
                Visit.starts_at < hi,
                Visit.id != visit.id,
            )
        )
    )


def _intervals(meter: VisitMeter | None) -> list[tuple[dt.datetime, dt.datetime]]:
    if meter is None:
        return []
    return [
        (dt.datetime.fromisoformat(lo), dt.datetime.fromisoformat(hi)) for lo, hi in meter.intervals
    ]


def _billed_in(
    intervals: list[tuple[dt.datetime, dt.datetime]], lo: dt.datetime, hi: dt.datetime
) -> int:
    """Seconds of [lo, hi) that were billed, a part second counting as a whole one
    (a credit rounds in the family's favour)."""
    total = sum(
        (max(dt.timedelta(), min(b, hi) - max(a, lo)) for a, b in intervals), dt.timedelta()
    )
    return -(-total // dt.timedelta(seconds=1))


@dataclass(frozen=True)
class Charge:
    """How a settled visit's hold is split (all pure arithmetic, see ``compute_charge``)."""

    billable_seconds: int
    credited_seconds: int
    free_seconds_used: int
    charged_seconds: int
    charge_cents: int
    held_cents: int

    @property
    def released_cents(self) -> int:
        return self.held_cents - self.charge_cents


def compute_charge(
    *,
    billable_seconds: int,
    credited_seconds: int,
    free_seconds_available: int,
    rate_cents_per_minute: Decimal,
    held_cents: int,
) -> Charge:
    """Credited minutes come off first (they never use up free minutes), then the weekly
    free time, then the rest is charged: seconds x rate / 60, rounded half down to the
    cent, and never more than was held. A visit with nothing held (free) uses no free time.
    """
    credited = min(max(credited_seconds, 0), billable_seconds)
    chargeable = billable_seconds - credited
    paid = held_cents > 0 and rate_cents_per_minute > 0
    free = min(chargeable, max(free_seconds_available, 0)) if paid else 0
    charged = chargeable - free
    cents = ledger.cents_half_down(Decimal(charged) * Decimal(rate_cents_per_minute) / 60)
    return Charge(
        billable_seconds=billable_seconds,
        credited_seconds=credited,
        free_seconds_used=free,
        charged_seconds=charged,
        charge_cents=min(cents, max(held_cents, 0)) if paid else 0,
        held_cents=max(held_cents, 0),
    )


def _lock_resident(session: Session, resident_id: int) -> None:
    """Settlements of one resident's visits take turns (PostgreSQL row lock; SQLite has one
    writer), so two workers can't both spend the same free minutes."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(Resident.id).where(Resident.id == resident_id).with_for_update())


def _duration_words(seconds: int) -> str:
    minutes, rest = divmod(seconds, 60)
    return f"{minutes} min {rest:02d} s" if minutes else f"{rest} s"


def capture_visit(session: Session, clock: Clock, visit: Visit) -> bool:
    """Settle a visit that went live and ended (completed or terminated), exactly once:
    charge what was metered, less credited minutes and free time, from the hold to the
    facility's revenue, and give the rest back, in one ledger transaction. Returns False
    when it was settled already (by an earlier run or another worker)."""
    _lock_resident(session, visit.resident_id)
    if _settled(session, visit.id):
        return False
    facility = session.get(Facility, visit.facility_id)
    timezone = facility.timezone if facility else "UTC"
    settings_row = session.get(FacilitySettings, visit.facility_id)
    weekly_free = settings_row.free_minutes_per_week * 60 if settings_row else 0
    meter = session.get(VisitMeter, visit.id)
    intervals = _intervals(meter)
    # Plain rows, not ORM objects: a 30-minute visit has ~1,800 reports (one per party
    # every 2 s), and only these four fields are read.
    stats = session.execute(
        select(VisitEvent.at, VisitEvent.kind, VisitEvent.party, VisitEvent.data)
        .where(VisitEvent.visit_id == visit.id, VisitEvent.kind == "stats")
        .order_by(VisitEvent.at, VisitEvent.id)
    ).all()
    credits: list[dict[str, Any]] = []
    credited_total = 0
    for credit in quality.credited_minutes(stats, visit.starts_at, visit.ends_at):
        lo = visit.starts_at + credit.minute * quality.MINUTE
        seconds = _billed_in(intervals, lo, min(lo + quality.MINUTE, visit.ends_at))
        if seconds > 0:  # a minute nobody was billed for needs no credit
            credits.append({"minute": credit.minute, "seconds": seconds, "reasons": credit.reasons})
            credited_total += seconds
    held = visit_hold_cents(session, visit.id)
    charge = compute_charge(
        billable_seconds=meter.billable_seconds if meter else 0,
        credited_seconds=credited_total,
        free_seconds_available=weekly_free - free_seconds_used_elsewhere(session, visit, timezone),
        rate_cents_per_minute=Decimal(visit.rate_cents_per_minute),
        held_cents=held,
    )
    txn = None
    if charge.held_cents > 0:
        postings = [(hold_account(session, clock, visit.visitor_id), -charge.held_cents)]
        if charge.charge_cents:
            revenue = ledger.account(
                session, clock, AccountKind.FACILITY_REVENUE, facility_id=visit.facility_id
            )
            postings.append((revenue, charge.charge_cents))
        if charge.released_cents:
            postings.append((wallet(session, clock, visit.visitor_id), charge.released_cents))
        txn = ledger.post(
            session,
            clock,
            f"visit:{visit.id}:capture",
            "capture",
            postings,
            f"Your visit on {_when(session, visit)} (ref {visit.reference}): "
            f"{_duration_words(charge.billable_seconds)} connected, "
            f"charged {dollars(charge.charge_cents)}; "
            f"{dollars(charge.released_cents)} back in your wallet",
            visit_id=visit.id,
            facility_id=visit.facility_id,
        )
    _mark_settled(
        session,
        clock,
        visit.id,
        txn,
        outcome="captured",
        held_cents=charge.held_cents,
        charge_cents=charge.charge_cents,
        released_cents=charge.released_cents,
        billable_seconds=charge.billable_seconds,
        credited_seconds=charge.credited_seconds,
        credits=credits,
        free_seconds_used=charge.free_seconds_used,
    )
    session.flush()
    return True


def settle_pending(session: Session, clock: Clock, settings: Settings, *, limit: int = 200) -> int:
    """The worker job, reading the stored transitions (the outbox): a visit that went live
    and ended (completed, terminated) is charged and the rest of its hold released
    (``capture_visit``); one that was cancelled, denied, missed or failed gets its whole
    hold back. Safe to run twice or on two nodes at once: the idempotency keys, the
    settlement's primary key and the resident lock see to it."""
    visit_ids = session.scalars(
        select(VisitTransition.visit_id)
        .outerjoin(BillingSettlement, BillingSettlement.visit_id == VisitTransition.visit_id)
        .where(
            VisitTransition.to_state.in_(RELEASE_STATES + CAPTURE_STATES),
            BillingSettlement.visit_id.is_(None),
        )
        .order_by(VisitTransition.id)
        .limit(limit)
    ).all()
    done = 0
    for visit_id in dict.fromkeys(visit_ids):
        visit = session.get(Visit, visit_id)
        if visit is None:  # pragma: no cover - visits are never deleted
            continue
        # One visit's problem must not hold up everyone else's money.
        try:
            with session.begin_nested():
                settled = settle_visit(session, clock, visit)
        except Exception:
            log.exception("could not settle visit %s; will retry at the next tick", visit_id)
            continue
        if settled:
            done += 1
    return done


def settle_visit(session: Session, clock: Clock, visit: Visit) -> bool:
    """Settle one ended visit's money, exactly once: capture what a visit that went live
    and ended was connected for, or give a cancelled, denied, missed or failed visit its
    whole hold back. False when it was settled already, or has not ended."""
    if visit.state.value in CAPTURE_STATES:
        return capture_visit(session, clock, visit)
    if visit.state.value in RELEASE_STATES:
        return _release_and_settle(session, clock, visit)
    return False


# --- receipts ----------------------------------------------------------------------------


class NotSettled(Conflict):
    code = Code.NOT_SETTLED
    message = (
        "This visit's money is not settled yet. The receipt is ready a minute or two "
        "after the visit ends."
    )


@dataclass(frozen=True)
class CreditedMinute:
    minute: int  # 0 is the visit's first minute
    starts_at: dt.datetime
    seconds: int  # connected seconds of that minute not charged
    reasons: list[str]


@dataclass(frozen=True)
class Receipt:
    visit_id: int
    reference: str
    state: str
    timezone: str
    starts_at: dt.datetime
    booked_minutes: int
    connected_seconds: int
    credited_minutes: list[CreditedMinute]
    credited_seconds: int
    rate_cents_per_minute: Decimal
    free_seconds_used: int
    charge_cents: int
    held_cents: int
    released_cents: int
    settled_at: dt.datetime


def receipt(session: Session, visit_id: int, *, visitor_id: int | None = None) -> Receipt:
    """What a settled visit cost and why. ``visitor_id``: only that visitor's own visit
    (anyone else's, or a missing one, is ``visit_not_found``)."""
    visit = session.get(Visit, visit_id)
    if visit is None or (visitor_id is not None and visit.visitor_id != visitor_id):
        raise NotFound("We couldn't find that visit.", code=Code.VISIT_NOT_FOUND)
    row = session.get(BillingSettlement, visit.id)
    if row is None:
        raise NotSettled(visit_id=visit.id)
    facility = session.get(Facility, visit.facility_id)
    credits = [
        CreditedMinute(
            minute=c["minute"],
            starts_at=visit.starts_at + c["minute"] * quality.MINUTE,
            seconds=c["seconds"],
            reasons=[quality.reason_words(r) for r in c["reasons"]],
        )
        for c in row.credits or []
    ]
    return Receipt(
        visit_id=visit.id,
        reference=visit.reference,
        state=visit.state.value,
        timezone=facility.timezone if facility else "UTC",
        starts_at=visit.starts_at,
        booked_minutes=int((visit.ends_at - visit.starts_at).total_seconds() // 60),
        connected_seconds=row.billable_seconds,
        credited_minutes=credits,
        credited_seconds=row.credited_seconds,
        rate_cents_per_minute=Decimal(visit.rate_cents_per_minute),
        free_seconds_used=row.free_seconds_used,
        charge_cents=row.charge_cents,
        held_cents=row.held_cents,
        released_cents=row.released_cents,
        settled_at=row.settled_at,
    )


# --- refunds ---------------------------------------------------------------------------


class NothingToRefund(Conflict):
    code = Code.NOTHING_TO_REFUND
    message = "There is no money in your wallet to refund."


INACTIVE_AFTER = dt.timedelta(days=180)
# How a refund's idempotency key begins -> (reason, in words for staff). The keys are
# ``refund:<visitor>:<attempt>`` (billing.routes), ``inactive-refund:<visitor>:<last entry>``
# and ``account-closure:<visitor>:<last entry>`` (below).
REFUND_REASONS = {
    "refund": ("on_request", "On request"),
    "inactive-refund": ("inactivity", "After 180 days unused"),
    "account-closure": ("account_closure", "Account closed"),
}


def refund_balance(
    session: Session,
    clock: Clock,
    gateway: PaymentGateway,
    actor: AuditActor,
    visitor_id: int,
    *,
    key: str,
    reason: str = "on request",
) -> LedgerTransaction:
    """Pay the wallet's whole available balance back, exactly once per key.

    The wallet row is locked (PostgreSQL) before the balance is read and stays locked through
    the payout and the posting, so two refunds can't both pay the same money; a timed-out
    payout posts nothing and the same key can be retried.
    """
    existing = ledger.find_transaction(session, key)
    w = wallet(session, clock, visitor_id)
    if existing is None:
        ledger.lock_accounts(session, [w.id])
        amount = ledger.balance(session, w.id)
        if amount <= 0:
            raise NothingToRefund()
    else:
        amount = -wallet_change(session, existing.id, visitor_id)
    reference = gateway.payout(idempotency_key=key, amount_cents=amount, visitor_id=visitor_id)
    paid_out = ledger.account(session, clock, AccountKind.REFUNDS_PAID)
    txn = ledger.post(
        session,
        clock,
        key,
        "refund",
        [(w, -amount), (paid_out, amount)],
        f"Refunded {dollars(amount)} {reason} (payout {reference})",
        actor=actor,
        extra={"reason": reason},
    )
    audit.service.record(
        session,
        tag="wallet:refunded",
        actor=actor,
        at=clock.now(),
        subject=("visitor", visitor_id),
        data={"amount_cents": amount, "reason": reason, "payout": reference},
    )
    return txn


def lock_wallet(session: Session, clock: Clock, visitor_id: int) -> int:
    """Lock the visitor's wallet and hold accounts until the transaction ends (PostgreSQL),
    so no booking, capture or refund moves their money meanwhile; return the id of the last
    transaction that moved either (0 if none), which names this state of the wallet."""
    accounts = [wallet(session, clock, visitor_id), hold_account(session, clock, visitor_id)]
    ledger.lock_accounts(session, [a.id for a in accounts])
    last = session.scalar(
        select(func.max(LedgerEntry.transaction_id)).where(
            LedgerEntry.account_id.in_([a.id for a in accounts])
        )
    )
    return int(last or 0)


class SettlementPending(Conflict):
    code = Code.SETTLEMENT_PENDING
    message = (
        "The charge for your last visit is still being worked out. This takes a minute or two "
        "after a visit ends. Please try again shortly."
    )


def refund_on_closure(
    session: Session,
    clock: Clock,
    gateway: PaymentGateway,
    actor: AuditActor,
    visitor_id: int,
    visits: list[Visit],
    *,
    last_movement: int,
) -> LedgerTransaction | None:
    """As an account closes: give back the holds of ``visits`` that ended without going live
    (the caller has just cancelled the upcoming ones), then pay the whole wallet back.
    The caller holds ``lock_wallet``; ``last_movement`` (what it returned) keys the payout, so
    a retry after a timed-out payout asks the gateway for the same payout again.

    A visit that went live and ended but is not settled yet is refused (its charge is for the
    settlement job to work out; capturing it here could deadlock with that job)."""
    for visit in visits:
        if visit.state.value in CAPTURE_STATES and not _settled(session, visit.id):
            raise SettlementPending()
    for visit in visits:
        if visit.state.value in RELEASE_STATES:
            _release_and_settle(session, clock, visit)
    if wallet_summary(session, visitor_id).held_cents != 0:
        raise SettlementPending()
    if ledger.balance(session, wallet(session, clock, visitor_id).id) <= 0:
        return None
    return refund_balance(
        session,
        clock,
        gateway,
        actor,
        visitor_id,
        key=f"account-closure:{visitor_id}:{last_movement}",
        reason="on account closure",
    )


_PAYOUT = re.compile(r"\(payout ([^)]+)\)")


def payout_reference(txn: LedgerTransaction) -> str:
    """The gateway's reference of a refund's payout, as ``refund_balance`` wrote it."""
    found = _PAYOUT.search(txn.memo)
    return found.group(1) if found else ""


def refund_inactive_wallets(
    session: Session, clock: Clock, settings: Settings, gateway: PaymentGateway
) -> int:
    """Balances are never taken: a wallet untouched for 180 days is refunded and its owner
    told. The key names the last movement, so a repeat of the job pays nothing twice."""
    from openvisit.notifications import service as notifications

    cutoff = clock.now() - INACTIVE_AFTER
    last = (
        select(
            LedgerAccount.id,
            LedgerAccount.visitor_id,
            func.max(LedgerTransaction.id).label("last_txn"),
            func.max(LedgerTransaction.created_at).label("last_at"),
            func.sum(LedgerEntry.amount_cents).label("balance"),
        )
        .join(LedgerEntry, LedgerEntry.account_id == LedgerAccount.id)
        .join(LedgerTransaction, LedgerTransaction.id == LedgerEntry.transaction_id)
        .where(LedgerAccount.kind == AccountKind.VISITOR_WALLET)
        .group_by(LedgerAccount.id, LedgerAccount.visitor_id)
    )
    refunded = 0
    for row in session.execute(last).all():
        if row.balance <= 0 or row.last_at > cutoff:
            continue
        txn = refund_balance(
            session,
            clock,
            gateway,
            SYSTEM,
            row.visitor_id,
            key=f"inactive-refund:{row.visitor_id}:{row.last_txn}",
            reason="after 180 days without use",
        )
        visitor = session.get(Visitor, row.visitor_id)
        if visitor is not None:
            amount = -wallet_change(session, txn.id, row.visitor_id)
            notifications.queue_email(
                session,
                clock,
                settings,
                to=visitor.email,
                subject=f"Refunded: {dollars(amount)} from your OpenVisit wallet",
                body=(
                    f"Your wallet was not used for 180 days, so we paid {dollars(amount)} back "
                    "to your payment method. Nothing was kept and there was no fee."
                ),
            )
        refunded += 1
    return refunded
