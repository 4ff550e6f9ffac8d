"""Facilities, housing units, visiting hours, closures, kiosks and settings."""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from openvisit import audit
from openvisit.audit.service import AuditActor
from openvisit.auth import service as auth
from openvisit.auth.permissions import Grants, Permission
from openvisit.clock import Clock
from openvisit.config import Settings
from openvisit.errors import Code, Conflict, Forbidden, InvalidInput, NotFound
from openvisit.facilities import caps
from openvisit.facilities.models import (
    Closure,
    ClosureKind,
    Facility,
    FacilityKind,
    FacilitySettings,
    HousingUnit,
    Kiosk,
    KioskLocation,
    VisitingHours,
)
from openvisit.residents.models import Resident

KIOSK_SCOPE = "kiosk_device"


# --- access --------------------------------------------------------------------------


def access_facility(
    session: Session,
    staff: Grants,
    facility_id: int,
    permission: Permission = Permission.VIEW_FACILITY,
) -> Facility:
    """The facility, if this staff member works there and holds the permission.

    Another facility's id answers "not found" (never "forbidden"), so staff
    can't even learn which ids exist elsewhere.
    """
    facility = session.get(Facility, facility_id)
    if facility is None or not staff.works_at(facility_id):
        raise NotFound("We couldn't find that facility.")
    if not staff.can(facility_id, permission):
        raise Forbidden("Your role doesn't allow that at this facility.")
    return facility


def access_platform(staff: Grants) -> None:
    """Only provider admins create facilities."""
    if not staff.can(None, Permission.MANAGE_PLATFORM):
        raise Forbidden("Only provider administrators can add facilities.")


# --- facilities ----------------------------------------------------------------------


def check_time_zone(name: str) -> str:
    name = name.strip()
    try:
        valid = bool(name) and name in available_timezones() and ZoneInfo(name) is not None
    except (ZoneInfoNotFoundError, ValueError):
        valid = False
    if not valid:
        raise InvalidInput(
            "Choose a time zone from the IANA list, like America/New_York.",
            code=Code.INVALID_TIME_ZONE,
            fields={"timezone": "Enter a time zone like America/New_York"},
        )
    return name


def _check_facility_fields(
    name: str | None, kind: str | None, adp: int | None, phone: str | None
) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    if name is not None:
        name = " ".join(name.split())
        if not name or len(name) > 120:
            raise InvalidInput(
                "Enter the facility's name (at most 120 characters).",
                fields={"name": "Enter a name of at most 120 characters"},
            )
        clean["name"] = name
    if kind is not None:
        try:
            clean["kind"] = FacilityKind(kind)
        except ValueError:
            raise InvalidInput(
                "Choose prison or jail.", fields={"kind": "Choose prison or jail"}
            ) from None
    if adp is not None:
        if adp < 0 or adp > 1_000_000:
            raise InvalidInput(
                "The average daily population must be 0 or more.",
                fields={"average_daily_population": "Enter 0 or more"},
            )
        clean["average_daily_population"] = adp
    if phone is not None:
        phone = phone.strip()
        if len(phone) > 40:
            raise InvalidInput(
                "Enter a phone number of at most 40 characters.",
                fields={"phone": "Enter at most 40 characters"},
            )
        clean["phone"] = phone
    return clean


def _name_taken(session: Session, name: str, except_id: int | None = None) -> bool:
    query = select(func.count()).where(func.lower(Facility.name) == name.lower())
    if except_id is not None:
        query = query.where(Facility.id != except_id)
    return bool(session.scalar(query))


def create_facility(
    session: Session,
    clock: Clock,
    actor: AuditActor,
    *,
    name: str,
    timezone: str,
    kind: str,
    average_daily_population: int,
    phone: str = "",
) -> Facility:
    """A new facility with its settings row at the defaults."""
    clean = _check_facility_fields(name, kind, average_daily_population, phone)
    clean["timezone"] = check_time_zone(timezone)
    if _name_taken(session, clean["name"]):
        raise Conflict(
            "A facility with that name already exists.",
            code=Code.FACILITY_NAME_TAKEN,
            fields={"name": "This name is already used"},
        )
    now = clock.now()
    facility = Facility(created_at=now, **clean)
    session.add(facility)
    session.flush()
    session.add(FacilitySettings(facility_id=facility.id))
    session.flush()
    audit.service.record(
        session,
        tag="facility:created",
        actor=actor,
        at=now,
        facility_id=facility.id,
        subject=("facility", facility.id),
        data=_facility_data(facility),
    )
    return facility


def update_facility(
    session: Session,
    clock: Clock,
    actor: AuditActor,
    facility: Facility,
    *,
    name: str | None = None,
    timezone: str | None = None,
    kind: str | None = None,
    average_daily_population: int | None = None,
    phone: str | None = None,
) -> Facility:
    clean = _check_facility_fields(name, kind, average_daily_population, phone)
    if timezone is not None:
        clean["timezone"] = check_time_zone(timezone)
    if "name" in clean and _name_taken(session, clean["name"], except_id=facility.id):
        raise Conflict(
            "A facility with that name already exists.",
            code=Code.FACILITY_NAME_TAKEN,
            fields={"name": "This name is already used"},
        )
    before = _facility_data(facility)
    for key, value in clean.items():
        setattr(facility, key, value)
    session.flush()
    after = _facility_data(facility)
    if after != before:
        audit.service.record(
            session,
            tag="facility:updated",
            actor=actor,
            at=clock.now(),
            facility_id=facility.id,
            subject=("facility", facility.id),
            data={"before": before, "after": after},
        )
    return facility


def _facility_data(facility: Facility) -> dict[str, Any]:
    return {
        "name": facility.name,
        "timezone": facility.timezone,
        "kind": facility.kind.value,
        "average_daily_population": facility.average_daily_population,
        "phone": facility.phone,
    }


def list_facilities(session: Session, staff: Grants) -> list[Facility]:
    """The facilities this staff member works at (all of them for provider admins)."""
    query = select(Facility).order_by(Facility.name)
    ids = staff.facility_ids()
    if ids is not None:
        query = query.where(Facility.id.in_(ids))
    return list(session.scalars(query))


def list_public_facilities(session: Session) -> list[Facility]:
    return list(session.scalars(select(Facility).order_by(Facility.name)))


# --- settings ------------------------------------------------------------------------

# (minimum, maximum, message) for each whole-number setting.
_INT_RULES: dict[str, tuple[int, int, str]] = {
    "slot_step_minutes": (5, 120, "Enter a slot step from 5 to 120 minutes"),
    "min_notice_minutes": (0, 30 * 24 * 60, "Enter a notice from 0 to 43200 minutes (30 days)"),
    "booking_horizon_days": (1, 90, "Enter a booking horizon from 1 to 90 days"),
    "weekly_remote_visits": (0, 50, "Enter from 0 to 50 visits a week"),
    "weekly_onsite_visits": (0, 50, "Enter from 0 to 50 visits a week"),
    "weekly_privileged_visits": (0, 50, "Enter from 0 to 50 visits a week"),
    "approved_visitors_per_resident": (0, 50, "Enter from 0 to 50 approved visitors"),
    "visitors_per_visit": (1, 10, "Enter from 1 to 10 visitors per visit"),
    "join_window_minutes": (0, 60, "Enter a join window from 0 to 60 minutes"),
    "reconnect_grace_seconds": (15, 600, "Enter a reconnect grace from 15 to 600 seconds"),
    "recording_retention_days": (1, 3650, "Enter a retention from 1 to 3650 days"),
    "free_minutes_per_week": (0, 10080, "Enter from 0 to 10080 free minutes a week"),
}
_BOOL_SETTINGS = ("bookings_need_approval", "onsite_visits_free")
SETTING_NAMES = (
    "visit_lengths_minutes",
    *_INT_RULES,
    *_BOOL_SETTINGS,
    "remote_rate_cents_per_minute",
)
_MAX_RATE = Decimal("1000")


@dataclass(frozen=True)
class SettingsInput:
    """Every FacilitySettings column, as given (not yet checked)."""

    visit_lengths_minutes: list[int]
    slot_step_minutes: int
    min_notice_minutes: int
    booking_horizon_days: int
    weekly_remote_visits: int
    weekly_onsite_visits: int
    weekly_privileged_visits: int
    visitors_per_visit: int
    approved_visitors_per_resident: int
    join_window_minutes: int
    reconnect_grace_seconds: int
    bookings_need_approval: bool
    recording_retention_days: int
    free_minutes_per_week: int
    onsite_visits_free: bool
    remote_rate_cents_per_minute: Decimal


def facility_settings(session: Session, facility: Facility) -> FacilitySettings:
    row = session.get(FacilitySettings, facility.id)
    if row is None:  # a facility made before settings existed: give it the defaults
        row = FacilitySettings(facility_id=facility.id)
        session.add(row)
        session.flush()
    return row


def check_settings(values: SettingsInput) -> dict[str, Any]:
    """Every problem at once, as field -> message; the cleaned values if none."""
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {}
    lengths = values.visit_lengths_minutes
    if not 1 <= len(lengths) <= 6:
        errors["visit_lengths_minutes"] = "Offer from 1 to 6 visit lengths"
    elif len(set(lengths)) != len(lengths):
        errors["visit_lengths_minutes"] = "Offer each visit length once"
    elif any(not 5 <= n <= 240 for n in lengths):
        errors["visit_lengths_minutes"] = "Visit lengths must be from 5 to 240 minutes"
    else:
        clean["visit_lengths_minutes"] = sorted(lengths)
    for name, (low, high, message) in _INT_RULES.items():
        value = getattr(values, name)
        if not low <= value <= high:
            errors[name] = message
        else:
            clean[name] = value
    for name in _BOOL_SETTINGS:
        clean[name] = bool(getattr(values, name))
    rate = values.remote_rate_cents_per_minute
    if not rate.is_finite() or not 0 <= rate <= _MAX_RATE:
        errors["remote_rate_cents_per_minute"] = "Enter a rate from 0 to 1000 cents a minute"
    elif rate != rate.quantize(Decimal("0.01")):
        errors["remote_rate_cents_per_minute"] = "Enter a rate with at most 2 decimal places"
    else:
        clean["remote_rate_cents_per_minute"] = rate.quantize(Decimal("0.01"))
    if errors:
        raise InvalidInput(
            "Some settings are not valid.", code=Code.INVALID_SETTINGS, fields=errors
        )
    return clean


def settings_data(row: FacilitySettings) -> dict[str, Any]:
    data = {name: getattr(row, name) for name in SETTING_NAMES}
    data["visit_lengths_minutes"] = list(row.visit_lengths_minutes)
    data["remote_rate_cents_per_minute"] = str(
        Decimal(row.remote_rate_cents_per_minute).quantize(Decimal("0.01"))
    )
    return data


def update_settings(
    session: Session, clock: Clock, actor: AuditActor, facility: Facility, values: SettingsInput
) -> FacilitySettings:
    """Replace every setting at once; audited with the values before and after."""
    clean = check_settings(values)

    today = clock.now().astimezone(ZoneInfo(facility.timezone)).date()
    caps.check_rate(facility, clean["remote_rate_cents_per_minute"], today)
    row = facility_settings(session, facility)
    before = settings_data(row)
    for name, value in clean.items():
        setattr(row, name, value)
    session.flush()
    after = settings_data(row)
    changed = {k: {"before": before[k], "after": after[k]} for k in after if before[k] != after[k]}
    if changed:
        audit.service.record(
            session,
            tag="facility:settings_changed",
            actor=actor,
            at=clock.now(),
            facility_id=facility.id,
            subject=("facility", facility.id),
            data={"before": before, "after": after, "changed": sorted(changed)},
        )
    return row


# --- housing units and visiting hours ------------------------------------------------


@dataclass(frozen=True)
class HoursWindow:
    weekday: int
    start: str  # "HH:MM", facility-local wall clock
    end: str


def list_units(session: Session, facility: Facility) -> list[HousingUnit]:
    return list(
        session.scalars(
            select(HousingUnit)
            .where(HousingUnit.facility_id == facility.id)
            .options(selectinload(HousingUnit.hours))
            .order_by(HousingUnit.name)
        )
    )


def get_unit(session: Session, facility: Facility, unit_id: int) -> HousingUnit:
    """A unit of this facility; another facility's unit is "not found"."""
    unit = session.scalar(
        select(HousingUnit).where(HousingUnit.id == unit_id, HousingUnit.facility_id == facility.id)
    )
    if unit is None:
        raise NotFound("We couldn't find that housing unit.")
    return unit


def _unit_name(
    session: Session, facility: Facility, name: str, except_id: int | None = None
) -> str:
    name = " ".join(name.split())
    if not name or len(name) > 80:
        raise InvalidInput(
            "Enter the unit's name (at most 80 characters).",
            fields={"name": "Enter a name of at most 80 characters"},
        )
    query = select(func.count()).where(
        HousingUnit.facility_id == facility.id, func.lower(HousingUnit.name) == name.lower()
    )
    if except_id is not None:
        query = query.where(HousingUnit.id != except_id)
    if session.scalar(query):
        raise Conflict(
            f"There is already a unit called {name}.",
            code=Code.UNIT_NAME_TAKEN,
            fields={"name": "Another unit already has this name"},
        )
    return name


def create_unit(
    session: Session, clock: Clock, actor: AuditActor, facility: Facility, *, name: str
) -> HousingUnit:
    name = _unit_name(session, facility, name)
    now = clock.now()
    unit = HousingUnit(facility_id=facility.id, name=name, created_at=now)
    session.add(unit)
    session.flush()
    audit.service.record(
        session,
        tag="unit:created",
        actor=actor,
        at=now,
        facility_id=facility.id,
        subject=("unit", unit.id),
        data={"name": name},
    )
    return unit


def rename_unit(
    session: Session,
    clock: Clock,
    actor: AuditActor,
    facility: Facility,
    unit: HousingUnit,
    *,
    name: str,
) -> HousingUnit:
    name = _unit_name(session, facility, name, except_id=unit.id)
    before = unit.name
    unit.name = name
    session.flush()
    if before != name:
        audit.service.record(
            session,
            tag="unit:renamed",
            actor=actor,
            at=clock.now(),
            facility_id=facility.id,
            subject=("unit", unit.id),
            data={"before": before, "after": name},
        )
    return unit


def delete_unit(
    session: Session, clock: Clock, actor: AuditActor, facility: Facility, unit: HousingUnit
) -> None:
    """Delete an empty unit. Refused while residents, kiosks or closures refer to it."""
    residents = (
        session.scalar(
            select(func.count()).select_from(Resident).where(Resident.unit_id == unit.id)
        )
        or 0
    )
    kiosks = (
        session.scalar(select(func.count()).select_from(Kiosk).where(Kiosk.unit_id == unit.id)) or 0
    )
    closures = (
        session.scalar(select(func.count()).select_from(Closure).where(Closure.unit_id == unit.id))
        or 0
    )
    if residents or kiosks or closures:
        parts = []
        if residents:
            parts.append(f"{residents} resident{'s' if residents != 1 else ''}")
        if kiosks:
            parts.append(f"{kiosks} kiosk{'s' if kiosks != 1 else ''}")
        if closures:
            parts.append(f"{closures} lockdown or blackout record{'s' if closures != 1 else ''}")
        raise Conflict(
            f"{unit.name} can't be deleted: it still has {' and '.join(parts)}. "
            "Move them to another unit first.",
            code=Code.UNIT_IN_USE,
            residents=residents,
            kiosks=kiosks,
            closures=closures,
        )
    name, unit_id = unit.name, unit.id
    session.delete(unit)
    session.flush()
    audit.service.record(
        session,
        tag="unit:deleted",
        actor=actor,
        at=clock.now(),
        facility_id=facility.id,
        subject=("unit", unit_id),
        data={"name": name},
    )


MAX_WINDOWS = 70


def parse_hhmm(value: str) -> dt.time | None:
    value = value.strip()
    parts = value.split(":")
    if len(parts) != 2 or not all(p.isdigit() and len(p) == 2 for p in parts):
        return None
    hour, minute = int(parts[0]), int(parts[1])
    if hour > 23 or minute > 59:
        return None
    return dt.time(hour, minute)


def check_hours(windows: list[HoursWindow]) -> list[tuple[int, dt.time, dt.time]]:
    """Parse and check a week of windows; the field names are ``windows.<n>.<part>``."""
    if len(windows) > MAX_WINDOWS:
        raise InvalidInput(
            f"Give at most {MAX_WINDOWS} visiting windows.",
            fields={"windows": f"Give at most {MAX_WINDOWS} windows"},
        )
    parsed: list[tuple[int, dt.time, dt.time]] = []
    errors: dict[str, str] = {}
    for n, window in enumerate(windows):
        start, end = parse_hhmm(window.start), parse_hhmm(window.end)
        if not 0 <= window.weekday <= 6:
            errors[f"windows.{n}.weekday"] = "Choose a day of the week"
        if start is None:
            errors[f"windows.{n}.start"] = "Enter a start time like 09:00"
        if end is None:
            errors[f"windows.{n}.end"] = "Enter an end time like 17:30"
        if start is not None and end is not None:
            parsed.append((window.weekday, start, end))
    if errors:
        raise InvalidInput("Some visiting hours are not valid.", fields=errors)
    for n, (_day, start, end) in enumerate(parsed):
        if end <= start:
            raise InvalidInput(
                "Each window must end after it starts.",
                code=Code.HOURS_END_BEFORE_START,
                fields={f"windows.{n}.end": "Enter an end time after the start"},
            )
    ordered = sorted(range(len(parsed)), key=lambda i: (parsed[i][0], parsed[i][1]))
    for a, b in itertools.pairwise(ordered):
        if parsed[a][0] == parsed[b][0] and parsed[b][1] < parsed[a][2]:
            raise InvalidInput(
                "Two windows on the same day overlap.",
                code=Code.HOURS_OVERLAP,
                fields={f"windows.{b}.start": "This window overlaps another on the same day"},
            )
    return sorted(parsed)


def replace_hours(
    session: Session,
    clock: Clock,
    actor: AuditActor,
    facility: Facility,
    unit: HousingUnit,
    windows: list[HoursWindow],
) -> HousingUnit:
    """Replace the unit's weekly hours with ``windows``: all of them or, on error, none."""
    parsed = check_hours(windows)
    before = _hours_data(unit)
    unit.hours = [VisitingHours(weekday=d, start_time=s, end_time=e) for d, s, e in parsed]
    session.flush()
    audit.service.record(
        session,
        tag="hours:replaced",
        actor=actor,
        at=clock.now(),
        facility_id=facility.id,
        subject=("unit", unit.id),
        data={"before": before, "after": _hours_data(unit)},
    )
    return unit


def _hours_data(unit: HousingUnit) -> list[list[Any]]:
    return [
        [h.weekday, h.start_time.strftime("%H:%M"), h.end_time.strftime("%H:%M")]
        for h in unit.hours
    ]


# --- closures (blackouts and lockdowns) ----------------------------------------------


@dataclass(frozen=True)
class ClosureLists:
    current_and_upcoming: list[Closure]
    past: list[Closure]


def list_closures(
    session: Session, clock: Clock, facility: Facility, past_limit: int = 50
) -> ClosureLists:
    now = clock.now()
    base = select(Closure).where(Closure.facility_id == facility.id)
    active = base.where((Closure.ends_at.is_(None)) | (Closure.ends_at > now))
    past = base.where(Closure.ends_at <= now)
    return ClosureLists(
        list(session.scalars(active.order_by(Closure.starts_at, Closure.id))),
        list(
            session.scalars(
                past.order_by(Closure.ends_at.desc(), Closure.id.desc()).limit(past_limit)
            )
        ),
    )


def get_closure(session: Session, facility: Facility, closure_id: int) -> Closure:
    closure = session.scalar(
        select(Closure).where(Closure.id == closure_id, Closure.facility_id == facility.id)
    )
    if closure is None:
        raise NotFound("We couldn't find that lockdown or blackout.")
    return closure


def local_to_utc(day: str, time: str, tz: str, field: str) -> dt.datetime:
    """A facility-local date ("YYYY-MM-DD") and time ("HH:MM") as an aware UTC datetime."""
    try:
        date = dt.date.fromisoformat(day.strip())
    except ValueError:
        raise InvalidInput(
            "Enter a real date.", fields={f"{field}_date": "Enter a real date, like 2026-12-24"}
        ) from None
    clock_time = parse_hhmm(time)
    if clock_time is None:
        raise InvalidInput(
            "Enter a time like 14:30.", fields={f"{field}_time": "Enter a time like 14:30"}
        )
    zone = ZoneInfo(tz)
    local = dt.datetime.combine(date, clock_time, tzinfo=zone)
    utc = local.astimezone(dt.UTC)
    if utc.astimezone(zone).replace(tzinfo=None) != local.replace(tzinfo=None):
        raise InvalidInput(
            "That time doesn't exist on that day: the clocks change.",
            fields={
                f"{field}_time": "That time is skipped when the clocks go forward; choose another"
            },
        )
    return utc


def create_closure(
    session: Session,
    clock: Clock,
    actor: AuditActor,
    facility: Facility,
    *,
    kind: str,
    starts_at: dt.datetime,
    ends_at: dt.datetime | None,
    reason: str,
    unit_id: int | None = None,
    staff_id: int | None = None,
) -> Closure:
    """Record a blackout or lockdown and return it.

    The caller's transaction holds the new closure; whatever must follow from it
    (the visits it covers) is decided by whoever receives the returned closure.
    """
    try:
        closure_kind = ClosureKind(kind)
    except ValueError:
        raise InvalidInput(
            "Choose blackout or lockdown.", fields={"kind": "Choose blackout or lockdown"}
        ) from None
    reason = reason.strip()
    if not reason:
        raise InvalidInput("Enter the reason.", fields={"reason": "Enter the reason"})
    if len(reason) > 500:
        raise InvalidInput(
            "The reason can be at most 500 characters.",
            fields={"reason": "Enter at most 500 characters"},
        )
    if starts_at.tzinfo is None or (ends_at is not None and ends_at.tzinfo is None):
        raise InvalidInput(
            "Give times with their UTC offset.",
            code=Code.NAIVE_DATETIME,
            fields={"starts_at": "Include the UTC offset, like +00:00"},
        )
    starts_at = starts_at.astimezone(dt.UTC)
    if ends_at is None and closure_kind == ClosureKind.BLACKOUT:
        raise InvalidInput(
            "A blackout needs an end. Only a lockdown may be open-ended.",
            code=Code.CLOSURE_NEEDS_END,
            fields={"ends_at": "Enter when it ends"},
        )
    if ends_at is not None:
        ends_at = ends_at.astimezone(dt.UTC)
        if ends_at <= starts_at:
            raise InvalidInput(
                "The end must be after the start.",
                code=Code.CLOSURE_END_BEFORE_START,
                fields={"ends_at": "Enter an end after the start"},
            )
        if ends_at <= clock.now():
            raise InvalidInput(
                "That period is already over.",
                code=Code.CLOSURE_IN_PAST,
                fields={"ends_at": "Enter an end in the future"},
            )
    if unit_id is not None:
        unit = session.scalar(
            select(HousingUnit).where(
                HousingUnit.id == unit_id, HousingUnit.facility_id == facility.id
            )
        )
        if unit is None:
            raise NotFound(
                "We couldn't find that housing unit.",
                fields={"unit_id": "Choose a unit of this facility"},
            )
    now = clock.now()
    closure = Closure(
        facility_id=facility.id,
        unit_id=unit_id,
        kind=closure_kind,
        starts_at=starts_at,
        ends_at=ends_at,
        reason=reason,
        created_by_staff_id=staff_id,
        created_at=now,
    )
    session.add(closure)
    session.flush()
    audit.service.record(
        session,
        tag="closure:created",
        actor=actor,
        at=now,
        facility_id=facility.id,
        subject=("closure", closure.id),
        data=_closure_data(closure),
    )
    return closure


def lift_lockdown(
    session: Session, clock: Clock, actor: AuditActor, facility: Facility, closure: Closure
) -> Closure:
    """End a lockdown now."""
    now = clock.now()
    if closure.kind != ClosureKind.LOCKDOWN:
        raise Conflict(
            "Only a lockdown can be lifted; a blackout ends when planned.", code=Code.NOT_A_LOCKDOWN
        )
    if closure.lifted_at is not None or (closure.ends_at is not None and closure.ends_at <= now):
        raise Conflict("This lockdown has already ended.", code=Code.CLOSURE_NOT_ACTIVE)
    if closure.starts_at >= now:
        raise Conflict(
            "This lockdown hasn't started yet, so it can't be lifted.",
            code=Code.CLOSURE_NOT_STARTED,
        )
    before = _closure_data(closure)
    closure.lifted_at = now
    closure.ends_at = now
    session.flush()
    audit.service.record(
        session,
        tag="closure:lifted",
        actor=actor,
        at=now,
        facility_id=facility.id,
        subject=("closure", closure.id),
        data={"before": before, "after": _closure_data(closure)},
    )
    return closure


def _closure_data(closure: Closure) -> dict[str, Any]:
    return {
        "kind": closure.kind.value,
        "unit_id": closure.unit_id,
        "starts_at": closure.starts_at.isoformat(),
        "ends_at": closure.ends_at.isoformat() if closure.ends_at else None,
        "reason": closure.reason,
    }


# --- kiosks --------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedCredential:
    kiosk: Kiosk
    token: str  # shown once; only its digest is stored
    activation_url: str


def list_kiosks(session: Session, facility: Facility) -> list[Kiosk]:
    return list(
        session.scalars(select(Kiosk).where(Kiosk.facility_id == facility.id).order_by(Kiosk.name))
    )


def get_kiosk(session: Session, facility: Facility, kiosk_id: int) -> Kiosk:
    kiosk = session.scalar(
        select(Kiosk).where(Kiosk.id == kiosk_id, Kiosk.facility_id == facility.id)
    )
    if kiosk is None:
        raise NotFound("We couldn't find that kiosk.")
    return kiosk


def create_kiosk(
    session: Session,
    clock: Clock,
    actor: AuditActor,
    facility: Facility,
    *,
    name: str,
    location: str,
    unit_id: int | None,
) -> Kiosk:
    name = " ".join(name.split())
    if not name or len(name) > 80:
        raise InvalidInput(
            "Enter the kiosk's name (at most 80 characters).",
            fields={"name": "Enter a name of at most 80 characters"},
        )
    try:
        where = KioskLocation(location)
    except ValueError:
        raise InvalidInput(
            "Choose housing unit or lobby.", fields={"location": "Choose housing unit or lobby"}
        ) from None
    if where == KioskLocation.LOBBY and unit_id is not None:
        raise InvalidInput(
            "A lobby kiosk is not in a housing unit.",
            code=Code.LOBBY_KIOSK_UNIT,
            fields={"unit_id": "Leave the unit empty for a lobby kiosk"},
        )
    if where == KioskLocation.HOUSING:
        if unit_id is None:
            raise InvalidInput(
                "Choose the housing unit this kiosk is in.",
                code=Code.KIOSK_NEEDS_UNIT,
                fields={"unit_id": "Choose a unit"},
            )
        if (
            session.scalar(
                select(HousingUnit.id).where(
                    HousingUnit.id == unit_id, HousingUnit.facility_id == facility.id
                )
            )
            is None
        ):
            raise NotFound(
                "We couldn't find that housing unit.",
                fields={"unit_id": "Choose a unit of this facility"},
            )
    if session.scalar(
        select(func.count()).where(
            Kiosk.facility_id == facility.id, func.lower(Kiosk.name) == name.lower()
        )
    ):
        raise Conflict(
            f"There is already a kiosk called {name}.",
            code=Code.KIOSK_NAME_TAKEN,
            fields={"name": "Another kiosk already has this name"},
        )
    now = clock.now()
    kiosk = Kiosk(
        facility_id=facility.id, unit_id=unit_id, name=name, location=where, created_at=now
    )
    session.add(kiosk)
    session.flush()
    audit.service.record(
        session,
        tag="kiosk:created",
        actor=actor,
        at=now,
        facility_id=facility.id,
        subject=("kiosk", kiosk.id),
        data={"name": name, "location": where.value, "unit_id": unit_id},
    )
    return kiosk


def set_kiosk_service(
    session: Session,
    clock: Clock,
    actor: AuditActor,
    facility: Facility,
    kiosk: Kiosk,
    *,
    in_service: bool,
    reason: str = "",
) -> Kiosk:
    reason = reason.strip()
    if not in_service and not reason:
        raise InvalidInput(
            "Say why the kiosk is out of service.",
            fields={"reason": "Enter why it is out of service"},
        )
    if len(reason) > 300:
        raise InvalidInput(
            "The reason can be at most 300 characters.",
            fields={"reason": "Enter at most 300 characters"},
        )
    before = {"in_service": kiosk.in_service, "reason": kiosk.out_of_service_reason}
    kiosk.in_service = in_service
    kiosk.out_of_service_reason = "" if in_service else reason
    session.flush()
    audit.service.record(
        session,
        tag="kiosk:service_changed",
        actor=actor,
        at=clock.now(),
        facility_id=facility.id,
        subject=("kiosk", kiosk.id),
        data={
            "before": before,
            "after": {"in_service": kiosk.in_service, "reason": kiosk.out_of_service_reason},
            "note": reason,
        },
    )
    return kiosk


def issue_kiosk_credential(
    session: Session,
    settings: Settings,
    clock: Clock,
    actor: AuditActor,
    facility: Facility,
    kiosk: Kiosk,
) -> IssuedCredential:
    """A new device credential, replacing (and signing out) any earlier one."""
    now = clock.now()
    replaced = kiosk.credential_hash is not None
    token = auth.new_token()
    kiosk.credential_hash = auth.token_digest(token)
    kiosk.credential_issued_at = now
    auth.end_all_sessions(session, "kiosk", kiosk.id)
    session.flush()
    audit.service.record(
        session,
        tag="kiosk:credential_issued",
        actor=actor,
        at=now,
        facility_id=facility.id,
        subject=("kiosk", kiosk.id),
        data={"replaced": replaced},
    )
    return IssuedCredential(kiosk, token, f"{settings.base_url}/kiosk/activate?code={token}")


def revoke_kiosk_credential(
    session: Session, clock: Clock, actor: AuditActor, facility: Facility, kiosk: Kiosk
) -> Kiosk:
    """Forget the credential and sign the device out."""
    if kiosk.credential_hash is None:
        raise Conflict(
            "This kiosk has no device credential to revoke.", code=Code.KIOSK_HAS_NO_CREDENTIAL
        )
    kiosk.credential_hash = None
    kiosk.credential_issued_at = None
    auth.end_all_sessions(session, "kiosk", kiosk.id)
    session.flush()
    audit.service.record(
        session,
        tag="kiosk:credential_revoked",
        actor=actor,
        at=clock.now(),
        facility_id=facility.id,
        subject=("kiosk", kiosk.id),
    )
    return kiosk


@dataclass(frozen=True)
class KioskActivation:
    kiosk: Kiosk
    session: auth.NewSession


def activate_kiosk(
    session: Session, settings: Settings, clock: Clock, *, code: str, ip: str, user_agent: str = ""
) -> KioskActivation:
    """Exchange a device credential for a long-lived kiosk session. Throttled per address."""
    now = clock.now()
    auth.check_throttle(session, settings, scope=KIOSK_SCOPE, identifier=ip, ip=ip, now=now)
    code = "".join(code.split())
    kiosk = None
    if code:
        kiosk = session.scalar(
            select(Kiosk).where(Kiosk.credential_hash == auth.token_digest(code))
        )
    if kiosk is None:
        auth.note_attempt(
            session, scope=KIOSK_SCOPE, identifier=ip, ip=ip, now=now, succeeded=False
        )
        audit.service.record(
            session,
            tag="kiosk:activation_failed",
            actor=AuditActor("anonymous", None, "kiosk device", ip),
            at=now,
        )
        message = "That activation code isn't valid. Ask an administrator for a new one."
        raise auth.SignInFailed(message, fields={"code": message})
    auth.note_attempt(session, scope=KIOSK_SCOPE, identifier=ip, ip=ip, now=now, succeeded=True)
    new = auth.start_session(
        session,
        actor_type="kiosk",
        actor_id=kiosk.id,
        now=now,
        lifetime=dt.timedelta(days=settings.kiosk_session_days),
        ip=ip,
        user_agent=user_agent,
    )
    audit.service.record(
        session,
        tag="kiosk:activated",
        actor=AuditActor("kiosk", kiosk.id, f"kiosk#{kiosk.id}", ip),
        at=now,
        facility_id=kiosk.facility_id,
        subject=("kiosk", kiosk.id),
        data={"in_service": kiosk.in_service},
    )
    return KioskActivation(kiosk, new)
