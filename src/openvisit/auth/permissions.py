"""What each staff role may do. The one table every staff check reads."""

from __future__ import annotations

import enum

from openvisit.people.models import StaffRoleName as Role


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
