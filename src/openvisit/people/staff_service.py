"""Staff accounts: creation, sign-in with a second factor, roles."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from openvisit import audit
from openvisit.audit.service import SYSTEM, AuditActor
from openvisit.auth import service as auth
from openvisit.auth.models import UserSession
from openvisit.auth.permissions import StaffRoleName
from openvisit.clock import Clock
from openvisit.config import Settings
from openvisit.errors import Code, Conflict, DomainError, InvalidInput, NotFound
from openvisit.facilities.models import Facility
from openvisit.people.models import StaffMember, StaffRole

STAFF_SCOPE = "staff"


@dataclass(frozen=True)
class CreatedStaff:
    member: StaffMember
    otpauth_uri: str


@dataclass(frozen=True)
class StaffSignIn:
    member: StaffMember
    session: auth.NewSession
    needs_code: bool  # the session is only good for giving the TOTP code
    needs_enrollment: bool  # first sign-in: show the TOTP secret to enrol


def normalize_email(email: str) -> str:
    email = email.strip().lower()
    if "@" not in email or len(email) > 254 or " " in email:
        raise InvalidInput(
            "Enter an e-mail address in the right format, like name@example.com.",
            fields={"email": "Enter an e-mail address like name@example.com"},
        )
    return email


def create_staff(
    session: Session,
    clock: Clock,
    actor: AuditActor,
    *,
    email: str,
    name: str,
    password: str,
    role: StaffRoleName,
    facility_id: int | None,
) -> CreatedStaff:
    email = normalize_email(email)
    name = name.strip()
    if not name or len(name) > 200:
        raise InvalidInput("Enter the staff member's name.", fields={"name": "Enter a name"})
    auth.check_new_password(password, email=email)
    if (role == StaffRoleName.PROVIDER_ADMIN) != (facility_id is None):
        raise InvalidInput(
            "Provider admins have no facility; every other role needs one.",
            fields={"facility_id": "Choose a facility for this role"},
        )
    if session.scalar(select(func.count()).where(StaffMember.email == email)):
        raise Conflict(
            "A staff account with that e-mail already exists.",
            code=Code.EMAIL_TAKEN,
            fields={"email": "This e-mail is already in use"},
        )
    now = clock.now()
    member = StaffMember(
        email=email,
        name=name,
        password_hash=auth.hash_secret(password),
        totp_secret=auth.new_totp_secret(),
        created_at=now,
    )
    session.add(member)
    session.flush()
    session.add(StaffRole(staff_id=member.id, facility_id=facility_id, role=role))
    session.flush()
    audit.service.record(
        session,
        tag="staff:created",
        actor=actor,
        at=now,
        facility_id=facility_id,
        subject=("staff", member.id),
        data={"email": email, "role": role.value},
    )
    return CreatedStaff(member, auth.totp_uri(member.totp_secret, email))


def create_staff_from_cli(
    session: Session,
    clock: Clock,
    *,
    email: str,
    name: str,
    password: str,
    role: str,
    facility_name: str | None,
) -> CreatedStaff:
    role_name = StaffRoleName(role)
    facility_id = None
    if role_name != StaffRoleName.PROVIDER_ADMIN:
        facility = session.scalar(select(Facility).where(Facility.name == facility_name))
        if facility is None:
            raise NotFound(f"No facility is named {facility_name!r}.")
        facility_id = facility.id
    return create_staff(
        session,
        clock,
        SYSTEM,
        email=email,
        name=name,
        password=password,
        role=role_name,
        facility_id=facility_id,
    )


def sign_in(
    session: Session,
    settings: Settings,
    clock: Clock,
    *,
    email: str,
    password: str,
    totp_code: str | None,
    ip: str,
    user_agent: str,
) -> StaffSignIn:
    """Check the password (and the code, if given). Throttled per account and address.

    With ``totp_code=None`` and TOTP required, the session returned is only good
    for ``confirm_code``.
    """
    now = clock.now()
    email = email.strip().lower()
    auth.check_throttle(session, settings, scope=STAFF_SCOPE, identifier=email, ip=ip, now=now)
    member = session.scalar(select(StaffMember).where(StaffMember.email == email))
    ok = auth.verify_secret(member.password_hash if member else None, password)
    if member is None or not member.is_active or not ok:
        _fail(session, email, ip, now, "Enter a correct e-mail address and password.")
    assert member is not None
    need_code = settings.staff_totp_required
    if need_code and totp_code is not None:
        if not auth.totp_matches(member.totp_secret, totp_code, now):
            _fail(
                session,
                email,
                ip,
                now,
                "Enter the 6-digit code from your authenticator app.",
                field="totp_code",
            )
        _code_confirmed(member, now)
        need_code = False
    if not need_code:
        auth.note_attempt(
            session, scope=STAFF_SCOPE, identifier=email, ip=ip, now=now, succeeded=True
        )
        audit.service.record(
            session,
            tag="staff:signed_in",
            actor=_actor(member, ip),
            at=now,
            subject=("staff", member.id),
        )
    new = auth.start_session(
        session,
        actor_type="staff",
        actor_id=member.id,
        now=now,
        lifetime=dt.timedelta(hours=settings.session_hours),
        ip=ip,
        user_agent=user_agent,
        second_factor_pending=need_code,
    )
    return StaffSignIn(
        member,
        new,
        needs_code=need_code,
        needs_enrollment=need_code and member.totp_confirmed_at is None,
    )


def pending_sign_in(session: Session, row: UserSession | None) -> StaffMember | None:
    if row is None or row.actor_type != "staff" or not row.second_factor_pending:
        return None
    return session.get(StaffMember, row.actor_id)


def confirm_code(
    session: Session,
    settings: Settings,
    clock: Clock,
    *,
    row: UserSession,
    code: str,
    ip: str,
    user_agent: str,
) -> auth.NewSession:
    """Second step: a correct code replaces the half-signed-in session with a full one."""
    now = clock.now()
    member = pending_sign_in(session, row)
    if member is None:
        raise DomainError("Your sign-in expired. Please sign in again.", code=Code.SIGN_IN_EXPIRED)
    auth.check_throttle(
        session, settings, scope=STAFF_SCOPE, identifier=member.email, ip=ip, now=now
    )
    if not auth.totp_matches(member.totp_secret, code, now):
        _fail(
            session,
            member.email,
            ip,
            now,
            "Enter the 6-digit code from your authenticator app.",
            field="totp_code",
        )
    _code_confirmed(member, now)
    auth.note_attempt(
        session, scope=STAFF_SCOPE, identifier=member.email, ip=ip, now=now, succeeded=True
    )
    auth.end_session(session, row)
    audit.service.record(
        session,
        tag="staff:signed_in",
        actor=_actor(member, ip),
        at=now,
        subject=("staff", member.id),
    )
    return auth.start_session(
        session,
        actor_type="staff",
        actor_id=member.id,
        now=now,
        lifetime=dt.timedelta(hours=settings.session_hours),
        ip=ip,
        user_agent=user_agent,
    )


def sign_out(session: Session, clock: Clock, row: UserSession, ip: str) -> None:
    member = session.get(StaffMember, row.actor_id)
    auth.end_session(session, row)
    if member is not None:
        audit.service.record(
            session,
            tag="staff:signed_out",
            actor=_actor(member, ip),
            at=clock.now(),
            subject=("staff", member.id),
        )


def _code_confirmed(member: StaffMember, now: dt.datetime) -> None:
    if member.totp_confirmed_at is None:
        member.totp_confirmed_at = now


def _actor(member: StaffMember, ip: str) -> AuditActor:
    return AuditActor("staff", member.id, member.email, ip)


def _fail(
    session: Session, email: str, ip: str, now: dt.datetime, message: str, field: str = "email"
) -> None:
    auth.note_attempt(session, scope=STAFF_SCOPE, identifier=email, ip=ip, now=now, succeeded=False)
    audit.service.record(
        session,
        tag="staff:sign_in_failed",
        actor=AuditActor("anonymous", None, email, ip),
        at=now,
        data={"email": email},
    )
    raise auth.SignInFailed(message, fields={field: message})


def list_facilities_for(session: Session, facility_ids: list[int] | None) -> list[Facility]:
    query = select(Facility).order_by(Facility.name)
    if facility_ids is not None:
        query = query.where(Facility.id.in_(facility_ids))
    return list(session.scalars(query))


def staff_of_facility(
    session: Session, facility_id: int
) -> list[tuple[StaffMember, list[dict[str, object]]]]:
    rows = session.execute(
        select(StaffMember, StaffRole)
        .join(StaffRole, StaffRole.staff_id == StaffMember.id)
        .where(StaffRole.facility_id == facility_id)
        .order_by(StaffMember.name)
    ).all()
    grouped: dict[int, tuple[StaffMember, list[dict[str, object]]]] = {}
    for member, role in rows:
        grouped.setdefault(member.id, (member, []))[1].append(
            {"facility_id": facility_id, "role": role.role.value}
        )
    return list(grouped.values())
