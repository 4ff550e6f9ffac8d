"""Residents: records, PINs, custody and visitation restrictions.

Signing in at a kiosk is in residents.kiosk; importing a roster in residents.roster.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from openvisit import audit, bounds
from openvisit.audit.service import AuditActor
from openvisit.auth import endings
from openvisit.auth import service as auth
from openvisit.auth.models import UserSession
from openvisit.clock import Clock
from openvisit.errors import Code, Conflict, InvalidInput, NotFound
from openvisit.facilities import units
from openvisit.facilities.models import Facility
from openvisit.residents.models import CustodyStatus, Resident
from openvisit.residents.pins import normalize_pin, pin_problem

PAGE_SIZE = 50
# The throttling scope of residents' PIN attempts (auth.service, the throttling rule).
RESIDENT_SCOPE = "resident"
BOOKING_NUMBER = re.compile(r"^[A-Z0-9-]{1,40}$")
LANGUAGE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})?$")
NAME_MAX = 100
REASON_MAX = 500
# Fields a staff member may set on a resident, in the order they are shown.
EDITABLE = (
    "booking_number",
    "first_name",
    "last_name",
    "date_of_birth",
    "unit_id",
    "preferred_language",
)


class BookingNumberTaken(Conflict):
    code = Code.BOOKING_NUMBER_TAKEN
    message = "Another resident at this facility already has that booking number."


def record_event(
    session: Session,
    tag: str,
    actor: AuditActor,
    at: dt.datetime,
    resident: Resident,
    data: dict[str, Any] | None = None,
) -> None:
    """Audit something that happened to a resident, in the caller's transaction."""
    audit.service.record(
        session,
        tag=tag,
        actor=actor,
        at=at,
        facility_id=resident.facility_id,
        subject=("resident", resident.id),
        data=data,
    )


# --- looking residents up ------------------------------------------------------------


def access_resident(session: Session, facility: Facility, resident_id: int) -> Resident:
    """One of the (already authorized) facility's residents; a resident elsewhere is
    "not found"."""
    resident = session.get(Resident, resident_id)
    if resident is None or resident.facility_id != facility.id:
        raise NotFound("We couldn't find that resident.")
    return resident


def count_in_unit(session: Session, unit_id: int) -> int:
    """How many residents live in a housing unit, whatever their custody status."""
    return (
        session.scalar(
            select(func.count()).select_from(Resident).where(Resident.unit_id == unit_id)
        )
        or 0
    )


@dataclass(frozen=True)
class ResidentPage:
    items: list[Resident]
    total: int
    page: int
    pages: int
    query: str
    status: CustodyStatus | None


def list_residents(
    session: Session,
    facility_id: int,
    *,
    query: str = "",
    status: CustodyStatus | None = None,
    page: int = 1,
) -> ResidentPage:
    """One page (50) of a facility's residents, by last name; search matches booking
    number or name, ignoring case."""
    where: list[Any] = [Resident.facility_id == facility_id]
    query = " ".join(query.split())
    if query:
        needle = query.lower()
        full_name = func.lower(Resident.first_name + " " + Resident.last_name)
        where.append(
            or_(
                func.lower(Resident.booking_number).contains(needle, autoescape=True),
                full_name.contains(needle, autoescape=True),
                func.lower(Resident.last_name + " " + Resident.first_name).contains(
                    needle, autoescape=True
                ),
            )
        )
    if status is not None:
        where.append(Resident.custody_status == status)
    total = session.scalar(select(func.count()).select_from(Resident).where(*where)) or 0
    pages = max(1, math.ceil(total / PAGE_SIZE))
    page = min(max(1, page), pages)
    items = list(
        session.scalars(
            select(Resident)
            .where(*where)
            .order_by(Resident.last_name, Resident.first_name, Resident.id)
            .offset((page - 1) * PAGE_SIZE)
            .limit(PAGE_SIZE)
        )
    )
    return ResidentPage(items, total, page, pages, query, status)


def count_residents(session: Session, facility_id: int) -> int:
    return (
        session.scalar(
            select(func.count()).select_from(Resident).where(Resident.facility_id == facility_id)
        )
        or 0
    )


# --- checking input ------------------------------------------------------------------


def normalize_booking_number(value: str) -> str:
    return "".join(value.split()).upper()


def check_booking_number(value: str) -> str | None:
    """The problem with a (normalized) booking number, or None."""
    if not value:
        return "Enter a booking number"
    if len(value) > 40:
        return "Booking number must be 40 characters or fewer"
    if not BOOKING_NUMBER.match(value):
        return "Booking number can only contain letters, numbers and dashes"
    return None


def check_name(value: str, label: str) -> str | None:
    if not value:
        return f"Enter a {label}"
    if len(value) > NAME_MAX:
        return f"{label.capitalize()} must be {NAME_MAX} characters or fewer"
    return None


def parse_date_of_birth(value: str, today: dt.date) -> tuple[dt.date | None, str | None]:
    value = value.strip()
    if not value:
        return None, "Enter a date of birth"
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return None, "Date of birth must be written like 1990-01-27 (year-month-day)"
    try:
        born = bounds.parse_date(value)
    except ValueError:
        return None, "Date of birth must be a real date"
    if born >= today:
        return None, "Date of birth must be in the past"
    if born.year < 1900:
        return None, "Date of birth must be after 1900"
    return born, None


def _clean(
    session: Session,
    facility: Facility,
    today: dt.date,
    *,
    booking_number: str,
    first_name: str,
    last_name: str,
    date_of_birth: str | dt.date,
    unit_id: int | None,
    preferred_language: str,
) -> dict[str, Any]:
    """Check every field at once: one error per field, all reported together."""
    errors: dict[str, str] = {}
    values: dict[str, Any] = {
        "booking_number": normalize_booking_number(booking_number),
        "first_name": " ".join(first_name.split()),
        "last_name": " ".join(last_name.split()),
        "preferred_language": preferred_language.strip().lower() or "en",
    }
    if problem := check_booking_number(values["booking_number"]):
        errors["booking_number"] = problem
    if problem := check_name(values["first_name"], "first name"):
        errors["first_name"] = problem
    if problem := check_name(values["last_name"], "last name"):
        errors["last_name"] = problem
    if isinstance(date_of_birth, dt.date):
        values["date_of_birth"] = date_of_birth
    else:
        values["date_of_birth"], problem = parse_date_of_birth(date_of_birth, today)
        if problem:
            errors["date_of_birth"] = problem
    if unit_id is None or unit_id not in units.unit_names(session, facility):
        errors["unit_id"] = "Choose a housing unit of this facility"
    values["unit_id"] = unit_id
    if not LANGUAGE.match(values["preferred_language"]):
        errors["preferred_language"] = "Enter a language code like en, es or zh-hant"
    if errors:
        raise InvalidInput(next(iter(errors.values())) + ".", fields=errors)
    return values


def _check_unique(
    session: Session, facility_id: int, booking_number: str, resident_id: int | None = None
) -> None:
    query = select(Resident.id).where(
        Resident.facility_id == facility_id, Resident.booking_number == booking_number
    )
    if resident_id is not None:
        query = query.where(Resident.id != resident_id)
    if session.scalar(query) is not None:
        raise BookingNumberTaken(
            fields={"booking_number": "Another resident already has this booking number"}
        )


# --- staff actions -------------------------------------------------------------------


def create_resident(
    session: Session,
    clock: Clock,
    actor: AuditActor,
    facility: Facility,
    *,
    booking_number: str,
    first_name: str,
    last_name: str,
    date_of_birth: str,
    unit_id: int | None,
    preferred_language: str = "en",
) -> Resident:
    now = clock.now()
    today = now.astimezone(ZoneInfo(facility.timezone)).date()
    values = _clean(
        session,
        facility,
        today,
        booking_number=booking_number,
        first_name=first_name,
        last_name=last_name,
        date_of_birth=date_of_birth,
        unit_id=unit_id,
        preferred_language=preferred_language,
    )
    _check_unique(session, facility.id, values["booking_number"])
    resident = Resident(
        facility_id=facility.id,
        custody_status=CustodyStatus.IN_CUSTODY,
        restriction_reason="",
        created_at=now,
        updated_at=now,
        **values,
    )
    session.add(resident)
    session.flush()
    record_event(
        session,
        "resident:created",
        actor,
        now,
        resident,
        {"booking_number": resident.booking_number},
    )
    return resident


def update_resident(
    session: Session,
    clock: Clock,
    actor: AuditActor,
    facility: Facility,
    resident: Resident,
    **changes: Any,
) -> list[str]:
    """Change some of a resident's details (None leaves a field as it is).

    Returns the names of the fields that changed; no change, no audit event.
    """
    now = clock.now()
    today = now.astimezone(ZoneInfo(facility.timezone)).date()
    current = {name: getattr(resident, name) for name in EDITABLE}
    given = {
        name: value for name, value in changes.items() if name in EDITABLE and value is not None
    }
    values = _clean(session, facility, today, **{**current, **given})
    changed = [name for name in EDITABLE if values[name] != current[name]]
    if not changed:
        return []
    if "booking_number" in changed:
        _check_unique(session, facility.id, values["booking_number"], resident.id)
    for name in changed:
        setattr(resident, name, values[name])
    resident.updated_at = now
    session.flush()
    record_event(session, "resident:updated", actor, now, resident, {"changed": changed})
    return changed


def set_pin(
    session: Session, clock: Clock, actor: AuditActor, resident: Resident, pin: str
) -> None:
    """Set the resident's kiosk PIN (residents.pins: 6 to 12 digits, not guessable; spaces
    ignored), stored hashed. A new PIN also ends the backoff of earlier wrong ones."""
    digits = normalize_pin(pin)
    problem = pin_problem(
        digits, booking_number=resident.booking_number, date_of_birth=resident.date_of_birth
    )
    if problem is not None:
        raise InvalidInput(problem, code=Code.PIN_INVALID, fields={"pin": problem})
    now = clock.now()
    resident.pin_hash = auth.hash_secret(digits)
    resident.updated_at = now
    auth.clear_failures(
        session,
        scope=RESIDENT_SCOPE,
        identifier=pin_account(resident.facility_id, resident.booking_number),
    )
    session.flush()
    record_event(session, "resident:pin_set", actor, now, resident)


def pin_account(facility_id: int, booking_number: str) -> str:
    """The account a PIN attempt is throttled under: the booking number typed at a kiosk
    of this facility (whether or not a resident has it)."""
    return f"{facility_id}:{booking_number[:40]}"


def _reason(value: str, field: str = "reason") -> str:
    reason = " ".join(value.split())
    if not reason:
        raise InvalidInput(
            "Enter a reason.", code=Code.REASON_REQUIRED, fields={field: "Enter a reason"}
        )
    if len(reason) > REASON_MAX:
        raise InvalidInput(
            f"The reason must be {REASON_MAX} characters or fewer.",
            fields={field: f"Use {REASON_MAX} characters or fewer"},
        )
    return reason


def change_custody_status(
    session: Session,
    clock: Clock,
    actor: AuditActor,
    resident: Resident,
    status: CustodyStatus,
    reason: str,
) -> None:
    """Record a release, a transfer or a return to custody, and sign a resident who
    leaves custody out of every kiosk. Callers go through flows.custody, which also
    cancels the visits that follow the resident out."""
    reason = _reason(reason)
    if resident.custody_status == status:
        label = status.value.replace("_", " ")
        raise Conflict(
            f"The resident's custody status is already {label}.",
            code=Code.CUSTODY_UNCHANGED,
            fields={"status": "Choose a different status"},
        )
    now = clock.now()
    previous = resident.custody_status
    resident.custody_status = status
    resident.updated_at = now
    if status != CustodyStatus.IN_CUSTODY:
        _sign_out_everywhere(session, resident.id)
    session.flush()
    record_event(
        session,
        "resident:custody_changed",
        actor,
        now,
        resident,
        {"from": previous.value, "to": status.value, "reason": reason},
    )


def _sign_out_everywhere(session: Session, resident_id: int) -> None:
    """Off every kiosk; the sockets the resident holds there close once this commits."""
    endings.note(session, "resident", resident_id)
    session.execute(
        update(UserSession)
        .where(UserSession.resident_id == resident_id)
        .values(resident_id=None, resident_signed_in_at=None)
        .execution_options(synchronize_session="fetch")
    )


def end_of_local_day(facility: Facility, value: str) -> dt.datetime:
    """The end of a facility-local date given as YYYY-MM-DD, as an aware UTC datetime."""
    try:
        day = bounds.parse_date(value)
    except ValueError:
        raise InvalidInput(
            "Enter the last day of the restriction as a real date.",
            fields={"until": "Enter a real date, like 2027-01-31"},
        ) from None
    start_of_next = dt.datetime.combine(
        day + dt.timedelta(days=1), dt.time(0), tzinfo=ZoneInfo(facility.timezone)
    )
    return start_of_next.astimezone(dt.UTC)


def restrict_visits(
    session: Session,
    clock: Clock,
    actor: AuditActor,
    resident: Resident,
    until: dt.datetime,
    reason: str,
) -> None:
    """Bar the resident from visits until a future time, for a stated reason."""
    now = clock.now()
    if until.tzinfo is None:
        raise InvalidInput(
            "Give the end of the restriction with its time zone offset.",
            fields={"until": "Include a time zone offset"},
        )
    if until <= now:
        raise InvalidInput(
            "The restriction must end in the future.",
            code=Code.RESTRICTION_IN_PAST,
            fields={"until": "Choose a day in the future"},
        )
    reason = _reason(reason)
    resident.restricted_until = until.astimezone(dt.UTC)
    resident.restriction_reason = reason
    resident.updated_at = now
    session.flush()
    record_event(
        session,
        "resident:restricted",
        actor,
        now,
        resident,
        {"until": resident.restricted_until.isoformat(), "reason": reason},
    )


def lift_restriction(session: Session, clock: Clock, actor: AuditActor, resident: Resident) -> None:
    now = clock.now()
    if not is_restricted(resident, now):
        raise Conflict("This resident has no restriction to lift.", code=Code.NOT_RESTRICTED)
    resident.restricted_until = None
    resident.restriction_reason = ""
    resident.updated_at = now
    session.flush()
    record_event(session, "resident:restriction_lifted", actor, now, resident)


def is_restricted(resident: Resident, now: dt.datetime) -> bool:
    return resident.restricted_until is not None and resident.restricted_until > now
