"""What each staff role may do. The one table every staff check reads."""

from __future__ import annotations

import enum
from typing import Protocol


class StaffRoleName(enum.StrEnum):
    OFFICER = "officer"
    SCHEDULER = "scheduler"
    INVESTIGATOR = "investigator"
    FACILITY_ADMIN = "facility_admin"
    PROVIDER_ADMIN = "provider_admin"


Role = StaffRoleName


class Permission(enum.StrEnum):
    VIEW_FACILITY = "view_facility"
    MANAGE_FACILITY = "manage_facility"  # settings, units, hours, kiosks
    MANAGE_CLOSURES = "manage_closures"  # blackouts, lockdowns
    VIEW_RESIDENTS = "view_residents"
    MANAGE_RESIDENTS = "manage_residents"  # create, edit, import, custody, restrictions
    REVIEW_VISITORS = "review_visitors"  # identity, credentials, approvals, blocks
    MANAGE_VISITS = "manage_visits"  # book, cancel, approve bookings on a family's behalf
    MONITOR_VISITS = "monitor_visits"  # watch live visits, send warnings, terminate
    VIEW_AUDIT = "view_audit"
    VIEW_BILLING = "view_billing"  # money trails, revenue, refunds
    MANAGE_STAFF = "manage_staff"
    MANAGE_PLATFORM = "manage_platform"  # create facilities


_ALL_STAFF = {Permission.VIEW_FACILITY, Permission.VIEW_RESIDENTS}

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.OFFICER: frozenset(_ALL_STAFF | {Permission.MANAGE_CLOSURES, Permission.MONITOR_VISITS}),
    Role.SCHEDULER: frozenset(
        _ALL_STAFF
        | {
            Permission.MANAGE_CLOSURES,
            Permission.MANAGE_RESIDENTS,
            Permission.REVIEW_VISITORS,
            Permission.MANAGE_VISITS,
            Permission.VIEW_BILLING,
        }
    ),
    Role.INVESTIGATOR: frozenset(_ALL_STAFF | {Permission.VIEW_AUDIT, Permission.MONITOR_VISITS}),
    Role.FACILITY_ADMIN: frozenset(
        _ALL_STAFF
        | {
            Permission.MANAGE_FACILITY,
            Permission.MANAGE_CLOSURES,
            Permission.MANAGE_RESIDENTS,
            Permission.REVIEW_VISITORS,
            Permission.MANAGE_VISITS,
            Permission.VIEW_AUDIT,
            Permission.MONITOR_VISITS,
            Permission.VIEW_BILLING,
            Permission.MANAGE_STAFF,
        }
    ),
    Role.PROVIDER_ADMIN: frozenset(Permission),
}


class Grants(Protocol):
    """What a staff member may do where: all that facility access needs to know.

    The signed-in staff context (people.context.StaffContext) is one; services
    below people (facilities) authorize against this shape, not that class.
    """

    def works_at(self, facility_id: int) -> bool: ...

    def can(self, facility_id: int | None, permission: Permission) -> bool: ...

    def facility_ids(self) -> list[int] | None: ...
