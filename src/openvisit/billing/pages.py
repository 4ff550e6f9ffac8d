"""The money pages: a family's wallet and receipts; staff's money trail of a visit, revenue
per day and refunds issued."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from openvisit.approvals import service as approvals
from openvisit.billing import lobby, refunds, reports, service, settlement
from openvisit.billing.ledger import dollars
from openvisit.billing.routes import FromDay, Gateway, ToDay
from openvisit.deps import BillingFacility, CurrentStaff, CurrentVisitor, DbSession, Id
from openvisit.errors import Code, DomainError, NotFound
from openvisit.facilities.models import Facility
from openvisit.people.models import Visitor
from openvisit.scheduling import service as scheduling
from openvisit.visits.service import access_visit
from openvisit.web.answers import FormPage, Page
from openvisit.web.render import redirect, render

router = APIRouter(include_in_schema=False)

FormStr = Annotated[str, Form(max_length=20)]
Attempt = Annotated[str, Form(max_length=40)]
# A refused deposit shows its whole message beside the field it is about (the service names
# the API's fields, amount_cents; the form asks for dollars).
_DEPOSIT_FIELDS = {
    Code.INVALID_AMOUNT: "amount",
    Code.INVALID_CARD: "card_number",
    Code.CARD_DECLINED: "card_number",
    Code.GATEWAY_TIMEOUT: "card_number",
}


def _money(value: str) -> int | str:
    """ "12.50" or "12" dollars as cents; anything else is passed on for the service to refuse."""
    text = value.strip().lstrip("$")
    try:
        amount = Decimal(text)
    except InvalidOperation:
        return text
    cents = amount * 100
    return int(cents) if cents == cents.to_integral_value() else text


def _duration(seconds: int) -> str:
    minutes, rest = divmod(seconds, 60)
    if not minutes:
        return f"{rest} seconds"
    return f"{minutes} min {rest} s" if rest else f"{minutes} min"


def _signed(cents: int) -> str:
    """+$4.50, or -$4.50 written with a real minus sign (U+2212), which is read out as "minus"."""
    return ("+" if cents > 0 else "\u2212") + dollars(abs(cents))


# --- visitors ----------------------------------------------------------------------------


def _wallet_context(db: Session, visitor: Visitor, **extra: Any) -> dict[str, Any]:
    ctx = {
        "visitor": visitor,
        "summary": service.wallet_summary(db, visitor.id),
        "history": service.history(db, visitor.id)[:50],
        "dollars": dollars,
        "tz": approvals.visitor_timezone(db, visitor.id),
        **extra,
    }
    ctx["attempt"] = ctx.get("attempt") or secrets.token_hex(8)
    return ctx


@router.get("/wallet", response_class=HTMLResponse)
def wallet_page(request: Request, visitor: CurrentVisitor, db: DbSession) -> HTMLResponse:
    return render(request, "billing/wallet.html", _wallet_context(db, visitor.visitor))


@router.post("/wallet/deposits", response_class=HTMLResponse)
def wallet_deposit_submit(
    visitor: CurrentVisitor,
    page: Page,
    gateway: Gateway,
    amount: FormStr = "",
    card_number: Annotated[str, Form(max_length=30)] = "",
    attempt: Attempt = "",
) -> Response:
    """The form's attempt id is the idempotency key: a double submit adds money once."""
    try:
        txn = service.deposit_by_card(
            page.db,
            page.clock,
            gateway,
            visitor.actor,
            visitor.visitor,
            amount_cents=_money(amount),
            card_number=card_number,
            idempotency_key=attempt or secrets.token_hex(8),
        )
    except DomainError as exc:
        field = _DEPOSIT_FIELDS.get(exc.code)
        if field is not None:
            exc.fields = {field: exc.message}
        return page.refused(
            exc,
            FormPage(
                "billing/wallet.html",
                lambda: _wallet_context(
                    page.db, visitor.visitor, attempt=attempt, form={"amount": amount}
                ),
                field="amount",
            ),
        )
    added = service.wallet_change(page.db, txn.id, visitor.visitor.id)
    return page.done("/wallet", f"{dollars(added)} added to your wallet.")


@router.post("/wallet/refund", response_class=HTMLResponse)
def wallet_refund_submit(
    visitor: CurrentVisitor,
    page: Page,
    gateway: Gateway,
    attempt: Attempt = "",
) -> Response:
    try:
        txn = refunds.refund_on_request(
            page.db, page.clock, gateway, visitor.actor, visitor.visitor.id, attempt=attempt
        )
    except DomainError as exc:
        return page.refused_to(exc, "/wallet")
    paid = -service.wallet_change(page.db, txn.id, visitor.visitor.id)
    return page.done("/wallet", f"{dollars(paid)} is on its way back to your payment method.")


@router.get("/visits/{visit_id}/receipt", response_class=HTMLResponse)
def receipt_page(
    visit_id: Id, request: Request, visitor: CurrentVisitor, db: DbSession
) -> HTMLResponse:
    """The receipt page. Not linked from anywhere yet (the visit page will link it). Before
    the visit settles it says so, under 409, as the API does."""
    try:
        r = settlement.receipt(db, visit_id, visitor_id=visitor.visitor.id)
    except settlement.NotSettled as exc:
        ctx: dict[str, Any] = {"visitor": visitor.visitor, "receipt": None, "message": exc.message}
        return render(request, "billing/receipt.html", ctx, status_code=exc.http_status)
    ctx = {"visitor": visitor.visitor, "receipt": r, "dollars": dollars, "duration": _duration}
    return render(request, "billing/receipt.html", ctx)


# --- staff -------------------------------------------------------------------------------


@router.get("/staff/facilities/{facility_id}/visits/{visit_id}/money", response_class=HTMLResponse)
def money_trail_page(
    request: Request, visit_id: Id, facility: BillingFacility, staff: CurrentStaff, db: DbSession
) -> HTMLResponse:
    trail = reports.money_trail(db, facility, access_visit(db, facility, visit_id))
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


@router.get("/staff/facilities/{facility_id}/money-trail", response_class=HTMLResponse)
def money_trail_lookup(
    facility: BillingFacility,
    page: Page,
    reference: Annotated[str, Query(max_length=40)] = "",
) -> Response:
    """Find a visit's money trail by its reference (what a family reads out on the phone)."""
    visit = scheduling.visit_by_reference(page.db, facility.id, reference)
    if visit is None:
        words = reference.strip() or "(none given)"
        missing = NotFound(
            f"No visit at this facility has reference {words}.", code=Code.VISIT_NOT_FOUND
        )
        return page.refused_to(missing, f"/staff/facilities/{facility.id}/revenue")
    return redirect(f"/staff/facilities/{facility.id}/visits/{visit.id}/money")


class MoneyReport:
    """A staff money report over a range of the facility's local days (revenue per day,
    refunds issued): the range as typed, and the page that shows the report or refuses it."""

    def __init__(
        self,
        page: Page,
        facility: BillingFacility,
        staff: CurrentStaff,
        first: FromDay = "",
        last: ToDay = "",
    ) -> None:
        self.request, self.answer, self.facility = page.request, page, facility
        self.context = {
            "staff": staff,
            "facility": facility,
            "dollars": dollars,
            "form": {"from": first, "to": last},
        }
        self.now, self.first, self.last = page.clock.now(), first, last

    def page(
        self, template: str, report: Callable[[reports.DateRange], Mapping[str, Any]]
    ) -> HTMLResponse:
        """``report`` of the days asked for; days that make no range are refused on the
        same page, with what was typed."""
        try:
            span = reports.date_range(self.facility, self.now, self.first, self.last)
        except DomainError as exc:
            return self.answer.refused(exc, FormPage(template, lambda: self.context))
        shown = {"from": span.first.isoformat(), "to": span.last.isoformat()}
        return render(self.request, template, {**self.context, **report(span), "form": shown})


Report = Annotated[MoneyReport, Depends()]


@router.get("/staff/facilities/{facility_id}/revenue", response_class=HTMLResponse)
def revenue_page(report: Report, db: DbSession) -> HTMLResponse:
    def revenue(span: reports.DateRange) -> dict[str, Any]:
        found = reports.revenue_by_day(db, report.facility, span)
        return {"revenue": found, "chart": reports.revenue_chart(found.days)}

    return report.page("billing/staff_revenue.html", revenue)


@router.get("/staff/facilities/{facility_id}/refunds", response_class=HTMLResponse)
def refunds_page(report: Report, db: DbSession) -> HTMLResponse:
    def issued(span: reports.DateRange) -> dict[str, Any]:
        return {"refunds": reports.refunds_for_facility(db, report.facility, span)}

    return report.page("billing/staff_refunds.html", issued)


# --- lobby deposits ----------------------------------------------------------------------

LOBBY = "/staff/facilities/{facility_id}/lobby-deposits"
_LOBBY_FIELDS = {Code.INVALID_AMOUNT: "amount", Code.LOBBY_DEPOSIT_CAP_REACHED: "amount"}


def _lobby_url(facility: Facility, rest: str = "") -> str:
    return f"/staff/facilities/{facility.id}/lobby-deposits{rest}"


@router.get(LOBBY, response_class=HTMLResponse)
def lobby_search_page(
    facility: BillingFacility,
    staff: CurrentStaff,
    page: Page,
    q: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    """Find a family linked to this facility by name or e-mail address."""
    context: dict[str, Any] = {"staff": staff, "facility": facility, "form": {"q": q}}
    if not q:
        return page.render("billing/staff_lobby_search.html", {**context, "results": None})
    try:
        found = lobby.find_visitors(page.db, page.settings.secret_key, facility, q)
    except DomainError as exc:
        return page.refused(
            exc, FormPage("billing/staff_lobby_search.html", lambda: context, field="q")
        )
    return page.render("billing/staff_lobby_search.html", {**context, "results": found})


def _deposit_form(
    page: Page, staff: CurrentStaff, facility: Facility, visitor: Visitor, **extra: Any
) -> dict[str, Any]:
    return {
        "staff": staff,
        "facility": facility,
        "visitor": visitor,
        "methods": service.DEPOSIT_METHODS,
        "attempt": secrets.token_hex(8),
        "form": {"method": "cash"},
        **extra,
    }


@router.get(LOBBY + "/new", response_class=HTMLResponse)
def lobby_deposit_form(
    facility: BillingFacility,
    staff: CurrentStaff,
    page: Page,
    visitor: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    """The deposit form for the family a search found (another facility's is 404)."""
    try:
        found = lobby.visitor_by_reference(page.db, page.settings.secret_key, facility, visitor)
    except DomainError as exc:
        return page.refused_to(exc, _lobby_url(facility))
    context = _deposit_form(page, staff, facility, found, visitor_ref=visitor)
    return page.render("billing/staff_lobby_deposit.html", context)


@router.post(LOBBY, response_class=HTMLResponse)
def lobby_deposit_submit(
    facility: BillingFacility,
    staff: CurrentStaff,
    page: Page,
    visitor: Annotated[str, Form(max_length=200)] = "",
    amount: FormStr = "",
    method: Annotated[Literal["cash", "money_order"], Form()] = "cash",
    reference: Annotated[str, Form(max_length=100)] = "",
    attempt: Attempt = "",
) -> Response:
    """Record the deposit; the form's attempt id makes a double submit record it once.
    Then the receipt (no balance)."""
    try:
        found = lobby.visitor_by_reference(page.db, page.settings.secret_key, facility, visitor)
    except DomainError as exc:
        return page.refused_to(exc, _lobby_url(facility))
    try:
        deposit = lobby.record_deposit(
            page.db,
            page.clock,
            staff.actor,
            facility,
            visitor_id=found.id,
            amount_cents=_money(amount),
            method=method,
            reference=reference,
            idempotency_key=attempt or None,
        )
    except DomainError as exc:
        field = _LOBBY_FIELDS.get(exc.code)
        if field is not None:
            exc.fields = {field: exc.message}
        typed = {"amount": amount, "method": method, "reference": reference}
        return page.refused(
            exc,
            FormPage(
                "billing/staff_lobby_deposit.html",
                lambda: _deposit_form(
                    page, staff, facility, found, visitor_ref=visitor, form=typed, attempt=attempt
                ),
                field="amount",
            ),
        )
    return page.done(
        _lobby_url(facility, f"/{deposit.transaction_id}"),
        f"{dollars(deposit.amount_cents)} recorded for {deposit.visitor_name}.",
    )


@router.get(LOBBY + "/{transaction_id}", response_class=HTMLResponse)
def lobby_deposit_receipt_page(
    request: Request,
    transaction_id: Id,
    facility: BillingFacility,
    staff: CurrentStaff,
    db: DbSession,
) -> HTMLResponse:
    """A receipt to read back to the family (or print): what was paid in, never the balance."""
    deposit = lobby.deposit_receipt(db, facility, transaction_id)
    return render(
        request,
        "billing/staff_lobby_receipt.html",
        {"staff": staff, "facility": facility, "deposit": deposit, "dollars": dollars},
    )
