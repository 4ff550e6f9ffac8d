"""Imports every domain's tables so that Base.metadata knows them all."""

from openvisit.approvals.models import Approval, Block
from openvisit.audit.models import AuditEvent
from openvisit.auth.models import AccountToken, LoginAttempt, UserSession
from openvisit.billing.models import (
    BillingSettlement,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
)
from openvisit.facilities.models import (
    Closure,
    Facility,
    FacilitySettings,
    HousingUnit,
    Kiosk,
    VisitingHours,
)
from openvisit.notifications.models import Notification
from openvisit.people.models import (
    IdentitySubmission,
    ProfessionalCredential,
    StaffMember,
    StaffRole,
    Visitor,
)
from openvisit.residents.models import Resident
from openvisit.visits.models import Visit, VisitTransition

__all__ = [
    "AccountToken",
    "Approval",
    "AuditEvent",
    "BillingSettlement",
    "Block",
    "Closure",
    "Facility",
    "FacilitySettings",
    "HousingUnit",
    "IdentitySubmission",
    "Kiosk",
    "LedgerAccount",
    "LedgerEntry",
    "LedgerTransaction",
    "LoginAttempt",
    "Notification",
    "ProfessionalCredential",
    "Resident",
    "StaffMember",
    "StaffRole",
    "UserSession",
    "Visit",
    "VisitTransition",
    "VisitingHours",
    "Visitor",
]
