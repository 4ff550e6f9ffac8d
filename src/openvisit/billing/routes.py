"""The money API: a family's wallet, deposits, refunds and receipts; staff record lobby
deposits and read the facility's money (a visit's trail, revenue, refunds issued)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from openvisit.billing import lobby, refunds, reports, service, settlement
from openvisit.billing.gateway import PaymentGateway
from openvisit.billing.models import LedgerTransaction
from openvisit.billing.schemas import (
    CardDepositIn,
    DepositOut,
    EntryOut,
    LobbyDepositIn,
    LobbyDepositOut,
    LobbyVisitorOut,
    MoneyTrailOut,
    ReceiptOut,
    RefundIn,
    RefundsOut,
    RevenueOut,
    WalletOut,
)
from openvisit.deps import (
    MAX_ID,
    BillingFacility,
    ClockDep,
    CurrentStaff,
    CurrentVisitor,
    DbSession,
    Id,
    SettingsDep,
)
from openvisit.errors import Code, DomainError
from openvisit.visits.service import access_visit

router = APIRouter(prefix="/api/v1", tags=["billing"])


def payment_gateway(request: Request) -> PaymentGateway:
    """The gateway create_app chose at start-up (none is wired in production yet)."""
    gateway: PaymentGateway | None = request.app.state.payment_gateway
    if gateway is None:
        raise DomainError(
            "Card payments are not set up yet. Pay at the facility's lobby.",
            code=Code.PAYMENTS_UNAVAILABLE,
        )
    return gateway


Gateway = Annotated[PaymentGateway, Depends(payment_gateway)]
FromDay = Annotated[str, Query(alias="from", max_length=20)]
ToDay = Annotated[str, Query(alias="to", max_length=20)]


def _deposit_out(db: Session, txn: LedgerTransaction, visitor_id: Id) -> DepositOut:
    return DepositOut.of(
        txn, service.wallet_change(db, txn.id, visitor_id), service.wallet_summary(db, visitor_id)
    )


# --- visitors ----------------------------------------------------------------------------


@router.get("/me/wallet", response_model=WalletOut)
def my_wallet(visitor: CurrentVisitor, db: DbSession) -> WalletOut:
    """The wallet: available to spend, set aside for booked visits, and both together."""
    return WalletOut.of(service.wallet_summary(db, visitor.visitor.id))


@router.get("/me/wallet/entries", response_model=list[EntryOut])
def my_wallet_entries(visitor: CurrentVisitor, db: DbSession) -> list[EntryOut]:
    """Every movement of the wallet, newest first, in plain words."""
    return [EntryOut.of(line) for line in service.history(db, visitor.visitor.id)]


@router.get("/me/wallet/entries.csv", response_class=Response)
def my_wallet_csv(visitor: CurrentVisitor, db: DbSession) -> Response:
    """The same history as a CSV file, oldest first."""
    return Response(
        service.history_csv(db, visitor.visitor.id),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": 'attachment; filename="openvisit-wallet.csv"'},
    )


@router.post("/me/wallet/refund", response_model=DepositOut, status_code=201)
def refund_my_balance(
    body: RefundIn, visitor: CurrentVisitor, db: DbSession, clock: ClockDep, gateway: Gateway
) -> DepositOut:
    """Pay the whole available balance back; a retry with the same key pays nothing more."""
    txn = refunds.refund_on_request(
        db, clock, gateway, visitor.actor, visitor.visitor.id, attempt=body.idempotency_key
    )
    return _deposit_out(db, txn, visitor.visitor.id)


@router.post("/me/wallet/deposits", response_model=DepositOut, status_code=201)
def add_money(
    body: CardDepositIn, visitor: CurrentVisitor, db: DbSession, clock: ClockDep, gateway: Gateway
) -> DepositOut:
    """Add money by card. No fees. Send the same idempotency_key when retrying."""
    txn = service.deposit_by_card(
        db, clock, gateway, visitor.actor, visitor.visitor, **body.model_dump()
    )
    return _deposit_out(db, txn, visitor.visitor.id)


@router.get("/me/visits/{visit_id}/receipt", response_model=ReceiptOut)
def my_visit_receipt(visit_id: Id, visitor: CurrentVisitor, db: DbSession) -> ReceiptOut:
    """A settled visit's receipt: connected time, credited minutes and why, free minutes
    used, the charge and what came back. Before settlement: 409 ``not_settled``."""
    return ReceiptOut.of(settlement.receipt(db, visit_id, visitor_id=visitor.visitor.id))


# --- staff -------------------------------------------------------------------------------


@router.get("/facilities/{facility_id}/lobby-visitors", response_model=list[LobbyVisitorOut])
def find_lobby_visitors(
    facility: BillingFacility,
    db: DbSession,
    settings: SettingsDep,
    q: Annotated[str, Query(max_length=200)] = "",
) -> list[LobbyVisitorOut]:
    """Families linked to the facility (a request pending there or an approval) whose name
    or e-mail address contains ``q`` (2 characters at least), at most 20. Each carries the
    reference a lobby deposit names; no balances."""
    found = lobby.find_visitors(db, settings.secret_key, facility, q)
    return [LobbyVisitorOut.of(v) for v in found]


@router.post(
    "/facilities/{facility_id}/wallet-deposits", response_model=LobbyDepositOut, status_code=201
)
def record_lobby_deposit(
    body: LobbyDepositIn,
    facility: BillingFacility,
    staff: CurrentStaff,
    db: DbSession,
    clock: ClockDep,
    settings: SettingsDep,
) -> LobbyDepositOut:
    """Record cash or a money order a family paid in at the lobby, for a family found
    through ``lobby-visitors`` (another facility's family is 404). Within the facility's
    daily cap (409 ``lobby_deposit_cap_reached``, nothing recorded); audited. The receipt
    never shows the wallet's balance."""
    visitor = lobby.visitor_by_reference(db, settings.secret_key, facility, body.visitor)
    values = body.model_dump(exclude={"visitor"})
    deposit = lobby.record_deposit(
        db, clock, staff.actor, facility, visitor_id=visitor.id, **values
    )
    return LobbyDepositOut.of(deposit)


@router.get(
    "/facilities/{facility_id}/wallet-deposits/{transaction_id}", response_model=LobbyDepositOut
)
def lobby_deposit_receipt(
    transaction_id: Annotated[int, Path(ge=1, le=MAX_ID)], facility: BillingFacility, db: DbSession
) -> LobbyDepositOut:
    """The receipt of a deposit recorded at this facility's lobby."""
    return LobbyDepositOut.of(lobby.deposit_receipt(db, facility, transaction_id))


@router.get("/facilities/{facility_id}/visits/{visit_id}/money-trail", response_model=MoneyTrailOut)
def visit_money_trail(visit_id: Id, facility: BillingFacility, db: DbSession) -> MoneyTrailOut:
    """Every ledger entry of one visit (hold, capture or release), what stayed set aside
    after each, and how the settlement split the hold (connected time, credits, free time)."""
    visit = access_visit(db, facility, visit_id)
    return MoneyTrailOut.of(reports.money_trail(db, facility, visit))


@router.get("/facilities/{facility_id}/revenue", response_model=RevenueOut)
def facility_revenue(
    facility: BillingFacility, db: DbSession, clock: ClockDep, first: FromDay = "", last: ToDay = ""
) -> RevenueOut:
    """Revenue per facility-local day, ``from`` to ``to`` (YYYY-MM-DD, both included; by
    default the last 30 days), with totals."""
    span = reports.date_range(facility, clock.now(), first, last)
    return RevenueOut.of(facility, reports.revenue_by_day(db, facility, span))


@router.get("/facilities/{facility_id}/refunds", response_model=RefundsOut)
def facility_refunds(
    facility: BillingFacility, db: DbSession, clock: ClockDep, first: FromDay = "", last: ToDay = ""
) -> RefundsOut:
    """Refunds paid to the facility's families, newest first: who, when, how much and why."""
    span = reports.date_range(facility, clock.now(), first, last)
    return RefundsOut.of(facility, reports.refunds_for_facility(db, facility, span))
