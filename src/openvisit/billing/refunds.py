"""Paying a wallet back (DESIGN §4, Metering and billing): on request, after 180 days
unused, and as an account closes. A balance is never kept: it is only ever paid back.
"""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from openvisit import audit
from openvisit.audit.service import SYSTEM, AuditActor
from openvisit.billing import ledger
from openvisit.billing.gateway import PaymentGateway
from openvisit.billing.ledger import dollars
from openvisit.billing.models import AccountKind, LedgerAccount, LedgerEntry, LedgerTransaction
from openvisit.billing.service import check_key, wallet, wallet_change, wallet_summary
from openvisit.billing.settlement import (
    CAPTURE_STATES,
    RELEASE_STATES,
    is_settled,
    release_and_settle,
)
from openvisit.clock import Clock
from openvisit.config import Settings
from openvisit.errors import Code, Conflict
from openvisit.notifications import service as notifications
from openvisit.people.models import Visitor
from openvisit.visits.models import Visit


class NothingToRefund(Conflict):
    code = Code.NOTHING_TO_REFUND
    message = "There is no money in your wallet to refund."


INACTIVE_AFTER = dt.timedelta(days=180)
# How a refund's idempotency key begins -> (reason, in words for staff). The keys are
# ``refund:<visitor>:<attempt>``, ``inactive-refund:<visitor>:<last entry>`` and
# ``account-closure:<visitor>:<last entry>`` (below).
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


def refund_on_request(
    session: Session,
    clock: Clock,
    gateway: PaymentGateway,
    actor: AuditActor,
    visitor_id: int,
    *,
    attempt: str,
) -> LedgerTransaction:
    """The family asks for their whole available balance back; ``attempt`` (their
    idempotency key) makes a retry pay nothing more."""
    key = f"refund:{visitor_id}:{check_key(attempt)}"
    return refund_balance(session, clock, gateway, actor, visitor_id, key=key)


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
        if visit.state.value in CAPTURE_STATES and not is_settled(session, visit.id):
            raise SettlementPending()
    for visit in visits:
        if visit.state.value in RELEASE_STATES:
            release_and_settle(session, clock, visit)
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
