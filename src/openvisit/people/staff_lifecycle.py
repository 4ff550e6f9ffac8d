"""A staff member's life, for facility admins (at their facility) and provider admins
(anywhere): invited by an e-mailed link, joining with their own password and their own
authenticator app (the admin never sees either), roles changed, second factor reset,
deactivated; and changing their own password. Every change is audited, and whatever
ends someone's access closes their sockets once it commits (auth.endings).

Every function expects the request's transaction: it flushes, never commits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from openvisit import audit
from openvisit.audit.service import AuditActor
from openvisit.auth import endings
from openvisit.auth import service as auth
from openvisit.auth import sign_in as signing_in
from openvisit.auth.permissions import ROLE_PERMISSIONS, Permission, StaffRoleName
from openvisit.clock import Clock
from openvisit.config import Settings
from openvisit.errors import Code, Conflict, Forbidden, InvalidInput, NotFound
from openvisit.facilities.models import Facility
from openvisit.notifications.service import queue_email
from openvisit.people.accounts import LinkNotValid, spend_link, usable_link
from openvisit.people.context import StaffContext
from openvisit.people.models import StaffInvitation, StaffMember, StaffRole
from openvisit.people.staff_service import STAFF, roles_of

INVITATION_LIFETIME = dt.timedelta(hours=72)
INVITATION_PATH = "/staff/invitation"
# How long the half session that follows joining waits for the first code.
ENROLMENT_LIFETIME = dt.timedelta(minutes=30)


def _audit(
    session: Session,
    tag: str,
    actor: AuditActor,
    member: StaffMember,
    now: dt.datetime,
    facility_id: int | None,
    data: dict[str, Any] | None = None,
) -> None:
    audit.service.record(
        session,
        tag=tag,
        actor=actor,
        at=now,
        facility_id=facility_id,
        subject=("staff", member.id),
        data=data or {},
    )


# --- who may do what to whom -------------------------------------------------------------


def access_member(
    session: Session, facility_id: int, staff_id: int
) -> tuple[StaffMember, list[StaffRole]]:
    """A staff member who works at this facility, with all their roles; anyone else (another
    facility's staff, a provider admin, no one) is "not found"."""
    member = session.get(StaffMember, staff_id)
    roles = roles_of(session, staff_id) if member is not None else []
    if member is None or not any(role.facility_id == facility_id for role in roles):
        raise NotFound("We couldn't find that staff member.")
    return member, roles


def _not_yourself(admin: StaffContext, member: StaffMember) -> None:
    if member.id == admin.member.id:
        raise Forbidden(
            "You can't do that to your own account. Ask another admin, or change your "
            "password from your own account page."
        )


def _check_whole_account(admin: StaffContext, member: StaffMember, roles: list[StaffRole]) -> None:
    """Deactivating or resetting a second factor ends the person's access everywhere: only
    someone who manages staff wherever they work may do it."""
    _not_yourself(admin, member)
    if not all(admin.can(role.facility_id, Permission.MANAGE_STAFF) for role in roles):
        raise Forbidden(
            "This person also works where you don't manage staff. Ask a provider admin."
        )


def _check_grantable(admin: StaffContext, facility_id: int, role: StaffRoleName) -> None:
    """An admin gives (or takes away) only roles whose rights they hold there themselves."""
    if role == StaffRoleName.PROVIDER_ADMIN:
        raise Forbidden(
            "Provider admins work for the provider, not a facility: only the provider can make one."
        )
    if not all(admin.can(facility_id, p) for p in ROLE_PERMISSIONS[role]):
        raise Forbidden("You can't give or take away a role with rights you don't hold.")


def _clean_roles(roles: Iterable[StaffRoleName]) -> set[StaffRoleName]:
    chosen = set(roles)
    if not chosen:
        raise InvalidInput(
            "Choose at least one role. To remove someone, deactivate them.",
            fields={"roles": "Choose at least one role"},
        )
    return chosen


# --- inviting and joining ----------------------------------------------------------------


def invite(
    session: Session,
    clock: Clock,
    settings: Settings,
    admin: StaffContext,
    facility: Facility,
    *,
    email: str,
    name: str,
    roles: Iterable[StaffRoleName],
) -> StaffMember:
    """Add a colleague at this facility and e-mail them a link to join. Their password is
    unusable and their authenticator unknown until they set both themselves."""
    now = clock.now()
    fields: dict[str, str] = {}
    clean_email = ""
    try:
        clean_email = auth.normalize_email(email)
    except InvalidInput as exc:
        fields.update(exc.fields)
    name = " ".join(name.split())
    if not name or len(name) > 200:
        fields["name"] = "Enter the staff member's name"
    chosen: set[StaffRoleName] = set()
    try:
        chosen = _clean_roles(roles)
    except InvalidInput as exc:
        fields.update(exc.fields)
    if fields:
        raise InvalidInput("Some of the information given is not valid.", fields=fields)
    for role in chosen:
        _check_grantable(admin, facility.id, role)
    if session.scalar(select(func.count()).where(StaffMember.email == clean_email)):
        raise Conflict(
            "A staff account with that e-mail address already exists.",
            code=Code.EMAIL_TAKEN,
            fields={"email": "This e-mail address already has a staff account"},
        )
    member = StaffMember(
        email=clean_email,
        name=name,
        # Nobody knows this password: the member chooses their own when they join.
        password_hash=auth.hash_secret(auth.new_token()),
        totp_secret=auth.new_totp_secret(),
        created_at=now,
    )
    session.add(member)
    session.flush()
    for role in sorted(chosen):
        session.add(StaffRole(staff_id=member.id, facility_id=facility.id, role=role))
    session.flush()
    _send_invitation(session, clock, settings, admin, facility, member)
    _audit(
        session,
        "staff:invited",
        admin.actor,
        member,
        now,
        facility.id,
        {"email": clean_email, "roles": sorted(r.value for r in chosen)},
    )
    return member


def _send_invitation(
    session: Session,
    clock: Clock,
    settings: Settings,
    admin: StaffContext,
    facility: Facility,
    member: StaffMember,
) -> None:
    now = clock.now()
    token = auth.new_token()
    session.add(
        StaffInvitation(
            staff_id=member.id,
            facility_id=facility.id,
            invited_by_staff_id=admin.member.id,
            token_hash=auth.token_digest(token),
            created_at=now,
            expires_at=now + INVITATION_LIFETIME,
        )
    )
    session.flush()
    queue_email(
        session,
        clock,
        settings,
        to=member.email,
        subject=f"You're invited to OpenVisit at {facility.name}",
        body=(
            f"Hello {member.name},\n\n"
            f"{admin.member.name} has added you to the OpenVisit staff console of "
            f"{facility.name}. Choose your password and set up your authenticator app here:\n\n"
            f"{settings.base_url}{INVITATION_PATH}?token={token}\n\n"
            "The link works once and expires in 72 hours.\n"
            "If you weren't expecting this, you can ignore this e-mail.\n"
        ),
    )


def resend_invitation(
    session: Session,
    clock: Clock,
    settings: Settings,
    admin: StaffContext,
    facility: Facility,
    staff_id: int,
) -> StaffMember:
    """A new link for someone who hasn't joined yet; the earlier links stop working."""
    member, _roles = access_member(session, facility.id, staff_id)
    if member.joined_at is not None or not member.is_active:
        raise Conflict("This person has already joined, or was deactivated.")
    now = clock.now()
    _expire_invitations(session, member, now)
    _send_invitation(session, clock, settings, admin, facility, member)
    _audit(session, "staff:invitation_resent", admin.actor, member, now, facility.id)
    return member


def _expire_invitations(session: Session, member: StaffMember, now: dt.datetime) -> None:
    """No link sent to ``member`` before ``now`` works any more."""
    session.execute(
        update(StaffInvitation)
        .where(StaffInvitation.staff_id == member.id, StaffInvitation.used_at.is_(None))
        .values(expires_at=now)
        .execution_options(synchronize_session=False)
    )


def _find_invitation(session: Session, token: str, now: dt.datetime) -> StaffInvitation:
    """The unused, unexpired invitation of ``token``; each other case says what went wrong."""
    token = token.strip()
    row = (
        session.scalar(
            select(StaffInvitation).where(StaffInvitation.token_hash == auth.token_digest(token))
        )
        if token
        else None
    )
    return usable_link(row, now)


def check_invitation(session: Session, clock: Clock, *, token: str) -> StaffMember:
    """For the page: refuse a bad link before asking for a password."""
    row = _find_invitation(session, token, clock.now())
    member = session.get(StaffMember, row.staff_id)
    if member is None or not member.is_active:
        raise LinkNotValid()
    return member


def accept_invitation(
    session: Session, clock: Clock, *, token: str, password: str, ip: str = ""
) -> StaffMember:
    """The invited member sets their own password; the link is spent (compare-and-set, so
    two clicks can't both succeed) and a fresh authenticator secret waits to be scanned at
    their first sign-in, so nobody who saw the invitation holds it."""
    now = clock.now()
    member = check_invitation(session, clock, token=token)
    auth.check_new_password(password, email=member.email)
    row = _find_invitation(session, token, now)
    spend_link(session, row, now)
    _expire_invitations(session, member, now)
    member.password_hash = auth.hash_secret(password)
    member.totp_secret = auth.new_totp_secret()
    member.totp_confirmed_at = None
    member.joined_at = now
    session.flush()
    _audit(session, "staff:joined", STAFF.actor(member, ip), member, now, row.facility_id)
    return member


def enrolment_session(
    session: Session, clock: Clock, member: StaffMember, *, ip: str, user_agent: str
) -> auth.NewSession:
    """Right after joining on the page: a session good only for the code step, which shows
    the authenticator secret to scan (it is the member's first code that completes it)."""
    return auth.start_session(
        session,
        actor_type=STAFF.scope,
        actor_id=member.id,
        now=clock.now(),
        lifetime=ENROLMENT_LIFETIME,
        ip=ip,
        user_agent=user_agent,
        second_factor_pending=True,
    )


# --- roles, second factor, deactivation -------------------------------------------------------


def change_roles(
    session: Session,
    clock: Clock,
    admin: StaffContext,
    facility: Facility,
    staff_id: int,
    roles: Iterable[StaffRoleName],
) -> StaffMember:
    """Set the member's roles at this facility (their roles elsewhere stay). Their open
    sockets close, so that a right taken away is gone at once."""
    member, held = access_member(session, facility.id, staff_id)
    _not_yourself(admin, member)
    chosen = _clean_roles(roles)
    here = {role.role: role for role in held if role.facility_id == facility.id}
    for role in chosen ^ set(here):
        _check_grantable(admin, facility.id, role)
    if chosen == set(here):
        return member
    for role in set(here) - chosen:
        session.delete(here[role])
    for role in sorted(chosen - set(here)):
        session.add(StaffRole(staff_id=member.id, facility_id=facility.id, role=role))
    session.flush()
    endings.note(session, "staff", member.id)
    _audit(
        session,
        "staff:roles_changed",
        admin.actor,
        member,
        clock.now(),
        facility.id,
        {"from": sorted(r.value for r in here), "to": sorted(r.value for r in chosen)},
    )
    return member


def reset_second_factor(
    session: Session, clock: Clock, admin: StaffContext, facility: Facility, staff_id: int
) -> StaffMember:
    """A lost or compromised authenticator: a new secret, shown at the member's next sign-in
    (after their password) and confirmed by its first code. They are signed out everywhere."""
    member, held = access_member(session, facility.id, staff_id)
    _check_whole_account(admin, member, held)
    if not member.is_active:
        raise Conflict("This account is deactivated.")
    member.totp_secret = auth.new_totp_secret()
    member.totp_confirmed_at = None
    auth.end_all_sessions(session, STAFF.scope, member.id)
    session.flush()
    _audit(session, "staff:second_factor_reset", admin.actor, member, clock.now(), facility.id)
    return member


def deactivate(
    session: Session, clock: Clock, admin: StaffContext, facility: Facility, staff_id: int
) -> StaffMember:
    """A departed colleague: they can't sign in again, and every session and socket of
    theirs ends at once. Their rows stay, as the audit log names them."""
    member, held = access_member(session, facility.id, staff_id)
    _check_whole_account(admin, member, held)
    if not member.is_active:
        raise Conflict("This account is already deactivated.")
    now = clock.now()
    member.is_active = False
    member.deactivated_at = now
    _expire_invitations(session, member, now)
    auth.end_all_sessions(session, STAFF.scope, member.id)
    session.flush()
    _audit(session, "staff:deactivated", admin.actor, member, now, facility.id)
    return member


# --- their own password ------------------------------------------------------------------


def change_own_password(
    session: Session,
    clock: Clock,
    settings: Settings,
    me: StaffContext,
    *,
    current_password: str,
    new_password: str,
) -> None:
    """The current password first (a wrong one counts as a failed sign-in, so it is
    throttled); then every other session of theirs ends, this one stays."""
    now = clock.now()
    member = me.member
    auth.check_throttle(session, settings, auth.Tries(STAFF.scope, member.email, me.ip, now))
    if not auth.verify_secret(member.password_hash, current_password):
        signing_in.fail(
            session,
            settings,
            STAFF,
            member.email,
            me.ip,
            now,
            "Enter your current password.",
            field="current_password",
        )
    try:
        auth.check_new_password(new_password, email=member.email)
    except auth.PasswordTooWeak as exc:
        exc.fields = {"new_password": exc.fields.get("password", exc.message)}
        raise
    member.password_hash = auth.hash_secret(new_password)
    auth.end_all_sessions(session, STAFF.scope, member.id, keep=me.session)
    session.flush()
    _audit(session, "staff:password_changed", me.actor, member, now, None)
