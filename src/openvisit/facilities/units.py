"""Housing units and their weekly visiting hours."""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import InstrumentedAttribute, Session, selectinload

from openvisit.audit.service import AuditActor
from openvisit.clock import Clock
from openvisit.errors import Code, Conflict, InvalidInput
from openvisit.facilities.models import Closure, Facility, HousingUnit, Kiosk, VisitingHours
from openvisit.facilities.service import check_name, get_owned, record_event

MAX_WINDOWS = 70


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


def unit_names(session: Session, facility: Facility) -> dict[int, str]:
    """The facility's units, id -> name, by name."""
    rows = session.execute(
        select(HousingUnit.id, HousingUnit.name)
        .where(HousingUnit.facility_id == facility.id)
        .order_by(HousingUnit.name)
    )
    return {unit_id: name for unit_id, name in rows}


def hours_of(unit: HousingUnit) -> list[HoursWindow]:
    """The unit's weekly hours, in order, as they are shown and audited."""
    return [
        HoursWindow(h.weekday, h.start_time.strftime("%H:%M"), h.end_time.strftime("%H:%M"))
        for h in unit.hours
    ]


def get_unit(
    session: Session, facility: Facility, unit_id: int, *, field: str | None = None
) -> HousingUnit:
    """A unit of this facility; another facility's unit is "not found" (the message is
    put against ``field`` when the unit was chosen in a form)."""
    fields = {field: "Choose a unit of this facility"} if field else None
    return get_owned(
        session, HousingUnit, facility, unit_id, "We couldn't find that housing unit.", fields
    )


def _unit_name(
    session: Session, facility: Facility, name: str, except_id: int | None = None
) -> str:
    name = check_name(name, "unit", 80)
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
    record_event(session, "unit:created", actor, now, unit, {"name": name})
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
        record_event(
            session, "unit:renamed", actor, clock.now(), unit, {"before": before, "after": name}
        )
    return unit


def _count(session: Session, column: InstrumentedAttribute[int | None], unit: HousingUnit) -> int:
    return session.scalar(select(func.count()).where(column == unit.id)) or 0


def _some(count: int, what: str, plural: str) -> str:
    return f"{count} {what if count == 1 else plural}"


def delete_unit(
    session: Session,
    clock: Clock,
    actor: AuditActor,
    unit: HousingUnit,
    *,
    residents: int,
) -> None:
    """Delete an empty unit. Refused while residents, kiosks or closures refer to it.

    ``residents`` is how many residents live in the unit: residents count them
    (flows.housing.delete_unit), since facilities can't see residents.
    """
    kiosks = _count(session, Kiosk.unit_id, unit)
    closures = _count(session, Closure.unit_id, unit)
    if residents or kiosks or closures:
        parts = []
        if residents:
            parts.append(_some(residents, "resident", "residents"))
        if kiosks:
            parts.append(_some(kiosks, "kiosk", "kiosks"))
        if closures:
            parts.append(
                _some(closures, "lockdown or blackout record", "lockdown or blackout records")
            )
        raise Conflict(
            f"{unit.name} can't be deleted: it still has {' and '.join(parts)}. "
            "Move them to another unit first.",
            code=Code.UNIT_IN_USE,
            residents=residents,
            kiosks=kiosks,
            closures=closures,
        )
    name = unit.name
    session.delete(unit)
    session.flush()
    record_event(session, "unit:deleted", actor, clock.now(), unit, {"name": name})


def parse_hhmm(value: str) -> dt.time | None:
    value = value.strip()
    parts = value.split(":")
    if len(parts) != 2 or not all(p.isascii() and p.isdigit() and len(p) == 2 for p in parts):
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
    unit: HousingUnit,
    windows: list[HoursWindow],
) -> HousingUnit:
    """Replace the unit's weekly hours with ``windows``: all of them or, on error, none."""
    parsed = check_hours(windows)
    before = _hours_data(unit)
    unit.hours = [VisitingHours(weekday=d, start_time=s, end_time=e) for d, s, e in parsed]
    session.flush()
    record_event(
        session,
        "hours:replaced",
        actor,
        clock.now(),
        unit,
        {"before": before, "after": _hours_data(unit)},
    )
    return unit


def _hours_data(unit: HousingUnit) -> list[list[Any]]:
    return [list(asdict(w).values()) for w in hours_of(unit)]
