"""Who is asking: the signed-in visitor, staff member or kiosk, as routes see them,
and how a session token becomes one (``*_signed_in``): for the HTTP dependencies
(openvisit.deps) and the signaling socket alike."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from openvisit.audit.service import AuditActor
from openvisit.auth import service as auth
from openvisit.auth.models import UserSession
from openvisit.auth.permissions import ROLE_PERMISSIONS, Permission, StaffRoleName
from openvisit.facilities.models import Kiosk, KioskLocation
from openvisit.people.models import StaffMember, StaffRole, Visitor

# How often a session's last_seen_at is refreshed (it costs a write).
_TOUCH_EVERY = dt.timedelta(minutes=5)

C = TypeVar("C")


@dataclass
class VisitorContext:
    visitor: Visitor
    session: UserSession
    ip: str

    @property
    def actor(self) -> AuditActor:
        return AuditActor("visitor", self.visitor.id, self.visitor.email, self.ip)


@dataclass
class StaffContext:
    member: StaffMember
    session: UserSession
    ip: str
    roles: dict[int | None, set[StaffRoleName]] = field(default_factory=dict)

    @property
    def actor(self) -> AuditActor:
        return AuditActor("staff", self.member.id, self.member.email, self.ip)

    @property
    def is_provider_admin(self) -> bool:
        return StaffRoleName.PROVIDER_ADMIN in self.roles.get(None, set())

    def facility_ids(self) -> list[int] | None:
        """The facilities this member works at; None means all (provider admin)."""
        if self.is_provider_admin:
            return None
        return sorted(fid for fid in self.roles if fid is not None)

    def works_at(self, facility_id: int) -> bool:
        return self.is_provider_admin or facility_id in self.roles

    def can(self, facility_id: int | None, permission: Permission) -> bool:
        held = set(self.roles.get(None, set()))
        if facility_id is not None:
            held |= self.roles.get(facility_id, set())
        return any(permission in ROLE_PERMISSIONS[role] for role in held)


@dataclass
class KioskContext:
    """A kiosk device, and the resident signed in on it if any."""

    kiosk_id: int
    facility_id: int
    session: UserSession
    ip: str
    resident_id: int | None = None

    @property
    def actor(self) -> AuditActor:
        if self.resident_id is not None:
            return AuditActor("resident", self.resident_id, f"resident#{self.resident_id}", self.ip)
        return AuditActor("kiosk", self.kiosk_id, f"kiosk#{self.kiosk_id}", self.ip)


def _signed_in(
    session: Session,
    token: str | None,
    now: dt.datetime,
    actor_type: str,
    build: Callable[[UserSession], C | None],
) -> C | None:
    """``build(row)`` for the live session of ``token`` if it is an ``actor_type``'s (a
    person's only once their second factor is done; a kiosk has none); the session is
    marked seen when it builds."""
    row = auth.find_session(session, token, now)
    if row is None or row.actor_type != actor_type:
        return None
    if actor_type != "kiosk" and row.second_factor_pending:
        return None
    ctx = build(row)
    if ctx is not None and now - row.last_seen_at > _TOUCH_EVERY:
        row.last_seen_at = now
    return ctx


def visitor_signed_in(
    session: Session, token: str | None, now: dt.datetime, ip: str
) -> VisitorContext | None:
    """The visitor whose session cookie is ``token``; None if it is not one (any more)."""

    def build(row: UserSession) -> VisitorContext | None:
        visitor = session.get(Visitor, row.actor_id)
        if visitor is None or visitor.closed_at is not None:
            return None
        return VisitorContext(visitor=visitor, session=row, ip=ip)

    return _signed_in(session, token, now, "visitor", build)


def load_staff(session: Session, row: UserSession, ip: str) -> StaffContext | None:
    """The active staff member of ``row``, with their roles by facility."""
    member = session.get(StaffMember, row.actor_id)
    if member is None or not member.is_active:
        return None
    roles: dict[int | None, set[StaffRoleName]] = {}
    for role in session.scalars(select(StaffRole).where(StaffRole.staff_id == member.id)):
        roles.setdefault(role.facility_id, set()).add(role.role)
    return StaffContext(member=member, session=row, ip=ip, roles=roles)


def staff_signed_in(
    session: Session, token: str | None, now: dt.datetime, ip: str
) -> StaffContext | None:
    """The active staff member whose session cookie is ``token``."""
    return _signed_in(session, token, now, "staff", lambda row: load_staff(session, row, ip))


def kiosk_signed_in(
    session: Session, token: str | None, now: dt.datetime, ip: str
) -> KioskContext | None:
    """The activated kiosk whose device cookie is ``token``, and its signed-in resident."""

    def build(row: UserSession) -> KioskContext | None:
        kiosk = session.get(Kiosk, row.actor_id)
        if kiosk is None or kiosk.credential_hash is None:
            return None
        # Residents sign in only at housing kiosks; one left signed in at a lobby terminal
        # (from before that rule) is not.
        resident_id = row.resident_id if kiosk.location == KioskLocation.HOUSING else None
        return KioskContext(kiosk.id, kiosk.facility_id, row, ip, resident_id)

    return _signed_in(session, token, now, "kiosk", build)
