"""Wallet API and page for visitors, and the lobby deposit for staff."""

from __future__ import annotations

import secrets
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

from openvisit.auth.permissions import Permission
from openvisit.billing import refunds, reports, service, settlement
from openvisit.billing.gateway import PaymentGateway
from openvisit.billing.ledger import dollars
from openvisit.billing.models import LedgerTransaction
from openvisit.billing.schemas import (
    CardDepositIn,
    DepositOut,
    EntryOut,
    LobbyDepositIn,
    MoneyTrailOut,
    ReceiptOut,
    RefundOut,
    RefundsOut,
    RevenueDayOut,
    RevenueOut,
    TrailEntryOut,
    TrailStepOut,
    TransactionOut,
    WalletOut,
)
from openvisit.deps import ClockDep, CurrentStaff, CurrentVisitor, DbSession, SettingsDep
from openvisit.errors import Code, DomainError
from openvisit.facilities.service import access_facility
from openvisit.scheduling import service as scheduling
from openvisit.visits.service import access_visit
from openvisit.web.render import flash_redirect, form_error, redirect, render

api = APIRouter(prefix="/api/v1", tags=["billing"])
pages = APIRouter(include_in_schema=False)


def payment_gateway(request: Request) -> PaymentGateway:
    """The gateway create_app chose at start-up (none in production yet)."""
    gateway: PaymentGateway | None = request.app.state.payment_gateway
    if gateway is None:
        raise DomainError(
            "Card payments are not set up yet. Pay at the facility's lobby.",
            code=Code.PAYMENTS_UNAVAILABLE,
        )
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


@api.get("/me/wallet/entries.csv", response_class=Response)
def my_wallet_csv(visitor: CurrentVisitor, db: DbSession) -> Response:
    """The same history as a CSV file, oldest first."""
    return Response(
        service.history_csv(db, visitor.visitor.id),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": 'attachment; filename="openvisit-wallet.csv"'},
    )


class RefundIn(BaseModel):
    idempotency_key: str = Field(min_length=8, max_length=100)


@api.post("/me/wallet/refund", response_model=DepositOut, status_code=201)
def refund_my_balance(
    body: RefundIn,
    visitor: CurrentVisitor,
    db: DbSession,
    clock: ClockDep,
    gateway: Annotated[PaymentGateway, Depends(payment_gateway)],
) -> DepositOut:
    """Pay the whole available balance back; a retry with the same key pays nothing more."""
    txn = refunds.refund_balance(
        db,
        clock,
        gateway,
        visitor.actor,
        visitor.visitor.id,
        key=f"refund:{visitor.visitor.id}:{service.check_key(body.idempotency_key)}",
    )
    return _deposit_out(db, txn, visitor.visitor.id)


@pages.post("/wallet/refund", response_class=HTMLResponse)
def wallet_refund_submit(
    request: Request,
    visitor: CurrentVisitor,
    db: DbSession,
    clock: ClockDep,
    gateway: Annotated[PaymentGateway, Depends(payment_gateway)],
    attempt: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    try:
        txn = refunds.refund_balance(
            db,
            clock,
            gateway,
            visitor.actor,
            visitor.visitor.id,
            key=f"refund:{visitor.visitor.id}:{service.check_key(attempt)}",
        )
    except DomainError as exc:
        db.rollback()
        return flash_redirect(request, "/wallet", exc.message, "error")
    paid = -service.wallet_change(db, txn.id, visitor.visitor.id)
    return flash_redirect(
        request, "/wallet", f"{dollars(paid)} is on its way back to your payment method."
    )


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
        payment_gateway(request),
        visitor.actor,
        visitor.visitor,
        amount_cents=body.amount_cents,
        card_number=body.card_number,
        idempotency_key=body.idempotency_key,
    )
    return _deposit_out(db, txn, visitor.visitor.id)


@api.get("/me/visits/{visit_id}/receipt", response_model=ReceiptOut)
def my_visit_receipt(visit_id: int, visitor: CurrentVisitor, db: DbSession) -> ReceiptOut:
    """A settled visit's receipt: connected time, credited minutes and why, free minutes
    used, the charge and what came back. Before settlement: 409 ``not_settled``."""
    r = settlement.receipt(db, visit_id, visitor_id=visitor.visitor.id)
    data = {k: v for k, v in vars(r).items() if k not in ("timezone", "credited_minutes")}
    data["rate_cents_per_minute"] = f"{r.rate_cents_per_minute:.2f}"
    return ReceiptOut(
        **data,
        credited_minutes=[vars(c) for c in r.credited_minutes],
        charge=dollars(r.charge_cents),
    )


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


VIEW_BILLING = {"x-permission": Permission.VIEW_BILLING.value}
FromDay = Annotated[str, Query(alias="from", max_length=20)]
ToDay = Annotated[str, Query(alias="to", max_length=20)]


def _trail_out(trail: reports.MoneyTrail) -> MoneyTrailOut:
    row = trail.settlement
    return MoneyTrailOut(
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
        credited_minutes=[vars(c) for c in trail.credits],
        free_seconds_used=row.free_seconds_used if row else None,
        charge_cents=row.charge_cents if row else None,
        released_cents=row.released_cents if row else None,
    )


@api.get(
    "/facilities/{facility_id}/visits/{visit_id}/money-trail",
    response_model=MoneyTrailOut,
    openapi_extra=VIEW_BILLING,
)
def visit_money_trail(
    facility_id: int, visit_id: int, staff: CurrentStaff, db: DbSession
) -> MoneyTrailOut:
    """Every ledger entry of one visit (hold, capture or release), what stayed set aside
    after each, and how the settlement split the hold (connected time, credits, free time)."""
    facility = access_facility(db, staff, facility_id, Permission.VIEW_BILLING)
    visit = access_visit(db, facility, visit_id)
    return _trail_out(reports.money_trail(db, facility, visit))


@api.get("/facilities/{facility_id}/revenue", response_model=RevenueOut, openapi_extra=VIEW_BILLING)
def facility_revenue(
    facility_id: int,
    staff: CurrentStaff,
    db: DbSession,
    clock: ClockDep,
    first: FromDay = "",
    last: ToDay = "",
) -> RevenueOut:
    """Revenue per facility-local day, ``from`` to ``to`` (YYYY-MM-DD, both included; by
    default the last 30 days), with totals."""
    facility = access_facility(db, staff, facility_id, Permission.VIEW_BILLING)
    revenue = reports.revenue_by_day(
        db, facility, reports.date_range(facility, clock.now(), first, last)
    )
    return RevenueOut(
        facility_id=facility.id,
        timezone=facility.timezone,
        from_date=revenue.span.first,
        to_date=revenue.span.last,
        days=[
            RevenueDayOut(date=d.day, visits_charged=d.visits, revenue_cents=d.cents)
            for d in revenue.days
        ],
        total_cents=revenue.total_cents,
        total_visits_charged=revenue.total_visits,
    )


@api.get("/facilities/{facility_id}/refunds", response_model=RefundsOut, openapi_extra=VIEW_BILLING)
def facility_refunds(
    facility_id: int,
    staff: CurrentStaff,
    db: DbSession,
    clock: ClockDep,
    first: FromDay = "",
    last: ToDay = "",
) -> RefundsOut:
    """Refunds paid to the facility's families, newest first: who, when, how much and why."""
    facility = access_facility(db, staff, facility_id, Permission.VIEW_BILLING)
    found = reports.refunds_for_facility(
        db, facility, reports.date_range(facility, clock.now(), first, last)
    )
    return RefundsOut(
        facility_id=facility.id,
        timezone=facility.timezone,
        from_date=found.span.first,
        to_date=found.span.last,
        refunds=[
            RefundOut(
                at=line.at,
                transaction_id=line.transaction_id,
                visitor_id=line.visitor_id,
                visitor=line.visitor_name,
                amount_cents=line.amount_cents,
                reason=line.reason,  # type: ignore[arg-type]
                reason_words=line.reason_words,
                payout=line.payout,
            )
            for line in found.lines
        ],
        total_cents=found.total_cents,
    )


@pages.get(
    "/staff/facilities/{facility_id}/visits/{visit_id}/money",
    response_class=HTMLResponse,
    openapi_extra=VIEW_BILLING,
)
def money_trail_page(
    request: Request, facility_id: int, visit_id: int, staff: CurrentStaff, db: DbSession
) -> HTMLResponse:
    facility = access_facility(db, staff, facility_id, Permission.VIEW_BILLING)
    visit = access_visit(db, facility, visit_id)
    trail = reports.money_trail(db, facility, visit)
    return render(
        request,
        "billing/staff_money_trail.html",
        {
            "staff": staff,
            "facility": facility,
            "trail": trail,
            "dollars": dollars,
            "duration": _duration,
            "signed": _signed,
        },
    )


@pages.get(
    "/staff/facilities/{facility_id}/money-trail",
    response_class=HTMLResponse,
    openapi_extra=VIEW_BILLING,
)
def money_trail_lookup(
    request: Request,
    facility_id: int,
    staff: CurrentStaff,
    db: DbSession,
    reference: Annotated[str, Query(max_length=40)] = "",
) -> Response:
    """Find a visit's money trail by its reference (what a family reads out on the phone)."""
    facility = access_facility(db, staff, facility_id, Permission.VIEW_BILLING)
    visit = scheduling.visit_by_reference(db, facility.id, reference)
    if visit is None:
        back = f"/staff/facilities/{facility.id}/revenue"
        words = reference.strip() or "(none given)"
        return flash_redirect(
            request, back, f"No visit at this facility has reference {words}.", "error"
        )
    return redirect(f"/staff/facilities/{facility.id}/visits/{visit.id}/money")


@pages.get(
    "/staff/facilities/{facility_id}/revenue",
    response_class=HTMLResponse,
    openapi_extra=VIEW_BILLING,
)
def revenue_page(
    request: Request,
    facility_id: int,
    staff: CurrentStaff,
    db: DbSession,
    clock: ClockDep,
    first: FromDay = "",
    last: ToDay = "",
) -> HTMLResponse:
    facility = access_facility(db, staff, facility_id, Permission.VIEW_BILLING)
    ctx: dict[str, Any] = {
        "staff": staff,
        "facility": facility,
        "dollars": dollars,
        "form": {"from": first, "to": last},
    }
    try:
        span = reports.date_range(facility, clock.now(), first, last)
    except DomainError as exc:
        ctx.update(errors=exc.fields, revenue=None)
        return render(request, "billing/staff_revenue.html", ctx, status_code=exc.http_status)
    revenue = reports.revenue_by_day(db, facility, span)
    ctx.update(
        revenue=revenue,
        chart=reports.revenue_chart(revenue.days),
        form={"from": span.first.isoformat(), "to": span.last.isoformat()},
    )
    return render(request, "billing/staff_revenue.html", ctx)


@pages.get(
    "/staff/facilities/{facility_id}/refunds",
    response_class=HTMLResponse,
    openapi_extra=VIEW_BILLING,
)
def refunds_page(
    request: Request,
    facility_id: int,
    staff: CurrentStaff,
    db: DbSession,
    clock: ClockDep,
    first: FromDay = "",
    last: ToDay = "",
) -> HTMLResponse:
    facility = access_facility(db, staff, facility_id, Permission.VIEW_BILLING)
    ctx: dict[str, Any] = {
        "staff": staff,
        "facility": facility,
        "dollars": dollars,
        "form": {"from": first, "to": last},
    }
    try:
        span = reports.date_range(facility, clock.now(), first, last)
    except DomainError as exc:
        ctx.update(errors=exc.fields, refunds=None)
        return render(request, "billing/staff_refunds.html", ctx, status_code=exc.http_status)
    ctx.update(
        refunds=reports.refunds_for_facility(db, facility, span),
        form={"from": span.first.isoformat(), "to": span.last.isoformat()},
    )
    return render(request, "billing/staff_refunds.html", ctx)


def _signed(cents: int) -> str:
    """+$4.50, or -$4.50 written with a real minus sign (U+2212), which is read out as "minus"."""
    return ("+" if cents > 0 else "\u2212") + dollars(abs(cents))


# --- pages ---------------------------------------------------------------------------


def _money(value: str) -> int | str:
    """ "12.50" or "12" dollars as cents; anything else is passed on for the service to refuse."""
    text = value.strip().lstrip("$")
    try:
        amount = Decimal(text)
    except InvalidOperation:
        return text
    cents = amount * 100
    return int(cents) if cents == cents.to_integral_value() else text


def _visitor_zone(db: DbSession, visitor_id: int) -> str:
    """Times on the wallet page: the zone of the facility the family visits (most recent
    request), else UTC."""
    from openvisit.approvals import service as approvals
    from openvisit.facilities.models import Facility

    mine = approvals.for_visitor(db, visitor_id)
    facility = db.get(Facility, mine[0].facility_id) if mine else None
    return facility.timezone if facility else "UTC"


def _wallet_context(db: DbSession, visitor: Any, **extra: Any) -> dict[str, Any]:
    ctx = {
        "visitor": visitor,
        "summary": service.wallet_summary(db, visitor.id),
        "history": service.history(db, visitor.id)[:50],
        "dollars": dollars,
        "tz": _visitor_zone(db, visitor.id),
        **extra,
    }
    ctx["attempt"] = ctx.get("attempt") or secrets.token_hex(8)
    return ctx


@pages.get("/wallet", response_class=HTMLResponse)
def wallet_page(request: Request, visitor: CurrentVisitor, db: DbSession) -> HTMLResponse:
    return render(
        request,
        "billing/wallet.html",
        _wallet_context(db, visitor.visitor),
    )


@pages.post("/wallet/deposits", response_class=HTMLResponse)
def wallet_deposit_submit(
    request: Request,
    visitor: CurrentVisitor,
    db: DbSession,
    clock: ClockDep,
    gateway: Annotated[PaymentGateway, Depends(payment_gateway)],
    amount: Annotated[str, Form(max_length=20)] = "",
    card_number: Annotated[str, Form(max_length=30)] = "",
    attempt: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    """The form's attempt id is the idempotency key: a double submit adds money once."""
    try:
        txn = service.deposit_by_card(
            db,
            clock,
            gateway,
            visitor.actor,
            visitor.visitor,
            amount_cents=_money(amount),
            card_number=card_number,
            idempotency_key=attempt or secrets.token_hex(8),
        )
    except DomainError as exc:
        db.rollback()  # nothing of the failed attempt stays; then read the wallet as it is
        ctx = _wallet_context(db, visitor.visitor, attempt=attempt, form={"amount": amount})
        if exc.code in ("invalid_amount",):
            exc.fields = {"amount": exc.message}
        elif exc.code in ("invalid_card", "card_declined", "gateway_timeout"):
            exc.fields = {"card_number": exc.message}
        return form_error(request, db, "billing/wallet.html", ctx, exc, field="amount")
    added = service.wallet_change(db, txn.id, visitor.visitor.id)
    return flash_redirect(request, "/wallet", f"{dollars(added)} added to your wallet.")


@pages.get("/visits/{visit_id}/receipt", response_class=HTMLResponse)
def receipt_page(
    visit_id: int, request: Request, visitor: CurrentVisitor, db: DbSession
) -> HTMLResponse:
    """The receipt page. Not linked from anywhere yet (the visit page will link it)."""
    try:
        r = settlement.receipt(db, visit_id, visitor_id=visitor.visitor.id)
    except settlement.NotSettled as exc:
        ctx: dict[str, Any] = {"visitor": visitor.visitor, "receipt": None, "message": exc.message}
        return render(request, "billing/receipt.html", ctx, status_code=exc.http_status)
    ctx = {"visitor": visitor.visitor, "receipt": r, "dollars": dollars, "duration": _duration}
    return render(request, "billing/receipt.html", ctx)


def _duration(seconds: int) -> str:
    minutes, rest = divmod(seconds, 60)
    if not minutes:
        return f"{rest} seconds"
    return f"{minutes} min {rest} s" if rest else f"{minutes} min"
