"""The JSON API of people: visitor accounts, identity and credential reviews, staff.

Review and staff routes declare their access (FacilityFor), so another facility's
reviews are "not found". The pages (pages.py) call the same services.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Annotated, Literal, TypeVar

from fastapi import APIRouter, Depends, File, Form, Path, Request, Response, UploadFile
from fastapi.responses import FileResponse
from pydantic import BaseModel

from openvisit import bounds
from openvisit.auth.cookies import SESSION_COOKIE, clear_session_cookie, set_signed_in
from openvisit.auth.permissions import Permission
from openvisit.auth.service import totp_uri
from openvisit.auth.sign_in import Attempt
from openvisit.billing.gateway import PaymentGateway
from openvisit.billing.ledger import dollars
from openvisit.billing.routes import payment_gateway
from openvisit.config import Settings
from openvisit.deps import (
    MAX_ID,
    ClockDep,
    CurrentStaff,
    CurrentVisitor,
    DbSession,
    Id,
    SettingsDep,
    StaffingFacility,
    client_ip,
)
from openvisit.flows import account_closure
from openvisit.people import (
    accounts,
    credentials,
    identity,
    reviews,
    sign_in,
    staff_lifecycle,
    staff_service,
)
from openvisit.people.models import IdentitySubmission, Reviewed, StaffMember, Visitor
from openvisit.people.schemas import (
    CloseAccountBody,
    ClosedAccountOut,
    CodeBody,
    CredentialBody,
    CredentialOut,
    CredentialReviewOut,
    IdentityReviewOut,
    IdentitySubmissionOut,
    InvitationAcceptBody,
    InvitationAccepted,
    PasswordChangeBody,
    PasswordResetBody,
    PasswordResetCompleteBody,
    RegisterBody,
    RejectBody,
    SignUpOut,
    StaffInvite,
    StaffOut,
    StaffRolesBody,
    StaffSessionOut,
    StaffSignInBody,
    TokenBody,
    TotpSetupOut,
    VisitorOut,
    VisitorSessionOut,
    VisitorSignInBody,
)
from openvisit.web.acting import AtFacility, acting

router = APIRouter(prefix="/api/v1")

Gateway = Annotated[PaymentGateway, Depends(payment_gateway)]


def user_agent(request: Request) -> str:
    return request.headers.get("user-agent", "")


def _attempt(body: VisitorSignInBody | StaffSignInBody, request: Request) -> Attempt:
    return Attempt(
        email=body.email,
        password=body.password,
        totp_code=body.totp_code,
        ip=client_ip(request),
        user_agent=user_agent(request),
    )


def _read(upload: UploadFile | None, settings: Settings) -> identity.Upload:
    if upload is None:
        return identity.Upload("", b"")
    return identity.Upload(upload.filename or "", upload.file.read(settings.upload_max_bytes + 1))


def int_or_none(value: str) -> int | None:
    return bounds.parse_id(value)


# --- visitor accounts ------------------------------------------------------------------


@router.post("/visitors", response_model=SignUpOut, status_code=202, tags=["visitors"])
def api_register(
    body: RegisterBody, request: Request, db: DbSession, settings: SettingsDep, clock: ClockDep
) -> SignUpOut:
    """Create an account; a link to confirm the e-mail address is sent. An address that
    already has an account gets the same answer (its owner is told by e-mail), so the
    answer never says who has an account."""
    email = accounts.register(
        db,
        clock,
        settings,
        email=body.email,
        password=body.password,
        legal_name=body.legal_name,
        date_of_birth=accounts.DateParts.from_iso(body.date_of_birth),
        phone=body.phone,
        ip=client_ip(request),
    )
    return SignUpOut(message=accounts.sign_up_answer(email))


@router.post("/visitors/verify-email", response_model=VisitorOut, tags=["visitors"])
def api_verify_email(
    body: TokenBody, request: Request, db: DbSession, clock: ClockDep
) -> VisitorOut:
    visitor = accounts.verify_email(db, clock, token=body.token, ip=client_ip(request))
    return VisitorOut.of(visitor)


@router.post("/visitor-session", response_model=VisitorSessionOut, tags=["visitors"])
def api_sign_in(
    body: VisitorSignInBody,
    request: Request,
    response: Response,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
) -> VisitorSessionOut:
    """Sign in; a visitor who turned on two-step sign-in also gives ``totp_code``."""
    result = sign_in.sign_in(db, settings, clock, _attempt(body, request))
    csrf = set_signed_in(response, settings, result.session)
    return VisitorSessionOut(visitor=VisitorOut.of(result.account), csrf_token=csrf)


@router.delete("/visitor-session", status_code=204, tags=["visitors"])
def api_sign_out(
    visitor: CurrentVisitor, db: DbSession, clock: ClockDep, response: Response
) -> None:
    sign_in.sign_out(db, clock, visitor.session, visitor.ip)
    clear_session_cookie(response, SESSION_COOKIE)


@router.post("/password-reset", status_code=202, tags=["visitors"])
def api_password_reset(
    body: PasswordResetBody, request: Request, db: DbSession, settings: SettingsDep, clock: ClockDep
) -> dict[str, str]:
    """Always 202: the answer never says whether an account exists."""
    accounts.request_password_reset(db, clock, settings, email=body.email, ip=client_ip(request))
    return {"message": "If there is an account for that e-mail address, we've sent it a link."}


@router.post("/password-reset/complete", status_code=204, tags=["visitors"])
def api_password_reset_complete(
    body: PasswordResetCompleteBody, request: Request, db: DbSession, clock: ClockDep
) -> None:
    accounts.complete_password_reset(
        db, clock, token=body.token, password=body.password, ip=client_ip(request)
    )


@router.get("/me", response_model=VisitorOut, tags=["visitors"])
def api_me(visitor: CurrentVisitor) -> VisitorOut:
    return VisitorOut.of(visitor.visitor)


class AccountClosing:
    """The signed-in visitor closing their account, from the API or the page, with what
    closing needs: the balance is paid back through the payment gateway."""

    def __init__(
        self,
        visitor: CurrentVisitor,
        db: DbSession,
        settings: SettingsDep,
        clock: ClockDep,
        gateway: Gateway,
    ) -> None:
        self.visitor, self.db, self.settings, self.clock = visitor, db, settings, clock
        self.gateway = gateway

    def close(self, *, confirm: bool, password: str) -> account_closure.ClosedAccount:
        return account_closure.close_account(
            self.db,
            self.clock,
            self.settings,
            self.gateway,
            self.visitor.visitor,
            confirm=confirm,
            password=password,
            ip=self.visitor.ip,
        )


ClosingAccount = Annotated[AccountClosing, Depends()]


@router.post("/me/close-account", response_model=ClosedAccountOut, tags=["visitors"])
def api_close_account(
    body: CloseAccountBody, closing: ClosingAccount, response: Response
) -> ClosedAccountOut:
    """Close the account: upcoming visits are cancelled and their money given back, the whole
    balance is paid back (no fee), every session ends and the account can't sign in again.
    Needs ``confirm: true`` and the current password. If the payment service fails, nothing
    changes (503 ``payout_failed``) and it is safe to try again."""
    closed = closing.close(confirm=body.confirm, password=body.password)
    clear_session_cookie(response, SESSION_COOKIE)
    return ClosedAccountOut(
        closed=True,
        refunded_cents=closed.refunded_cents,
        refunded=dollars(closed.refunded_cents),
        payout=closed.payout,
        cancelled_visit_ids=[v.id for v in closed.cancelled],
    )


@router.post("/me/totp", response_model=TotpSetupOut, tags=["visitors"])
def api_totp_start(visitor: CurrentVisitor, db: DbSession) -> TotpSetupOut:
    setup = sign_in.start_totp(db, visitor.visitor)
    return TotpSetupOut(secret=setup.secret, otpauth_uri=setup.otpauth_uri)


@router.post("/me/totp/confirm", response_model=VisitorOut, tags=["visitors"])
def api_totp_confirm(
    body: CodeBody, visitor: CurrentVisitor, db: DbSession, clock: ClockDep
) -> VisitorOut:
    sign_in.confirm_totp(db, clock, visitor.visitor, code=body.code, ip=visitor.ip)
    return VisitorOut.of(visitor.visitor)


@router.delete("/me/totp", response_model=VisitorOut, tags=["visitors"])
def api_totp_disable(
    body: CodeBody, visitor: CurrentVisitor, db: DbSession, clock: ClockDep
) -> VisitorOut:
    sign_in.disable_totp(db, clock, visitor.visitor, code=body.code, ip=visitor.ip)
    return VisitorOut.of(visitor.visitor)


class IdentityUpload:
    """The identity form as posted, to the API or the page: the facility chosen, and the
    two photos read up to one byte over the limit (enough to know one is too large)."""

    def __init__(
        self,
        visitor: CurrentVisitor,
        db: DbSession,
        settings: SettingsDep,
        clock: ClockDep,
        facility_id: Annotated[str, Form(max_length=20)] = "",
        photo_id: Annotated[UploadFile | None, File()] = None,
        selfie: Annotated[UploadFile | None, File()] = None,
    ) -> None:
        self.visitor, self.db, self.settings, self.clock = visitor, db, settings, clock
        self.facility_id = facility_id
        self.photo_id, self.selfie = _read(photo_id, settings), _read(selfie, settings)

    def submit(self) -> IdentitySubmission:
        return identity.submit_identity(
            self.db,
            self.clock,
            self.settings,
            self.visitor.visitor,
            facility_id=int_or_none(self.facility_id),
            photo_id=self.photo_id,
            selfie=self.selfie,
            ip=self.visitor.ip,
        )


IdentityUploaded = Annotated[IdentityUpload, Depends()]


@router.post(
    "/me/identity", response_model=IdentitySubmissionOut, status_code=201, tags=["visitors"]
)
def api_identity(upload: IdentityUploaded) -> IdentitySubmissionOut:
    """Upload a photo ID and a selfie (JPEG, PNG or WebP) for the chosen facility to check."""
    return IdentitySubmissionOut.of(upload.submit())


@router.post("/me/credentials", response_model=CredentialOut, status_code=201, tags=["visitors"])
def api_credential(
    body: CredentialBody, visitor: CurrentVisitor, db: DbSession, clock: ClockDep
) -> CredentialOut:
    credential = credentials.submit_credential(
        db,
        clock,
        visitor.visitor,
        facility_id=body.facility_id,
        kind=body.kind,
        number=body.number,
        issuer=body.issuer,
        ip=visitor.ip,
    )
    return CredentialOut.of(credential)


@router.get("/me/credentials", response_model=list[CredentialOut], tags=["visitors"])
def api_my_credentials(visitor: CurrentVisitor, db: DbSession) -> list[CredentialOut]:
    mine = credentials.list_my_credentials(db, visitor.visitor)
    return [CredentialOut.of(credential) for credential, _facility in mine]


# --- identity and credential reviews ----------------------------------------------------

# Listed under visitors as well: they are about visitors, though staff use them.
REVIEW_TAGS: list[str | Enum] = ["visitors", "reviews"]
IDENTITY_REVIEWS = "/facilities/{facility_id}/identity-reviews"
CREDENTIAL_REVIEWS = "/facilities/{facility_id}/credential-reviews"
R = TypeVar("R", bound=Reviewed)
Out = TypeVar("Out", bound=BaseModel)


class Reviewer(AtFacility):
    """A staff member deciding one facility's reviews."""

    def pending(self, kind: reviews.Kind[R]) -> list[tuple[R, Visitor]]:
        return reviews.pending(self.db, kind, self.facility)

    def access(self, kind: reviews.Kind[R], review_id: Id) -> tuple[R, Visitor]:
        return reviews.access(self.db, kind, self.facility, review_id)

    def decide(
        self, kind: reviews.Kind[R], review_id: Id, *, verified: bool, reason: str = ""
    ) -> tuple[R, Visitor]:
        return reviews.decide(
            self.db,
            self.clock,
            self.settings,
            self.staff.actor,
            self.facility,
            kind,
            review_id,
            verified=verified,
            reason=reason,
        )


Reviewing = Annotated[Reviewer, acting(Permission.REVIEW_VISITORS, Reviewer)]


@router.get(IDENTITY_REVIEWS, response_model=list[IdentityReviewOut], tags=REVIEW_TAGS)
def api_identity_reviews(reviewer: Reviewing) -> list[IdentityReviewOut]:
    """Identity checks waiting for this facility, oldest first."""
    return [IdentityReviewOut.review(s, v) for s, v in reviewer.pending(identity.CHECKS)]


@router.get(IDENTITY_REVIEWS + "/{review_id}", response_model=IdentityReviewOut, tags=REVIEW_TAGS)
def api_identity_review(reviewer: Reviewing, review_id: Id) -> IdentityReviewOut:
    return IdentityReviewOut.review(*reviewer.access(identity.CHECKS, review_id))


@router.get(
    IDENTITY_REVIEWS + "/{review_id}/files/{document}",
    response_class=FileResponse,
    tags=REVIEW_TAGS,
)
def api_identity_file(
    reviewer: Reviewing, review_id: Id, document: Literal["photo_id", "selfie"]
) -> FileResponse:
    """The private image itself; never cached, every viewing audited."""
    path, media_type = identity.identity_document(
        reviewer.db,
        reviewer.clock,
        reviewer.settings,
        reviewer.staff.actor,
        reviewer.facility,
        review_id,
        document,
    )
    return FileResponse(
        path,
        media_type=media_type,
        headers={"Cache-Control": "no-store", "Content-Disposition": "inline"},
    )


@router.get(CREDENTIAL_REVIEWS, response_model=list[CredentialReviewOut], tags=REVIEW_TAGS)
def api_credential_reviews(reviewer: Reviewing) -> list[CredentialReviewOut]:
    pending = reviewer.pending(credentials.CREDENTIALS)
    return [CredentialReviewOut.review(c, v) for c, v in pending]


# --- staff ----------------------------------------------------------------------------


@router.post("/staff-session", response_model=StaffSessionOut, tags=["staff"], name="api_sign_in")
def api_staff_sign_in(
    body: StaffSignInBody,
    request: Request,
    response: Response,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
) -> StaffSessionOut:
    """Sign in with e-mail, password and (unless relaxed) the current TOTP code."""
    result = staff_service.sign_in(db, settings, clock, _attempt(body, request))
    csrf = set_signed_in(response, settings, result.session)
    roles = staff_service.roles_of(db, result.account.id)
    return StaffSessionOut(staff=StaffOut.of(result.account, roles), csrf_token=csrf)


@router.delete("/staff-session", status_code=204, tags=["staff"], name="api_sign_out")
def api_staff_sign_out(
    staff: CurrentStaff, db: DbSession, clock: ClockDep, response: Response
) -> None:
    staff_service.sign_out(db, clock, staff.session, staff.ip)
    clear_session_cookie(response, SESSION_COOKIE)


@router.get("/staff/me", response_model=StaffOut, tags=["staff"], name="api_me")
def api_staff_me(staff: CurrentStaff, db: DbSession) -> StaffOut:
    return StaffOut.of(staff.member, staff_service.roles_of(db, staff.member.id))


STAFF_BASE = "/facilities/{facility_id}/staff"
STAFF_ONE = STAFF_BASE + "/{staff_id}"
# A staff member's id in a path: an id beyond the database's range is a 422, never a 500.
StaffIdPath = Annotated[int, Path(ge=1, le=MAX_ID)]


class StaffAdmin(AtFacility):
    """A staff admin managing one facility's staff."""

    def out(self, member: StaffMember) -> StaffOut:
        """The member as the API shows them, with their roles here."""
        return StaffOut.of(member, staff_service.roles_of(self.db, member.id))


StaffAdminDep = Annotated[StaffAdmin, acting(Permission.MANAGE_STAFF, StaffAdmin)]


@router.get(STAFF_BASE, response_model=list[StaffOut], tags=["staff"])
def api_list_staff(facility: StaffingFacility, db: DbSession) -> list[StaffOut]:
    return [StaffOut.of(m, roles) for m, roles in staff_service.staff_of_facility(db, facility.id)]


@router.post(STAFF_BASE, response_model=StaffOut, status_code=201, tags=["staff"])
def api_invite_staff(admin: StaffAdminDep, body: StaffInvite) -> StaffOut:
    """Invite a colleague: they get an e-mailed link to choose their own password and set
    up their own authenticator app. Neither ever passes through the inviting admin."""
    member = staff_lifecycle.invite(
        admin.db,
        admin.clock,
        admin.settings,
        admin.staff,
        admin.facility,
        email=body.email,
        name=body.name,
        roles=body.roles,
    )
    return admin.out(member)


@router.get(STAFF_ONE, response_model=StaffOut, tags=["staff"])
def api_staff_member(facility: StaffingFacility, staff_id: StaffIdPath, db: DbSession) -> StaffOut:
    member, roles = staff_lifecycle.access_member(db, facility.id, staff_id)
    return StaffOut.of(member, roles)


@router.put(STAFF_ONE + "/roles", response_model=StaffOut, tags=["staff"])
def api_staff_roles(admin: StaffAdminDep, staff_id: StaffIdPath, body: StaffRolesBody) -> StaffOut:
    """Set the member's roles here; an admin gives only rights they hold themselves."""
    member = staff_lifecycle.change_roles(
        admin.db, admin.clock, admin.staff, admin.facility, staff_id, body.roles
    )
    return admin.out(member)


@router.post(STAFF_ONE + "/invitation", response_model=StaffOut, tags=["staff"])
def api_staff_resend_invitation(admin: StaffAdminDep, staff_id: StaffIdPath) -> StaffOut:
    member = staff_lifecycle.resend_invitation(
        admin.db, admin.clock, admin.settings, admin.staff, admin.facility, staff_id
    )
    return admin.out(member)


@router.post(STAFF_ONE + "/second-factor-reset", response_model=StaffOut, tags=["staff"])
def api_staff_reset_second_factor(admin: StaffAdminDep, staff_id: StaffIdPath) -> StaffOut:
    """The member is signed out everywhere and sets up a new authenticator at next sign-in."""
    member = staff_lifecycle.reset_second_factor(
        admin.db, admin.clock, admin.staff, admin.facility, staff_id
    )
    return admin.out(member)


@router.post(STAFF_ONE + "/deactivate", response_model=StaffOut, tags=["staff"])
def api_staff_deactivate(admin: StaffAdminDep, staff_id: StaffIdPath) -> StaffOut:
    """Every session and open socket of the member ends at once; they can't sign in again."""
    member = staff_lifecycle.deactivate(
        admin.db, admin.clock, admin.staff, admin.facility, staff_id
    )
    return admin.out(member)


@router.post("/staff-invitation", response_model=InvitationAccepted, tags=["staff"])
def api_accept_invitation(
    body: InvitationAcceptBody, request: Request, db: DbSession, clock: ClockDep
) -> InvitationAccepted:
    """The invited member chooses their password; the answer (to them alone) carries the
    authenticator secret, and their first sign-in with its code completes the enrolment."""
    member = staff_lifecycle.accept_invitation(
        db, clock, token=body.token, password=body.password, ip=client_ip(request)
    )
    return InvitationAccepted(
        staff=StaffOut.of(member, staff_service.roles_of(db, member.id)),
        totp_secret=member.totp_secret,
        otpauth_uri=totp_uri(member.totp_secret, member.email),
    )


@router.post("/staff/me/password", status_code=204, tags=["staff"])
def api_staff_change_password(
    body: PasswordChangeBody,
    staff: CurrentStaff,
    db: DbSession,
    clock: ClockDep,
    settings: SettingsDep,
) -> None:
    """Your current password, then the new one; your other sessions end."""
    staff_lifecycle.change_own_password(
        db,
        clock,
        settings,
        staff,
        current_password=body.current_password,
        new_password=body.new_password,
    )


def _decision_routes(
    base: str, kind: reviews.Kind[R], out: type[Out], of: Callable[[R], Out]
) -> None:
    """Verify and reject, the same two decisions for identity and credential reviews."""

    @router.post(base + "/{review_id}/verify", response_model=out, tags=REVIEW_TAGS)
    def verify(reviewer: Reviewing, review_id: Id) -> Out:
        decided, _visitor = reviewer.decide(kind, review_id, verified=True)
        return of(decided)

    @router.post(base + "/{review_id}/reject", response_model=out, tags=REVIEW_TAGS)
    def reject(reviewer: Reviewing, review_id: Id, body: RejectBody) -> Out:
        decided, _visitor = reviewer.decide(kind, review_id, verified=False, reason=body.reason)
        return of(decided)


_decision_routes(IDENTITY_REVIEWS, identity.CHECKS, IdentitySubmissionOut, IdentitySubmissionOut.of)
_decision_routes(CREDENTIAL_REVIEWS, credentials.CREDENTIALS, CredentialOut, CredentialOut.of)
