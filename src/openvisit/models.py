"""Imports every domain's tables so that Base.metadata knows them all."""

from openvisit.approvals.models import Approval, Block
from openvisit.audit.models import AuditEvent
from openvisit.auth.models import AccountToken, LoginAttempt, UserSession
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
    "Block",
    "Closure",
    "Facility",
    "FacilitySettings",
    "HousingUnit",
    "IdentitySubmission",
    "Kiosk",
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
