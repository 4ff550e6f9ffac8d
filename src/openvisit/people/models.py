from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import Boolean, Date, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from openvisit.auth.models import OneUseToken
from openvisit.auth.permissions import StaffRoleName
from openvisit.db import Base, enum_column, intpk


class IdentityStatus(enum.StrEnum):
    UNVERIFIED = "unverified"
    PENDING = "pending"
    VERIFIED = "verified"
    REJECTED = "rejected"


class ReviewStatus(enum.StrEnum):
    PENDING = "pending"
    VERIFIED = "verified"
    REJECTED = "rejected"


class ProfessionKind(enum.StrEnum):
    ATTORNEY = "attorney"
    CLERGY = "clergy"


class Visitor(Base):
    __tablename__ = "visitors"

    id: Mapped[intpk]
    email: Mapped[str] = mapped_column(String(254), unique=True)  # stored lower-cased
    password_hash: Mapped[str] = mapped_column(String(200))
    legal_name: Mapped[str] = mapped_column(String(200))
    date_of_birth: Mapped[dt.date] = mapped_column(Date)
    phone: Mapped[str] = mapped_column(String(40), default="")
    email_verified_at: Mapped[dt.datetime | None]
    identity_status: Mapped[IdentityStatus] = enum_column(
        IdentityStatus, default=IdentityStatus.UNVERIFIED
    )
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    totp_enabled_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime]
    # Set when the visitor closed the account (flows.account_closure.close_account): it can't
    # sign in again; its history stays, as the ledger and the audit log need it.
    closed_at: Mapped[dt.datetime | None]


class Reviewed:
    """What staff of one facility check for a visitor, and their decision: the columns an
    identity submission and a professional credential share (people.reviews decides them)."""

    id: Mapped[intpk]
    visitor_id: Mapped[int] = mapped_column(ForeignKey("visitors.id"), index=True)
    facility_id: Mapped[int] = mapped_column(ForeignKey("facilities.id"), index=True)
    status: Mapped[ReviewStatus] = enum_column(ReviewStatus, default=ReviewStatus.PENDING)
    reason: Mapped[str] = mapped_column(String(500), default="")
    submitted_at: Mapped[dt.datetime]
    reviewed_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_members.id"))
    reviewed_at: Mapped[dt.datetime | None]


class IdentitySubmission(Reviewed, Base):
    """A photo ID and a selfie, reviewed by staff of the facility the visitor named."""

    __tablename__ = "identity_submissions"

    photo_id_file: Mapped[str] = mapped_column(String(100))  # name under the private upload dir
    photo_id_type: Mapped[str] = mapped_column(String(40))
    selfie_file: Mapped[str] = mapped_column(String(100))
    selfie_type: Mapped[str] = mapped_column(String(40))
    # When both files were deleted from disk: once a newer submission of the visitor was
    # decided (this one was replaced), or past the retention after its own decision.
    documents_deleted_at: Mapped[dt.datetime | None]


class IdentityVerification(Base):
    """A facility confirmed a visitor's identity. It counts at that facility, and at
    another only if that facility accepts other facilities' checks
    (``FacilitySettings.accepts_other_identity_checks``). Kept apart from the submission,
    whose photos are deleted after a while, so the decision outlives them."""

    __tablename__ = "identity_verifications"
    __table_args__ = (UniqueConstraint("visitor_id", "facility_id"),)

    id: Mapped[intpk]
    visitor_id: Mapped[int] = mapped_column(ForeignKey("visitors.id"), index=True)
    facility_id: Mapped[int] = mapped_column(ForeignKey("facilities.id"), index=True)
    submission_id: Mapped[int | None] = mapped_column(ForeignKey("identity_submissions.id"))
    verified_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_members.id"))
    verified_at: Mapped[dt.datetime]


class ProfessionalCredential(Reviewed, Base):
    """An attorney's bar number or a clergy credential, verified by facility staff."""

    __tablename__ = "professional_credentials"
    __table_args__ = (UniqueConstraint("visitor_id", "facility_id", "kind"),)

    kind: Mapped[ProfessionKind] = enum_column(ProfessionKind)
    number: Mapped[str] = mapped_column(String(60))
    issuer: Mapped[str] = mapped_column(String(120))  # e.g. "State Bar of Ohio"


class StaffMember(Base):
    __tablename__ = "staff_members"

    id: Mapped[intpk]
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(200))
    # Until the first good code, the secret is still to be scanned: the next sign-in shows it
    # (after an invitation is accepted, or an admin reset the second factor).
    totp_secret: Mapped[str] = mapped_column(String(64))
    totp_confirmed_at: Mapped[dt.datetime | None]
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime]
    # When they set their own password from the e-mailed invitation; None while invited.
    joined_at: Mapped[dt.datetime | None]
    deactivated_at: Mapped[dt.datetime | None]

    @property
    def status(self) -> str:
        """invited | active | deactivated, as staff lists show it."""
        if not self.is_active:
            return "deactivated"
        return "active" if self.joined_at is not None else "invited"


class StaffInvitation(OneUseToken, Base):
    """An e-mailed, one-use link with which an invited staff member sets their own password."""

    __tablename__ = "staff_invitations"

    staff_id: Mapped[int] = mapped_column(ForeignKey("staff_members.id"), index=True)
    facility_id: Mapped[int | None] = mapped_column(ForeignKey("facilities.id"))
    invited_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_members.id"))


class StaffRole(Base):
    """A role held at one facility; provider admins hold theirs with no facility."""

    __tablename__ = "staff_roles"
    __table_args__ = (UniqueConstraint("staff_id", "facility_id", "role"),)

    id: Mapped[intpk]
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff_members.id"), index=True)
    facility_id: Mapped[int | None] = mapped_column(ForeignKey("facilities.id"))
    role: Mapped[StaffRoleName] = enum_column(StaffRoleName)
