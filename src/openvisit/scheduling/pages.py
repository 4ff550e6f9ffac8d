"""Pages: a family's visits and booking; the staff's day schedule and booking on behalf."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from openvisit import bounds
from openvisit.auth.permissions import Permission
from openvisit.billing import service as billing
from openvisit.billing.ledger import dollars
from openvisit.clock import Clock
from openvisit.deps import (
    CurrentStaff,
    CurrentVisitor,
    DbSession,
    Id,
    ViewedFacility,
    VisitsFacility,
)
from openvisit.errors import Code, DomainError, InvalidInput
from openvisit.facilities import kiosks
from openvisit.facilities.models import Facility
from openvisit.people.context import StaffContext
from openvisit.people.models import Visitor
from openvisit.residents.models import Resident
from openvisit.scheduling import presenters, service
from openvisit.scheduling.presenters import STATE_TAGS
from openvisit.scheduling.routes import my_visit_calendar, parse_date
from openvisit.visits.models import Visit, VisitState, VisitType
from openvisit.visits.service import access_visit
from openvisit.web.answers import FormPage, Page
from openvisit.web.render import flash_redirect, redirect, render

router = APIRouter(include_in_schema=False)

STAFF_CANCEL_REASONS = [
    "Resident unavailable",
    "Court or legal appointment",
    "Medical appointment",
    "Facility operations",
    "Visitor asked to cancel",
]
FormStr = Annotated[str, Form(max_length=100)]
FormText = Annotated[str, Form(max_length=500)]
FormVisitType = Annotated[VisitType, Form()]


def _parse_start(value: str) -> dt.datetime:
    """The chosen start time, as the slot radios send it (ISO 8601 with an offset)."""
    try:
        when = bounds.parse_datetime(value)
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise InvalidInput(
            "Choose a time.", code=Code.SLOT_NOT_CHOSEN, fields={"start": "Choose a time"}
        )
    return when


def _day_of(visit: Visit, facility: Facility) -> dt.date:
    return visit.starts_at.astimezone(ZoneInfo(facility.timezone)).date()


def _schedule_url(facility: Facility, day: dt.date) -> str:
    return f"/staff/facilities/{facility.id}/schedule?date={day.isoformat()}"


# --- choosing a time: families and staff -----------------------------------------------


def booking_context(
    db: Session,
    clock: Clock,
    *,
    resident: Resident,
    visitor: Visitor,
    visit_type: VisitType | None,
    length: int | None,
    week: int,
    facility_id: Id | None = None,
) -> dict[str, Any]:
    """What the "choose a time" form shows, a week at a time; shared by families and staff."""
    offer = service.offer(db, resident, visitor.id)
    facility = offer.facility
    chosen_type = visit_type if visit_type is not None else offer.types[0]
    chosen_length = length if length in offer.lengths else offer.lengths[0]
    result = service.availability(
        db,
        clock,
        resident_id=resident.id,
        visitor_id=visitor.id,
        visit_type=chosen_type,
        length_minutes=chosen_length,
        facility_id=facility_id,
    )
    week = max(0, min(week, 3))
    zone = ZoneInfo(facility.timezone)
    first = clock.now().astimezone(zone).date() + dt.timedelta(weeks=week)
    days = [first + dt.timedelta(days=n) for n in range(7)]
    by_day = dict(presenters.days(result.slots, facility.timezone))
    return {
        "facility": facility,
        "resident": resident,
        "lengths": offer.lengths,
        "types": offer.types,
        "chosen_type": chosen_type,
        "chosen_length": chosen_length,
        "week": week,
        "days": [(day, by_day.get(day, [])) for day in days],
        "any_slots": bool(result.slots),
        "has_later": bool(result.slots)
        and result.slots[-1].start.astimezone(zone).date() > days[-1],
        "type_names": presenters.TYPE_NAMES,
    }


# --- a family's visits ---------------------------------------------------------------


@router.get("/visits", response_class=HTMLResponse)
def my_visits(
    page: Page,
    visitor: CurrentVisitor,
) -> HTMLResponse:
    mine = service.family_visits(page.db, visitor.visitor.id, page.clock.now())
    return page.render(
        "scheduling/my_visits.html",
        {
            "visitor": visitor.visitor,
            "upcoming": mine.upcoming,
            "ended": mine.ended,
            "called_off": mine.called_off,
            "approvals": mine.approvals,
            "residents": mine.residents,
            "facilities": mine.facilities,
            "TAGS": STATE_TAGS,
            "span": presenters.span_label,
        },
    )


def _cannot_book(
    request: Request, visitor: Visitor, resident: Resident, why: DomainError
) -> HTMLResponse:
    """Not being allowed to book is not a form error: say why and what to do."""
    return render(
        request,
        "scheduling/cannot_book.html",
        {"visitor": visitor, "resident": resident, "error": why},
        status_code=why.http_status,
    )


def _choose_time(
    db: Session,
    clock: Clock,
    visitor: Visitor,
    resident: Resident,
    *,
    visit_type: VisitType | None,
    length: int | None,
    week: int,
    reschedule: int | None,
) -> dict[str, Any]:
    ctx = booking_context(
        db,
        clock,
        resident=resident,
        visitor=visitor,
        visit_type=visit_type,
        length=length,
        week=week,
    )
    ctx.update(visitor=visitor, reschedule=reschedule, action="/visits/book")
    return ctx


@router.get("/visits/book", response_class=HTMLResponse)
def choose_time(
    page: Page,
    visitor: CurrentVisitor,
    resident_id: Id,
    length: int | None = None,
    type: VisitType | None = None,
    week: int = 0,
    reschedule: int | None = None,
) -> HTMLResponse:
    resident = service.resident_asked_about(page.db, visitor.visitor.id, resident_id)
    try:
        ctx = _choose_time(
            page.db,
            page.clock,
            visitor.visitor,
            resident,
            visit_type=type,
            length=length,
            week=week,
            reschedule=reschedule,
        )
    except DomainError as why:
        return _cannot_book(page.request, visitor.visitor, resident, why)
    return page.render("scheduling/choose_time.html", ctx)


@router.post("/visits/book", response_class=HTMLResponse)
def book_submit(
    page: Page,
    visitor: CurrentVisitor,
    resident_id: Annotated[Id, Form()],
    length: Annotated[int, Form()],
    visit_type: FormVisitType = VisitType.REMOTE,
    start: FormStr = "",
    reschedule: FormStr = "",
    week: Annotated[int, Form()] = 0,
) -> Response:
    resident = service.resident_asked_about(page.db, visitor.visitor.id, resident_id)
    moving = bounds.parse_id(reschedule)
    try:
        when = _parse_start(start)
        if moving is not None:
            old = access_visit(page.db, visitor, moving, for_update=True)
            visit = service.reschedule(
                page.db, page.clock, visitor.actor, old, start=when, length_minutes=length
            )
        else:
            visit = service.book(
                page.db,
                page.clock,
                visitor.actor,
                resident_id=resident.id,
                visitor_id=visitor.visitor.id,
                visit_type=visit_type,
                start=when,
                length_minutes=length,
            )
    except DomainError as exc:
        again = FormPage(
            "scheduling/choose_time.html",
            lambda: _choose_time(
                page.db,
                page.clock,
                visitor.visitor,
                resident,
                visit_type=visit_type,
                length=length,
                week=week,
                reschedule=moving,
            ),
            field="start",
        )
        try:
            return page.refused(exc, again)
        except DomainError as why:  # no time can be booked now at all
            return _cannot_book(page.request, visitor.visitor, resident, why)
    return redirect(f"/visits/{visit.id}?booked=1")


# ":int", so that other pages under /visits/ ("find", "request") are never taken for a visit.
@router.get("/visits/{visit_id:int}", response_class=HTMLResponse)
def visit_page(
    request: Request,
    visit_id: Id,
    visitor: CurrentVisitor,
    db: DbSession,
    booked: int = 0,
) -> HTMLResponse:
    visit = access_visit(db, visitor, visit_id)
    names = service.names_of(db, [visit])
    facility = names.facilities[visit.facility_id]
    return render(
        request,
        "scheduling/visit.html",
        {
            "visitor": visitor.visitor,
            "visit": visit,
            "facility": facility,
            "resident": names.residents[visit.resident_id],
            "booked": booked,
            "label": presenters.span_label(visit.starts_at, visit.ends_at, facility.timezone),
            "TAGS": STATE_TAGS,
            "type_names": presenters.TYPE_NAMES,
            "can_change": visit.state in (VisitState.REQUESTED, VisitState.SCHEDULED),
            "length": int((visit.ends_at - visit.starts_at).total_seconds() // 60),
            "held_cents": billing.visit_hold_cents(db, visit.id),
            "dollars": dollars,
        },
    )


@router.post("/visits/{visit_id}/cancel", response_class=HTMLResponse)
def cancel_submit(
    page: Page,
    visit_id: Id,
    visitor: CurrentVisitor,
    answer: Annotated[Literal["yes", "no"], Form()] = "no",
) -> Response:
    visit = access_visit(page.db, visitor, visit_id, for_update=True)
    if answer != "yes":
        return flash_redirect(
            page.request, f"/visits/{visit.id}", "Your visit is still booked.", "info"
        )
    service.cancel(
        page.db,
        page.clock,
        visitor.actor,
        visit,
        cause="visitor",
        reason="Cancelled by the visitor",
    )
    return page.done("/visits", f"Visit {visit.reference} cancelled.")


# The visit page links here: the API's calendar file, at an address of the site's.
router.add_api_route("/visits/{visit_id}/calendar.ics", my_visit_calendar, methods=["GET"])


# --- staff: the day's schedule, booking and cancelling on a family's behalf -------------


@router.get("/staff/facilities/{facility_id}/schedule", response_class=HTMLResponse)
def schedule_page(
    page: Page,
    facility: ViewedFacility,
    staff: CurrentStaff,
    date: str = "",
) -> HTMLResponse:
    today = page.clock.now().astimezone(ZoneInfo(facility.timezone)).date()
    day = parse_date(date) if date else today
    visits = service.day_schedule(page.db, facility, day)
    by_kiosk: dict[int, list[Visit]] = {}
    for visit in visits:
        by_kiosk.setdefault(visit.resident_kiosk_id, []).append(visit)
    return page.render(
        "scheduling/staff_schedule.html",
        {
            "staff": staff,
            "facility": facility,
            "day": day,
            "kiosks": {k.id: k for k in kiosks.list_kiosks(page.db, facility)},
            "by_kiosk": by_kiosk,
            "names": service.names_of(page.db, visits),
            "TAGS": STATE_TAGS,
            "reasons": STAFF_CANCEL_REASONS,
            "prev": day - dt.timedelta(days=1),
            "next": day + dt.timedelta(days=1),
            "type_names": presenters.TYPE_NAMES,
            "can_manage": staff.can(facility.id, Permission.MANAGE_VISITS),
            "can_see_money": staff.can(facility.id, Permission.VIEW_BILLING),
        },
    )


def _cancel_reason(reason: str, other: str) -> str:
    """The reason chosen from the list, or the one written under "Other"."""
    text = other.strip() if reason == "other" else reason
    if not text:
        raise InvalidInput("Choose a reason for cancelling.", fields={"reason": "Choose a reason"})
    return text


@router.post(
    "/staff/facilities/{facility_id}/visits/{visit_id}/cancel", response_class=HTMLResponse
)
def staff_cancel_submit(
    facility: VisitsFacility,
    visit_id: Id,
    staff: CurrentStaff,
    page: Page,
    reason: FormStr = "",
    other: FormText = "",
) -> Response:
    visit = access_visit(page.db, facility, visit_id, for_update=True)
    back = _schedule_url(facility, _day_of(visit, facility))
    try:
        service.cancel_by_staff(
            page.db,
            page.clock,
            page.settings,
            staff.actor,
            visit,
            reason=_cancel_reason(reason, other),
        )
    except DomainError as exc:
        return page.refused_to(exc, back)
    return page.done(back, f"Visit {visit.reference} cancelled; the family was told by e-mail.")


@router.post(
    "/staff/facilities/{facility_id}/visits/{visit_id}/decide", response_class=HTMLResponse
)
def staff_decide_submit(
    facility: VisitsFacility,
    visit_id: Id,
    staff: CurrentStaff,
    page: Page,
    decision: Annotated[Literal["approve", "deny"], Form()],
    reason: FormText = "",
) -> Response:
    visit = access_visit(page.db, facility, visit_id, for_update=True)
    back = _schedule_url(facility, _day_of(visit, facility))
    approve = decision == "approve"
    try:
        service.decide_booking(
            page.db, page.clock, staff.actor, visit, approve=approve, reason=reason
        )
    except DomainError as exc:
        return page.refused_to(exc, back)
    return page.done(back, f"Visit {visit.reference} {'approved' if approve else 'not approved'}.")


def _staff_book_context(
    staff: StaffContext, facility: Facility, booking_number: str, visitor_email: str
) -> dict[str, Any]:
    return {
        "staff": staff,
        "facility": facility,
        "form": {"booking_number": booking_number, "visitor_email": visitor_email},
    }


@router.get("/staff/facilities/{facility_id}/visits/new", response_class=HTMLResponse)
def staff_book_page(
    page: Page,
    facility: VisitsFacility,
    staff: CurrentStaff,
    booking_number: str = "",
    visitor_email: str = "",
    length: int | None = None,
    type: VisitType | None = None,
    week: int = 0,
) -> HTMLResponse:
    ctx = _staff_book_context(staff, facility, booking_number, visitor_email)
    if not booking_number and not visitor_email:
        return page.render("scheduling/staff_book.html", ctx)
    try:
        resident, visitor = service.resident_and_visitor(
            page.db, facility, booking_number, visitor_email
        )
        ctx.update(
            booking_context(
                page.db,
                page.clock,
                resident=resident,
                visitor=visitor,
                visit_type=type,
                length=length,
                week=week,
                facility_id=facility.id,
            )
        )
    except DomainError as exc:
        form_page = FormPage("scheduling/staff_book.html", lambda: ctx, field="booking_number")
        return page.refused(exc, form_page)
    ctx.update(visitor=visitor, action=f"/staff/facilities/{facility.id}/visits/new")
    return page.render("scheduling/staff_book.html", ctx)


@router.post("/staff/facilities/{facility_id}/visits/new", response_class=HTMLResponse)
def staff_book_submit(
    facility: VisitsFacility,
    staff: CurrentStaff,
    page: Page,
    booking_number: FormStr,
    visitor_email: FormStr,
    length: Annotated[int, Form()],
    visit_type: FormVisitType = VisitType.REMOTE,
    start: FormStr = "",  # no time chosen sends none
) -> Response:
    try:
        resident, visitor = service.resident_and_visitor(
            page.db, facility, booking_number, visitor_email
        )
        visit = service.book(
            page.db,
            page.clock,
            staff.actor,
            resident_id=resident.id,
            visitor_id=visitor.id,
            visit_type=visit_type,
            start=_parse_start(start),
            length_minutes=length,
            facility_id=facility.id,
        )
    except DomainError as exc:
        ctx = _staff_book_context(staff, facility, booking_number, visitor_email)
        return page.refused(exc, FormPage("scheduling/staff_book.html", lambda: ctx, field="start"))
    return page.done(
        _schedule_url(facility, _day_of(visit, facility)),
        f"Visit {visit.reference} booked for {resident.full_name} with {visitor.legal_name}.",
    )
