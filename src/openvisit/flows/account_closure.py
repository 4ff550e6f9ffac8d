"""Closing a visitor's account: people ends the account, scheduling cancels the visits
it had coming, billing gives back what was set aside and pays the whole balance back,
all in the request's transaction."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from openvisit.billing import refunds
from openvisit.billing import service as billing
from openvisit.billing.gateway import GatewayConflict, GatewayTimeout, PaymentGateway
from openvisit.billing.ledger import dollars
from openvisit.clock import Clock
from openvisit.config import Settings
from openvisit.errors import Code, Conflict, DomainError
from openvisit.facilities.models import Facility
from openvisit.notifications.service import queue_email
from openvisit.people import accounts
from openvisit.people import sign_in as visitor_sign_in
from openvisit.people.models import Visitor
from openvisit.scheduling import service as scheduling
from openvisit.scheduling.presenters import span_label
from openvisit.visits.models import Visit, VisitState

_UPCOMING = (VisitState.REQUESTED, VisitState.SCHEDULED)
_IN_PROGRESS = (VisitState.OPEN, VisitState.LIVE)


@dataclass(frozen=True)
class ClosurePreview:
    """What closing the account would do, for the page that asks to confirm it."""

    available_cents: int
    held_cents: int
    upcoming: list[Visit]  # requested or booked: they will be cancelled
    in_progress: list[Visit]  # open or live: closing must wait until they end
    labels: dict[int, str]  # each of those visits' time, in its facility's zone


@dataclass(frozen=True)
class ClosedAccount:
    refunded_cents: int
    payout: str  # the gateway's reference, "" when there was nothing to pay back
    cancelled: list[Visit]


class PayoutFailed(DomainError):
    code = Code.PAYOUT_FAILED
    message = (
        "We couldn't pay your balance back just now, so your account is still open and "
        "nothing has changed. Please try again in a few minutes."
    )


def closure_preview(session: Session, visitor: Visitor) -> ClosurePreview:
    mine = scheduling.visits_for_visitor(session, visitor.id)
    summary = billing.wallet_summary(session, visitor.id)
    upcoming = [v for v in mine if v.state in _UPCOMING]
    in_progress = [v for v in mine if v.state in _IN_PROGRESS]
    labels = {}
    for visit in upcoming + in_progress:
        facility = session.get(Facility, visit.facility_id)
        zone = facility.timezone if facility else "UTC"
        labels[visit.id] = span_label(visit.starts_at, visit.ends_at, zone)
    return ClosurePreview(
        available_cents=summary.available_cents,
        held_cents=summary.held_cents,
        upcoming=upcoming,
        in_progress=in_progress,
        labels=labels,
    )


def close_account(
    session: Session,
    clock: Clock,
    settings: Settings,
    gateway: PaymentGateway,
    visitor: Visitor,
    *,
    confirm: bool,
    password: str,
    ip: str = "",
) -> ClosedAccount:
    """Close a visitor's account, all in the request's transaction: cancel their upcoming
    visits and give back what was set aside for them, pay the whole balance back through
    the gateway (as a refund on request is), revoke every session so the account can't be
    used again, audit it and e-mail a confirmation.

    The payout is the one step outside the database: if it fails, the error is raised and
    the caller's rollback undoes everything (the account stays open, nothing is cancelled).
    A retry keys the payout the same way while the wallet is unchanged, so a payout that
    went through unseen is not paid twice. A visit in progress, or one whose charge is not
    settled yet, makes it refuse with nothing changed."""
    now = clock.now()
    actor = accounts.visitor_actor(visitor, ip)
    accounts.check_closable(visitor, confirm=confirm)
    visitor_sign_in.confirm_password(session, settings, visitor, password, ip=ip, now=now)
    # The wallet first: a booking made meanwhile waits for it, then finds no money.
    last_movement = billing.lock_wallet(session, clock, visitor.id)
    mine = scheduling.visits_for_visitor(session, visitor.id)
    if any(v.state in _IN_PROGRESS for v in mine):
        raise Conflict(
            "You have a visit in progress. You can close your account once it has ended.",
            code=Code.VISIT_IN_PROGRESS,
        )
    cancelled = []
    for visit in mine:
        if visit.state in _UPCOMING:
            scheduling.cancel(
                session,
                clock,
                actor,
                visit,
                cause="account_closed",
                reason="The visitor closed their account",
            )
            cancelled.append(visit)
    try:
        txn = refunds.refund_on_closure(
            session, clock, gateway, actor, visitor.id, mine, last_movement=last_movement
        )
    except (GatewayTimeout, GatewayConflict) as exc:
        raise PayoutFailed(gateway_error=exc.code) from exc
    refunded = -billing.wallet_change(session, txn.id, visitor.id) if txn is not None else 0
    payout = refunds.payout_reference(txn) if txn is not None else ""
    accounts.end_account(
        session,
        visitor,
        actor,
        now,
        {
            "refunded_cents": refunded,
            "payout": payout,
            "cancelled_visit_ids": [v.id for v in cancelled],
        },
    )
    money = (
        f"We are paying {dollars(refunded)}, your whole balance, back to your payment method. "
        "There is no fee."
        if refunded
        else "There was no money in your wallet to pay back."
    )
    visits_words = f"\n\n{len(cancelled)} upcoming visit(s) were cancelled." if cancelled else ""
    queue_email(
        session,
        clock,
        settings,
        to=visitor.email,
        subject="Your OpenVisit account is closed",
        body=(
            f"Hello {visitor.legal_name},\n\nYour OpenVisit account is closed, as you asked. "
            f"{money}{visits_words}\n\nYou can't sign in to it any more. Records of your "
            "visits and payments are kept as the law requires."
        ),
    )
    session.flush()
    return ClosedAccount(refunded_cents=refunded, payout=payout, cancelled=cancelled)
