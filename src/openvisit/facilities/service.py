"""Facilities: who may reach one (``access_facility``), creating, editing and listing them.

Settings, housing units and hours, closures and kiosks each have a module of
their own beside this one.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from openvisit import audit
from openvisit.audit.service import AuditActor
from openvisit.auth.permissions import Grants, Permission
from openvisit.clock import Clock
from openvisit.errors import Code, Conflict, Forbidden, InvalidInput, NotFound
from openvisit.facilities.models import (
    Closure,
    Facility,
    FacilityKind,
    FacilitySettings,
    HousingUnit,
    Kiosk,
)

# What an audit event is about: the facility itself or one of its things.
Subject = Facility | HousingUnit | Closure | Kiosk
_SUBJECT_TYPES: dict[type[Subject], str] = {
    Facility: "facility",
    HousingUnit: "unit",
    Closure: "closure",
    Kiosk: "kiosk",
}


def record_event(
    session: Session,
    tag: str,
    actor: AuditActor,
    at: dt.datetime,
    about: Subject,
    data: dict[str, Any] | None = None,
) -> None:
    """Audit something that happened to a facility or one of its things, in the caller's
    transaction."""
    facility_id = about.id if isinstance(about, Facility) else about.facility_id
    audit.service.record(
        session,
        tag=tag,
        actor=actor,
        at=at,
        facility_id=facility_id,
        subject=(_SUBJECT_TYPES[type(about)], about.id),
        data=data,
    )


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


Owned = TypeVar("Owned", HousingUnit, Closure, Kiosk)


def get_owned(
    session: Session,
    model: type[Owned],
    facility: Facility,
    row_id: int,
    message: str,
    fields: dict[str, str] | None = None,
) -> Owned:
    """One of the facility's units, closures or kiosks; another facility's is "not found"."""
    row = session.get(model, row_id)
    if row is None or row.facility_id != facility.id:
        raise NotFound(message, fields=fields)
    return row


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


def check_name(value: str, what: str, limit: int) -> str:
    """A facility's, unit's or kiosk's name: spaces collapsed, 1 to ``limit`` characters."""
    name = " ".join(value.split())
    if not name or len(name) > limit:
        raise InvalidInput(
            f"Enter the {what}'s name (at most {limit} characters).",
            fields={"name": f"Enter a name of at most {limit} characters"},
        )
    return name


def _check_facility_fields(
    name: str | None, kind: str | None, adp: int | None, phone: str | None
) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    if name is not None:
        clean["name"] = check_name(name, "facility", 120)
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


def _check_name_free(session: Session, name: str, except_id: int | None = None) -> None:
    query = select(func.count()).where(func.lower(Facility.name) == name.lower())
    if except_id is not None:
        query = query.where(Facility.id != except_id)
    if session.scalar(query):
        raise Conflict(
            "A facility with that name already exists.",
            code=Code.FACILITY_NAME_TAKEN,
            fields={"name": "This name is already used"},
        )


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
    _check_name_free(session, clean["name"])
    now = clock.now()
    facility = Facility(created_at=now, **clean)
    session.add(facility)
    session.flush()
    session.add(FacilitySettings(facility_id=facility.id))
    session.flush()
    record_event(session, "facility:created", actor, now, facility, _facility_data(facility))
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
    if "name" in clean:
        _check_name_free(session, clean["name"], except_id=facility.id)
    before = _facility_data(facility)
    for key, value in clean.items():
        setattr(facility, key, value)
    session.flush()
    after = _facility_data(facility)
    if after != before:
        record_event(
            session,
            "facility:updated",
            actor,
            clock.now(),
            facility,
            {"before": before, "after": after},
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
