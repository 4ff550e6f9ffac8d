"""API shapes for visitor accounts, identity checks, professional credentials and staff."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Literal, Self, cast

from pydantic import BaseModel, Field

from openvisit.auth.permissions import StaffRoleName
from openvisit.bounds import Id
from openvisit.people.models import (
    IdentitySubmission,
    ProfessionalCredential,
    Reviewed,
    StaffMember,
    StaffRole,
    Visitor,
)


class RegisterBody(BaseModel):
    email: str = Field(max_length=254)
    password: str = Field(max_length=256)
    legal_name: str = Field(max_length=200)
    date_of_birth: str = Field(max_length=10, description="YYYY-MM-DD")
    phone: str = Field(default="", max_length=40)


class TokenBody(BaseModel):
    token: str = Field(max_length=200)


class VisitorSignInBody(BaseModel):
    email: str = Field(max_length=254)
    password: str = Field(max_length=256)
    totp_code: str | None = Field(default=None, max_length=12)


class PasswordResetBody(BaseModel):
    email: str = Field(max_length=254)


class PasswordResetCompleteBody(BaseModel):
    token: str = Field(max_length=200)
    password: str = Field(max_length=256)


class CodeBody(BaseModel):
    code: str = Field(max_length=12)


class VisitorOut(BaseModel):
    id: int
    email: str
    legal_name: str
    date_of_birth: dt.date
    phone: str
    email_verified: bool
    identity_status: str
    totp_enabled: bool

    @classmethod
    def of(cls, visitor: Visitor) -> VisitorOut:
        return cls(
            id=visitor.id,
            email=visitor.email,
            legal_name=visitor.legal_name,
            date_of_birth=visitor.date_of_birth,
            phone=visitor.phone,
            email_verified=visitor.email_verified_at is not None,
            identity_status=visitor.identity_status.value,
            totp_enabled=visitor.totp_enabled_at is not None,
        )


class SignUpOut(BaseModel):
    """The same for a new address and for one that already has an account."""

    message: str


class VisitorSessionOut(BaseModel):
    visitor: VisitorOut
    csrf_token: str


class TotpSetupOut(BaseModel):
    secret: str
    otpauth_uri: str


class ReviewedOut(BaseModel):
    """What a visitor sent a facility to check, and the facility's decision: what an
    identity submission and a professional credential share."""

    id: int
    facility_id: int
    status: str
    reason: str
    submitted_at: dt.datetime
    reviewed_at: dt.datetime | None

    @classmethod
    def of(cls, row: Reviewed) -> Self:
        return cls.model_validate(row, from_attributes=True)


class IdentitySubmissionOut(ReviewedOut):
    """An identity submission: the photos themselves are only for the reviewing staff."""


class IdentityReviewOut(IdentitySubmissionOut):
    visitor: VisitorOut
    photo_id_url: str
    selfie_url: str

    @classmethod
    def review(cls, row: IdentitySubmission, visitor: Visitor) -> IdentityReviewOut:
        base = f"/api/v1/facilities/{row.facility_id}/identity-reviews/{row.id}/files"
        return cls(
            **IdentitySubmissionOut.of(row).model_dump(),
            visitor=VisitorOut.of(visitor),
            photo_id_url=f"{base}/photo_id",
            selfie_url=f"{base}/selfie",
        )


class CredentialBody(BaseModel):
    facility_id: Id
    kind: str = Field(max_length=20, description="attorney | clergy")
    number: str = Field(max_length=60)
    issuer: str = Field(max_length=120)


class CredentialOut(ReviewedOut):
    kind: str
    number: str
    issuer: str


class CredentialReviewOut(CredentialOut):
    visitor: VisitorOut

    @classmethod
    def review(cls, row: ProfessionalCredential, visitor: Visitor) -> CredentialReviewOut:
        return cls(**CredentialOut.of(row).model_dump(), visitor=VisitorOut.of(visitor))


class RejectBody(BaseModel):
    reason: str = Field(max_length=500)


class CloseAccountBody(BaseModel):
    confirm: bool = Field(description="true: yes, close my account")
    password: str = Field(max_length=256, description="the account's current password")


class ClosedAccountOut(BaseModel):
    closed: bool
    refunded_cents: int
    refunded: str  # "$12.50"
    payout: str = Field(description="the payment service's reference; empty if nothing was paid")
    cancelled_visit_ids: list[int]


class StaffSignInBody(BaseModel):
    email: str = Field(max_length=254)
    password: str = Field(max_length=256)
    totp_code: str | None = Field(default=None, max_length=12)


class StaffOut(BaseModel):
    id: int
    email: str
    name: str
    roles: list[dict[str, object]]
    status: Literal["invited", "active", "deactivated"]
    second_factor_enrolled: bool

    @classmethod
    def of(cls, member: StaffMember, roles: Iterable[StaffRole]) -> StaffOut:
        return cls(
            id=member.id,
            email=member.email,
            name=member.name,
            roles=[{"facility_id": r.facility_id, "role": r.role.value} for r in roles],
            status=cast(Literal["invited", "active", "deactivated"], member.status),
            second_factor_enrolled=member.totp_confirmed_at is not None,
        )


class StaffSessionOut(BaseModel):
    staff: StaffOut
    csrf_token: str


class StaffInvite(BaseModel):
    """A colleague to invite: they get an e-mailed link to choose their own password."""

    email: str = Field(max_length=254)
    name: str = Field(max_length=200)
    roles: list[StaffRoleName] = Field(max_length=len(StaffRoleName))


class StaffRolesBody(BaseModel):
    """The member's roles at this facility, all of them (their roles elsewhere stay)."""

    roles: list[StaffRoleName] = Field(max_length=len(StaffRoleName))


class InvitationAcceptBody(BaseModel):
    token: str = Field(max_length=200)
    password: str = Field(max_length=256)


class InvitationAccepted(BaseModel):
    """For the invited member only: the authenticator secret to scan. Their first sign-in
    with a code from it completes the enrolment."""

    staff: StaffOut
    totp_secret: str
    otpauth_uri: str


class PasswordChangeBody(BaseModel):
    current_password: str = Field(max_length=256)
    new_password: str = Field(max_length=256)
