"""Cash and money orders a family pays in at a facility's lobby, recorded by its staff
(issue 10, item 2).

Staff reach only the families linked to their facility (a request pending there or an
approval): they find one by name or e-mail address among those, and the search hands
them a reference signed for this facility, which is what a deposit names. Another
facility's family, a made-up reference or one signed for another facility are all "not
found", so a deposit can't even tell whether a visitor exists. What staff record in one
facility-local day is capped by the facility's ``lobby_deposit_daily_cap_cents``; every
deposit is audited; nothing staff see shows the wallet's balance.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from openvisit import audit
from openvisit.approvals import service as approvals
from openvisit.audit.models import AuditEvent
from openvisit.audit.service import AuditActor
from openvisit.billing import ledger
from openvisit.billing.ledger import dollars
from openvisit.billing.models import AccountKind, LedgerAccount, LedgerEntry, LedgerTransaction
from openvisit.billing.service import DEPOSIT_METHODS, check_amount, check_key, wallet
from openvisit.clock import Clock
from openvisit.errors import Code, Conflict, Forbidden, InvalidInput, NotFound
from openvisit.facilities.models import Facility, FacilitySettings
from openvisit.facilities.settings import facility_settings
from openvisit.people.models import Visitor

MAX_RESULTS = 20
_SALT = "lobby-visitor"


class CapReached(Conflict):
    code = Code.LOBBY_DEPOSIT_CAP_REACHED


def _not_found() -> NotFound:
    return NotFound(
        "We couldn't find that visitor among this facility's families. Search again.",
        code=Code.VISITOR_NOT_FOUND,
    )


# --- finding a family ----------------------------------------------------------------


@dataclass(frozen=True)
class LobbyVisitor:
    """A family as staff at the lobby see it: who they are, never what their wallet holds."""

    reference: str  # what a deposit names; signed for this facility
    name: str
    email: str
    account_closed: bool


def visitor_reference(secret: str, facility_id: int, visitor_id: int) -> str:
    return URLSafeSerializer(secret, salt=_SALT).dumps([facility_id, visitor_id])


def linked_visitor(session: Session, facility: Facility, visitor_id: int) -> Visitor:
    """The visitor if they are linked to ``facility`` now; otherwise "not found"."""
    visitor = session.scalar(
        select(Visitor).where(
            Visitor.id == visitor_id,
            Visitor.id.in_(approvals.linked_visitor_ids(facility.id)),
        )
    )
    if visitor is None:
        raise _not_found()
    return visitor


def visitor_by_reference(
    session: Session, secret: str, facility: Facility, reference: str
) -> Visitor:
    """The visitor a search at ``facility`` referred to, still linked to it."""
    try:
        facility_id, visitor_id = URLSafeSerializer(secret, salt=_SALT).loads(reference or "")
    except (BadSignature, ValueError, TypeError):
        raise _not_found() from None
    if facility_id != facility.id or type(visitor_id) is not int:
        raise _not_found()
    return linked_visitor(session, facility, visitor_id)


def _like(words: str) -> str:
    escaped = words.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def find_visitors(
    session: Session, secret: str, facility: Facility, query: str
) -> list[LobbyVisitor]:
    """Families linked to ``facility`` whose name or e-mail address contains ``query``
    (at least 2 characters), by name, at most 20."""
    words = " ".join((query or "").split())
    if len(words) < 2:
        msg = "Enter at least 2 letters of the visitor's name or e-mail address"
        raise InvalidInput(msg + ".", fields={"q": msg})
    pattern = _like(words)
    found = session.scalars(
        select(Visitor)
        .where(
            Visitor.id.in_(approvals.linked_visitor_ids(facility.id)),
            or_(
                func.lower(Visitor.legal_name).like(pattern, escape="\\"),
                func.lower(Visitor.email).like(pattern, escape="\\"),
            ),
        )
        .order_by(Visitor.legal_name, Visitor.id)
        .limit(MAX_RESULTS)
    )
    return [
        LobbyVisitor(
            visitor_reference(secret, facility.id, v.id),
            v.legal_name,
            v.email,
            v.closed_at is not None,
        )
        for v in found
    ]


# --- the daily cap -------------------------------------------------------------------


def _local_day_bounds(facility: Facility, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    tz = ZoneInfo(facility.timezone)
    today = now.astimezone(tz).date()
    lo = dt.datetime.combine(today, dt.time(0), tzinfo=tz)
    hi = dt.datetime.combine(today + dt.timedelta(days=1), dt.time(0), tzinfo=tz)
    return lo.astimezone(dt.UTC), hi.astimezone(dt.UTC)


def recorded_today_cents(session: Session, facility: Facility, now: dt.datetime) -> int:
    """What staff recorded at this facility's lobby on its local day containing ``now``."""
    lo, hi = _local_day_bounds(facility, now)
    return ledger.total_cents(
        session,
        LedgerTransaction.kind == "deposit",
        LedgerTransaction.facility_id == facility.id,
        LedgerTransaction.created_at >= lo,
        LedgerTransaction.created_at < hi,
        LedgerAccount.kind == AccountKind.VISITOR_WALLET,
    )


def _check_cap(session: Session, facility: Facility, now: dt.datetime, amount: int) -> None:
    """Refuse a deposit that would take today's lobby deposits over the facility's cap.
    The facility's settings row stays locked until the transaction ends (PostgreSQL), so
    two deposits at once can't both squeeze under the cap; SQLite has one writer anyway."""
    row = session.scalar(
        select(FacilitySettings)
        .where(FacilitySettings.facility_id == facility.id)
        .with_for_update()
    ) or facility_settings(session, facility)
    cap = row.lobby_deposit_daily_cap_cents
    taken = recorded_today_cents(session, facility, now)
    if taken + amount <= cap:
        return
    left = max(cap - taken, 0)
    room = (
        f"Up to {dollars(left)} more can be recorded today."
        if left
        else "Nothing more can be recorded today."
    )
    raise CapReached(
        f"{facility.name} records at most {dollars(cap)} of lobby deposits a day, and "
        f"{dollars(taken)} was recorded today. {room} The limit starts again at midnight "
        f"({facility.timezone}); a facility admin can change it in the settings.",
        fields={"amount_cents": f"At most {dollars(left)} more today"},
        details={"cap_cents": cap, "recorded_today_cents": taken, "left_cents": left},
    )


# --- recording a deposit -------------------------------------------------------------


@dataclass(frozen=True)
class LobbyDeposit:
    """A deposit as its receipt shows it."""

    transaction_id: int
    at: dt.datetime
    amount_cents: int
    method: str  # cash | money_order
    reference: str  # the money order's number
    visitor_name: str
    facility_name: str
    recorded_by: str
    memo: str

    @property
    def receipt_number(self) -> str:
        return f"L-{self.transaction_id}"

    @property
    def method_words(self) -> str:
        return DEPOSIT_METHODS.get(self.method, self.method)


def _check_method(method: str, reference: str) -> str:
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
    return reference


def record_deposit(
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
) -> LobbyDeposit:
    """Record cash or a money order a family paid in at ``facility``'s lobby: only for a
    family linked to the facility, within its daily cap; audited. A retry with the same
    key records nothing more and answers the same deposit."""
    now = clock.now()
    amount = check_amount(amount_cents)
    reference = _check_method(method, reference)
    visitor = linked_visitor(session, facility, visitor_id)
    if visitor.closed_at is not None:
        raise Forbidden(
            "This visitor closed their account, so money can't be added to it. "
            "Give the money back to the family.",
            code=Code.ACCOUNT_CLOSED,
        )
    key = (
        f"lobby:{facility.id}:{check_key(idempotency_key)}"
        if idempotency_key
        else f"lobby:{facility.id}:{secrets.token_hex(12)}"
    )
    replay = ledger.find_transaction(session, key) is not None
    if not replay:
        _check_cap(session, facility, now, amount)
    received = ledger.account(session, clock, AccountKind.PAYMENTS_RECEIVED)
    memo = f"Added {dollars(amount)}: {DEPOSIT_METHODS[method].lower()} at {facility.name}" + (
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
    if not replay:
        audit.service.record(
            session,
            tag="wallet:deposit_recorded",
            actor=actor,
            at=now,
            facility_id=facility.id,
            subject=("visitor", visitor.id),
            data={
                "amount_cents": amount,
                "method": method,
                "reference": reference,
                "transaction_id": txn.id,
            },
        )
    return deposit_receipt(session, facility, txn.id)


def deposit_receipt(session: Session, facility: Facility, transaction_id: int) -> LobbyDeposit:
    """A lobby deposit recorded at ``facility``; any other transaction is "not found"."""
    txn = session.scalar(
        select(LedgerTransaction).where(
            LedgerTransaction.id == transaction_id,
            LedgerTransaction.kind == "deposit",
            LedgerTransaction.facility_id == facility.id,
            LedgerTransaction.idempotency_key.startswith(f"lobby:{facility.id}:"),
        )
    )
    if txn is None:
        raise NotFound("We couldn't find that deposit.")
    row = session.execute(
        select(LedgerEntry.amount_cents, Visitor.id, Visitor.legal_name)
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .join(Visitor, Visitor.id == LedgerAccount.visitor_id)
        .where(
            LedgerEntry.transaction_id == txn.id,
            LedgerAccount.kind == AccountKind.VISITOR_WALLET,
        )
    ).one()
    # What was taken and who took it are in the deposit's audit event.
    events = session.scalars(
        select(AuditEvent).where(
            AuditEvent.tag == "wallet:deposit_recorded",
            AuditEvent.facility_id == facility.id,
            AuditEvent.subject_type == "visitor",
            AuditEvent.subject_id == row.id,
        )
    )
    event = next((e for e in events if (e.data or {}).get("transaction_id") == txn.id), None)
    data = event.data if event is not None else {}
    return LobbyDeposit(
        transaction_id=txn.id,
        at=txn.created_at,
        amount_cents=int(row.amount_cents),
        method=str(data.get("method", "")),
        reference=str(data.get("reference", "")),
        visitor_name=row.legal_name,
        facility_name=facility.name,
        recorded_by=event.actor_label if event is not None else "",
        memo=txn.memo,
    )
