"""Who is asking: the signed-in visitor, staff member or kiosk, as routes see them."""

from __future__ import annotations

from dataclasses import dataclass, field

from openvisit.audit.service import AuditActor
from openvisit.auth.models import UserSession
from openvisit.auth.permissions import ROLE_PERMISSIONS, Permission, StaffRoleName
from openvisit.people.models import StaffMember, Visitor


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
