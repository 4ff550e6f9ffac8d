"""Wallets, deposits and visit holds (DESIGN §4, Metering and billing).

A family's wallet is theirs: money comes in by card or at a facility's lobby, is set aside
(held) when a paid visit is booked, and comes back when a visit ends without going live.
What an ended visit is charged is billing.settlement's; paying a wallet back is
billing.refunds'.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from openvisit.audit.service import AuditActor
from openvisit.billing import ledger
from openvisit.billing.gateway import PaymentGateway
from openvisit.billing.ledger import InsufficientFunds, dollars
from openvisit.billing.models import AccountKind, LedgerAccount, LedgerEntry, LedgerTransaction
from openvisit.clock import Clock
from openvisit.errors import Code, InvalidInput
from openvisit.facilities.models import Facility
from openvisit.people.models import Visitor
from openvisit.visits.models import Visit

MAX_DEPOSIT_CENTS = 50_000
DEPOSIT_METHODS = {"cash": "Cash", "money_order": "Money order"}
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


_CARD_DIGITS = re.compile(r"[0-9]{12,19}", re.ASCII)


def check_card(value: str) -> str:
    digits = re.sub(r"[ -]", "", value or "")
    # ASCII digits only: str.isdigit() also takes fullwidth and other scripts' digits.
    if not _CARD_DIGITS.fullmatch(digits):
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
                _cell(line.description),
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
        session.execute(
            select(func.coalesce(func.sum(LedgerEntry.amount_cents), 0)).where(
                LedgerEntry.transaction_id == transaction_id, LedgerEntry.account_id == w.id
            )
        ).scalar_one()
    )


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


# --- visit holds -----------------------------------------------------------------------


def visit_hold_cents(session: Session, visit_id: int) -> int:
    """What is still set aside for this visit (zero once it is settled)."""
    return ledger.total_cents(
        session,
        LedgerTransaction.visit_id == visit_id,
        LedgerAccount.kind == AccountKind.VISITOR_HOLD,
    )


def visit_time_words(session: Session, visit: Visit) -> str:
    """When the visit starts, in the facility's zone, for a ledger memo."""
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
            f"Set aside {dollars(amount)} for your visit on {visit_time_words(session, visit)} "
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
        f"{dollars(amount)} back in your wallet: your visit on {visit_time_words(session, visit)} "
        f"(ref {visit.reference}) {words}",
        visit_id=visit.id,
        facility_id=visit.facility_id,
    )
