"""Pages: a family's visits and booking; the staff's day schedule and booking on behalf."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from openvisit.approvals import service as approvals
from openvisit.auth.permissions import Permission
from openvisit.billing import service as billing
from openvisit.billing.ledger import dollars
from openvisit.deps import ClockDep, CurrentStaff, CurrentVisitor, DbSession, SettingsDep
from openvisit.errors import Code, DomainError, InvalidInput, NotFound
from openvisit.facilities.models import Facility, FacilitySettings, Kiosk
from openvisit.facilities.service import access_facility
from openvisit.people.models import Visitor
from openvisit.residents.models import Resident
from openvisit.scheduling import presenters, service
from openvisit.visits.models import Visit, VisitState, VisitType
from openvisit.visits.service import access_visit
from openvisit.visits.states import ACTIVE_STATES
from openvisit.web.render import flash_redirect, form_error, redirect, render

pages = APIRouter(include_in_schema=False)

STATE_TAGS = {
    VisitState.REQUESTED: ("Awaiting review", "yellow"),
    VisitState.SCHEDULED: ("Booked", "green"),
    VisitState.OPEN: ("Open to join", "green"),
    VisitState.LIVE: ("In progress", "green"),
    VisitState.COMPLETED: ("Completed", "grey"),
    VisitState.MISSED: ("Missed", "grey"),
    VisitState.TERMINATED: ("Ended by staff", "red"),
    VisitState.FAILED: ("Failed", "red"),
    VisitState.DENIED: ("Not approved", "red"),
    VisitState.CANCELLED: ("Cancelled", "grey"),
}
STAFF_CANCEL_REASONS = [
    "Resident unavailable",
    "Court or legal appointment",
    "Medical appointment",
    "Facility operations",
    "Visitor asked to cancel",
]
FormStr = Annotated[str, Form(max_length=100)]


def _lookup(db: Session, visits: list[Visit]) -> dict[str, dict[int, Any]]:
    """Residents, facilities and visitors of these visits, by id, in three queries."""

    def load(model: Any, ids: set[int]) -> dict[int, Any]:
        if not ids:
            return {}
        return {row.id: row for row in db.scalars(select(model).where(model.id.in_(ids)))}

    return {
        "residents": load(Resident, {v.resident_id for v in visits}),
        "facilities": load(Facility, {v.facility_id for v in visits}),
        "visitors": load(Visitor, {v.visitor_id for v in visits}),
    }


# --- a family's visits ---------------------------------------------------------------


@pages.get("/visits", response_class=HTMLResponse)
def my_visits(
    request: Request, visitor: CurrentVisitor, db: DbSession, clock: ClockDep
) -> HTMLResponse:
    now = clock.now()
    visits = service.visits_for_visitor(db, visitor.visitor.id)
    upcoming = [v for v in visits if v.state in ACTIVE_STATES and v.ends_at > now]
    ended = [
        v
        for v in visits
        if v not in upcoming and v.state not in (VisitState.CANCELLED, VisitState.DENIED)
    ]
    called_off = [v for v in visits if v.state in (VisitState.CANCELLED, VisitState.DENIED)]
    mine = approvals.for_visitor(db, visitor.visitor.id)
    residents = {
        r.id: r
        for r in db.scalars(
            select(Resident).where(
                Resident.id.in_({a.resident_id for a in mine} | {v.resident_id for v in visits})
            )
        )
    }
    facilities = {f.id: f for f in db.scalars(select(Facility))}
    return render(
        request,
        "scheduling/my_visits.html",
        {
            "visitor": visitor.visitor,
            "upcoming": upcoming,
            "ended": list(reversed(ended)),
            "called_off": list(reversed(called_off)),
            "approvals": mine,
            "residents": residents,
            "facilities": facilities,
            "TAGS": STATE_TAGS,
            "span": presenters.span_label,
        },
    )


def _offered(
    db: Session, resident: Resident, visitor: Visitor
) -> tuple[Facility, list[int], list[VisitType]]:
    facility = db.get(Facility, resident.facility_id)
    settings = db.get(FacilitySettings, resident.facility_id)
    if facility is None or settings is None:
        raise NotFound("We couldn't find that facility.")
    approval = approvals.approval_for(db, visitor.id, resident.id)
    types = [VisitType.REMOTE, VisitType.ONSITE]
    if approval and approval.relationship in approvals.PROFESSIONAL_RELATIONSHIPS:
        types = [VisitType.PRIVILEGED, *types]
    return facility, sorted(settings.visit_lengths_minutes), types


def _week_days(tz: str, now: dt.datetime, week: int) -> list[dt.date]:
    first = now.astimezone(ZoneInfo(tz)).date() + dt.timedelta(days=7 * week)
    return [first + dt.timedelta(days=n) for n in range(7)]


def booking_context(
    db: Session,
    clock: ClockDep,
    *,
    resident: Resident,
    visitor: Visitor,
    visit_type: str,
    length: int | None,
    week: int,
    facility_id: int | None = None,
) -> dict[str, Any]:
    """What the "choose a time" page shows; shared by families and staff."""
    facility, lengths, types = _offered(db, resident, visitor)
    chosen_type = VisitType(visit_type) if visit_type in VisitType._value2member_map_ else types[0]
    chosen_length = length if length in lengths else lengths[0]
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
    days = _week_days(facility.timezone, clock.now(), week)
    by_day = dict(presenters.days(result.slots, facility.timezone))
    zone = ZoneInfo(facility.timezone)
    return {
        "facility": facility,
        "resident": resident,
        "lengths": lengths,
        "types": types,
        "chosen_type": chosen_type,
        "chosen_length": chosen_length,
        "week": week,
        "days": [(day, by_day.get(day, [])) for day in days],
        "any_slots": bool(result.slots),
        "has_later": bool(result.slots)
        and result.slots[-1].start.astimezone(zone).date() > days[-1],
        "type_names": presenters.TYPE_NAMES,
    }


def _visitor_resident(db: Session, visitor_id: int, resident_id: int) -> Resident:
    """A resident this visitor has asked about (approved or not): others are not found."""
    if not any(a.resident_id == resident_id for a in approvals.for_visitor(db, visitor_id)):
        raise NotFound("We couldn't find that resident.", code=Code.RESIDENT_NOT_FOUND)
    resident = db.get(Resident, resident_id)
    assert resident is not None
    return resident


@pages.get("/visits/book", response_class=HTMLResponse)
def choose_time(
    request: Request,
    visitor: CurrentVisitor,
    db: DbSession,
    clock: ClockDep,
    resident_id: int,
    length: int | None = None,
    type: str = "",
    week: int = 0,
    reschedule: int | None = None,
) -> HTMLResponse:
    resident = _visitor_resident(db, visitor.visitor.id, resident_id)
    try:
        ctx = booking_context(
            db,
            clock,
            resident=resident,
            visitor=visitor.visitor,
            visit_type=type,
            length=length,
            week=week,
        )
    except DomainError as exc:
        # Not being allowed to book is not a form error: say why and what to do.
        return render(
            request,
            "scheduling/cannot_book.html",
            {"visitor": visitor.visitor, "resident": resident, "error": exc},
            status_code=exc.http_status,
        )
    ctx.update(visitor=visitor.visitor, reschedule=reschedule, action="/visits/book")
    return render(request, "scheduling/choose_time.html", ctx)


@pages.post("/visits/book", response_class=HTMLResponse)
def book_submit(
    request: Request,
    visitor: CurrentVisitor,
    db: DbSession,
    clock: ClockDep,
    resident_id: Annotated[int, Form()],
    length: Annotated[int, Form()],
    visit_type: FormStr = "remote",
    start: FormStr = "",
    reschedule: FormStr = "",
    week: Annotated[int, Form()] = 0,
) -> Response:
    resident = _visitor_resident(db, visitor.visitor.id, resident_id)
    try:
        when = _parse_start(start)
        if reschedule.isdigit():
            old = access_visit(db, visitor, int(reschedule), for_update=True)
            visit = service.reschedule(
                db, clock, visitor.actor, old, start=when, length_minutes=length
            )
        else:
            visit = service.book(
                db,
                clock,
                visitor.actor,
                resident_id=resident.id,
                visitor_id=visitor.visitor.id,
                visit_type=VisitType(visit_type)
                if visit_type in VisitType._value2member_map_
                else VisitType.REMOTE,
                start=when,
                length_minutes=length,
            )
    except DomainError as exc:
        db.rollback()
        try:
            ctx = booking_context(
                db,
                clock,
                resident=resident,
                visitor=visitor.visitor,
                visit_type=visit_type,
                length=length,
                week=week,
            )
        except DomainError as why:
            return render(
                request,
                "scheduling/cannot_book.html",
                {"visitor": visitor.visitor, "resident": resident, "error": why},
                status_code=why.http_status,
            )
        ctx.update(
            visitor=visitor.visitor,
            action="/visits/book",
            reschedule=int(reschedule) if reschedule.isdigit() else None,
        )
        return form_error(request, db, "scheduling/choose_time.html", ctx, exc, field="start")
    return redirect(f"/visits/{visit.id}?booked=1")  # type: ignore[return-value]


def _parse_start(value: str) -> dt.datetime:
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(
            "Choose a time.", code=Code.SLOT_NOT_CHOSEN, fields={"start": "Choose a time"}
        ) from None
    if when.tzinfo is None:
        raise InvalidInput(
            "Choose a time.", code=Code.SLOT_NOT_CHOSEN, fields={"start": "Choose a time"}
        )
    return when


@pages.get("/visits/{visit_id}", response_class=HTMLResponse)
def visit_page(
    request: Request,
    visit_id: int,
    visitor: CurrentVisitor,
    db: DbSession,
    clock: ClockDep,
    booked: int = 0,
) -> HTMLResponse:
    visit = access_visit(db, visitor, visit_id)
    names = _lookup(db, [visit])
    facility = names["facilities"][visit.facility_id]
    return render(
        request,
        "scheduling/visit.html",
        {
            "visitor": visitor.visitor,
            "visit": visit,
            "facility": facility,
            "resident": names["residents"][visit.resident_id],
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


@pages.post("/visits/{visit_id}/cancel", response_class=HTMLResponse)
def cancel_submit(
    request: Request,
    visit_id: int,
    visitor: CurrentVisitor,
    db: DbSession,
    clock: ClockDep,
    answer: FormStr = "",
) -> Response:
    visit = access_visit(db, visitor, visit_id, for_update=True)
    if answer != "yes":
        return flash_redirect(request, f"/visits/{visit.id}", "Your visit is still booked.", "info")
    service.cancel(
        db, clock, visitor.actor, visit, cause="visitor", reason="Cancelled by the visitor"
    )
    return flash_redirect(request, "/visits", f"Visit {visit.reference} cancelled.")


@pages.get("/visits/{visit_id}/calendar.ics")
def visit_calendar(
    visit_id: int, visitor: CurrentVisitor, db: DbSession, settings: SettingsDep
) -> Response:
    visit = access_visit(db, visitor, visit_id)
    names = _lookup(db, [visit])
    body = presenters.ics(
        visit,
        names["facilities"][visit.facility_id],
        names["residents"][visit.resident_id].full_name,
        settings.base_url.rstrip("/"),
    )
    return Response(
        body,
        media_type="text/calendar",
        headers={"content-disposition": f'attachment; filename="visit-{visit.reference}.ics"'},
    )


# --- staff: the day's schedule, booking and cancelling on a family's behalf -------------


def _local_day(facility: Facility, value: str, now: dt.datetime) -> dt.date:
    if not value:
        return now.astimezone(ZoneInfo(facility.timezone)).date()
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(
            "Enter a real date.", code=Code.INVALID_DATE, fields={"date": "Enter a real date"}
        ) from None


@pages.get("/staff/facilities/{facility_id}/schedule", response_class=HTMLResponse)
def schedule_page(
    request: Request,
    facility_id: int,
    staff: CurrentStaff,
    db: DbSession,
    clock: ClockDep,
    date: str = "",
) -> HTMLResponse:
    facility = access_facility(db, staff, facility_id, Permission.VIEW_FACILITY)
    day = _local_day(facility, date, clock.now())
    visits = service.day_schedule(db, facility, day)
    kiosks = {
        k.id: k
        for k in db.scalars(
            select(Kiosk).where(Kiosk.facility_id == facility.id).order_by(Kiosk.name)
        )
    }
    by_kiosk: dict[int, list[Visit]] = {}
    for visit in visits:
        by_kiosk.setdefault(visit.resident_kiosk_id, []).append(visit)
    return render(
        request,
        "scheduling/staff_schedule.html",
        {
            "staff": staff,
            "facility": facility,
            "day": day,
            "kiosks": kiosks,
            "by_kiosk": by_kiosk,
            "names": _lookup(db, visits),
            "TAGS": STATE_TAGS,
            "reasons": STAFF_CANCEL_REASONS,
            "prev": day - dt.timedelta(days=1),
            "next": day + dt.timedelta(days=1),
            "type_names": presenters.TYPE_NAMES,
            "can_manage": staff.can(facility.id, Permission.MANAGE_VISITS),
            "can_see_money": staff.can(facility.id, Permission.VIEW_BILLING),
        },
    )


@pages.post("/staff/facilities/{facility_id}/visits/{visit_id}/cancel", response_class=HTMLResponse)
def staff_cancel_submit(
    request: Request,
    facility_id: int,
    visit_id: int,
    staff: CurrentStaff,
    db: DbSession,
    clock: ClockDep,
    settings: SettingsDep,
    reason: FormStr = "",
    other: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    facility = access_facility(db, staff, facility_id, Permission.MANAGE_VISITS)
    visit = access_visit(db, facility, visit_id, for_update=True)
    day = visit.starts_at.astimezone(ZoneInfo(facility.timezone)).date()
    text = other.strip() if reason == "other" else reason
    back = f"/staff/facilities/{facility.id}/schedule?date={day.isoformat()}"
    if not text:
        return flash_redirect(request, back, "Choose a reason for cancelling.", "error")
    service.cancel_visits(db, clock, settings, staff.actor, [visit], cause="staff", reason=text)
    return flash_redirect(
        request, back, f"Visit {visit.reference} cancelled; the family was told by e-mail."
    )


@pages.post("/staff/facilities/{facility_id}/visits/{visit_id}/decide", response_class=HTMLResponse)
def staff_decide_submit(
    request: Request,
    facility_id: int,
    visit_id: int,
    staff: CurrentStaff,
    db: DbSession,
    clock: ClockDep,
    decision: FormStr = "",
    reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    facility = access_facility(db, staff, facility_id, Permission.MANAGE_VISITS)
    visit = access_visit(db, facility, visit_id)
    day = visit.starts_at.astimezone(ZoneInfo(facility.timezone)).date()
    back = f"/staff/facilities/{facility.id}/schedule?date={day.isoformat()}"
    try:
        service.decide_booking(
            db,
            clock,
            staff.actor,
            facility_id=facility.id,
            visit_id=visit.id,
            approve=decision == "approve",
            reason=reason,
        )
    except DomainError as exc:
        db.rollback()
        return flash_redirect(request, back, exc.message, "error")
    return flash_redirect(
        request,
        back,
        f"Visit {visit.reference} {'approved' if decision == 'approve' else 'not approved'}.",
    )


def _pair(
    db: Session, facility: Facility, booking_number: str, visitor_email: str
) -> tuple[Resident, Visitor]:
    resident = db.scalar(
        select(Resident).where(
            Resident.facility_id == facility.id,
            Resident.booking_number == booking_number.strip().upper(),
        )
    )
    if resident is None:
        raise NotFound(
            "No resident here has that booking number.",
            code=Code.RESIDENT_NOT_FOUND,
            fields={"booking_number": "Enter a booking number of this facility"},
        )
    visitor = db.scalar(select(Visitor).where(Visitor.email == visitor_email.strip().lower()))
    if visitor is None:
        raise NotFound(
            "No visitor account has that e-mail address.",
            code=Code.VISITOR_NOT_FOUND,
            fields={"visitor_email": "Enter the e-mail of the visitor's account"},
        )
    return resident, visitor


@pages.get("/staff/facilities/{facility_id}/visits/new", response_class=HTMLResponse)
def staff_book_page(
    request: Request,
    facility_id: int,
    staff: CurrentStaff,
    db: DbSession,
    clock: ClockDep,
    booking_number: str = "",
    visitor_email: str = "",
    length: int | None = None,
    type: str = "",
    week: int = 0,
) -> HTMLResponse:
    facility = access_facility(db, staff, facility_id, Permission.MANAGE_VISITS)
    ctx: dict[str, Any] = {
        "staff": staff,
        "facility": facility,
        "form": {"booking_number": booking_number, "visitor_email": visitor_email},
    }
    if not booking_number and not visitor_email:
        return render(request, "scheduling/staff_book.html", ctx)
    try:
        resident, visitor = _pair(db, facility, booking_number, visitor_email)
        ctx.update(
            booking_context(
                db,
                clock,
                resident=resident,
                visitor=visitor,
                visit_type=type,
                length=length,
                week=week,
                facility_id=facility.id,
            )
        )
    except DomainError as exc:
        return form_error(
            request, db, "scheduling/staff_book.html", ctx, exc, field="booking_number"
        )
    ctx.update(
        visitor=visitor,
        facility=facility,
        staff=staff,
        action=f"/staff/facilities/{facility.id}/visits/new",
    )
    return render(request, "scheduling/staff_book.html", ctx)


@pages.post("/staff/facilities/{facility_id}/visits/new", response_class=HTMLResponse)
def staff_book_submit(
    request: Request,
    facility_id: int,
    staff: CurrentStaff,
    db: DbSession,
    clock: ClockDep,
    booking_number: FormStr = "",
    visitor_email: FormStr = "",
    length: Annotated[int, Form()] = 0,
    visit_type: FormStr = "remote",
    start: FormStr = "",
) -> Response:
    facility = access_facility(db, staff, facility_id, Permission.MANAGE_VISITS)
    ctx: dict[str, Any] = {
        "staff": staff,
        "facility": facility,
        "form": {"booking_number": booking_number, "visitor_email": visitor_email},
    }
    try:
        resident, visitor = _pair(db, facility, booking_number, visitor_email)
        visit = service.book(
            db,
            clock,
            staff.actor,
            resident_id=resident.id,
            visitor_id=visitor.id,
            visit_type=VisitType(visit_type)
            if visit_type in VisitType._value2member_map_
            else VisitType.REMOTE,
            start=_parse_start(start),
            length_minutes=length,
            facility_id=facility.id,
        )
    except DomainError as exc:
        return form_error(request, db, "scheduling/staff_book.html", ctx, exc, field="start")
    day = visit.starts_at.astimezone(ZoneInfo(facility.timezone)).date()
    return flash_redirect(
        request,
        f"/staff/facilities/{facility.id}/schedule?date={day.isoformat()}",
        f"Visit {visit.reference} booked for {resident.full_name} with {visitor.legal_name}.",
    )
