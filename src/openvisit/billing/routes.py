"""Wallet API for visitors and the lobby deposit for staff. Pages come later."""

from __future__ import annotations

from fastapi import APIRouter, Request

from openvisit.auth.permissions import Permission
from openvisit.billing import service
from openvisit.billing.gateway import PaymentGateway, SandboxGateway
from openvisit.billing.ledger import dollars
from openvisit.billing.models import LedgerTransaction
from openvisit.billing.schemas import (
    CardDepositIn,
    DepositOut,
    EntryOut,
    LobbyDepositIn,
    TransactionOut,
    WalletOut,
)
from openvisit.deps import ClockDep, CurrentStaff, CurrentVisitor, DbSession, SettingsDep
from openvisit.errors import DomainError
from openvisit.facilities.service import access_facility

api = APIRouter(prefix="/api/v1", tags=["billing"])
pages = APIRouter(include_in_schema=False)


def payment_gateway(request: Request, settings: SettingsDep) -> PaymentGateway:
    """The app's gateway (kept on app.state); the sandbox outside production."""
    gateway = getattr(request.app.state, "payment_gateway", None)
    if gateway is None:
        if settings.env == "production":
            raise DomainError(
                "Card payments are not set up yet. Pay at the facility's lobby.",
                code="payments_unavailable",
                http_status=503,
            )
        gateway = request.app.state.payment_gateway = SandboxGateway()
    return gateway


def _wallet_out(summary: service.WalletSummary) -> WalletOut:
    return WalletOut(
        balance_cents=summary.balance_cents,
        held_cents=summary.held_cents,
        available_cents=summary.available_cents,
        balance=dollars(summary.balance_cents),
        held=dollars(summary.held_cents),
        available=dollars(summary.available_cents),
    )


def _deposit_out(db: DbSession, txn: LedgerTransaction, visitor_id: int) -> DepositOut:
    return DepositOut(
        transaction=TransactionOut(
            id=txn.id,
            kind=txn.kind,
            amount_cents=service.wallet_change(db, txn.id, visitor_id),
            description=txn.memo,
            created_at=txn.created_at,
        ),
        wallet=_wallet_out(service.wallet_summary(db, visitor_id)),
    )


# --- visitors ----------------------------------------------------------------------------


@api.get("/me/wallet", response_model=WalletOut)
def my_wallet(visitor: CurrentVisitor, db: DbSession) -> WalletOut:
    """The wallet: available to spend, set aside for booked visits, and both together."""
    return _wallet_out(service.wallet_summary(db, visitor.visitor.id))


@api.get("/me/wallet/entries", response_model=list[EntryOut])
def my_wallet_entries(visitor: CurrentVisitor, db: DbSession) -> list[EntryOut]:
    """Every movement of the wallet, newest first, in plain words."""
    return [EntryOut(**vars(line)) for line in service.history(db, visitor.visitor.id)]


@api.post("/me/wallet/deposits", response_model=DepositOut, status_code=201)
def add_money(
    body: CardDepositIn,
    request: Request,
    visitor: CurrentVisitor,
    db: DbSession,
    clock: ClockDep,
    settings: SettingsDep,
) -> DepositOut:
    """Add money by card. No fees. Send the same idempotency_key when retrying."""
    txn = service.deposit_by_card(
        db,
        clock,
        payment_gateway(request, settings),
        visitor.actor,
        visitor.visitor,
        amount_cents=body.amount_cents,
        card_number=body.card_number,
        idempotency_key=body.idempotency_key,
    )
    return _deposit_out(db, txn, visitor.visitor.id)


# --- staff -------------------------------------------------------------------------------


@api.post(
    "/facilities/{facility_id}/wallet-deposits",
    response_model=DepositOut,
    status_code=201,
    openapi_extra={"x-permission": Permission.MANAGE_VISITS.value},
)
def record_lobby_deposit(
    facility_id: int, body: LobbyDepositIn, staff: CurrentStaff, db: DbSession, clock: ClockDep
) -> DepositOut:
    """Record cash or a money order a family paid in at the lobby (audited)."""
    facility = access_facility(db, staff, facility_id, Permission.MANAGE_VISITS)
    txn = service.record_lobby_deposit(
        db,
        clock,
        staff.actor,
        facility,
        visitor_id=body.visitor_id,
        amount_cents=body.amount_cents,
        method=body.method,
        reference=body.reference,
        idempotency_key=body.idempotency_key,
    )
    return _deposit_out(db, txn, body.visitor_id)
