"""Staff accounts: creation, sign-in with a second factor, roles."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from openvisit import audit
from openvisit.audit.service import SYSTEM, AuditActor
from openvisit.auth import service as auth
from openvisit.auth import sign_in as signing_in
from openvisit.auth.models import UserSession
from openvisit.auth.permissions import StaffRoleName
from openvisit.clock import Clock
from openvisit.config import Settings
from openvisit.errors import Code, Conflict, InvalidInput, NotFound
from openvisit.facilities.models import Facility
from openvisit.people.models import StaffMember, StaffRole


@dataclass(frozen=True)
class CreatedStaff:
    member: StaffMember
    otpauth_uri: str


def staff_actor(member: StaffMember, ip: str) -> AuditActor:
    return AuditActor("staff", member.id, member.email, ip)


def _code_accepted(member: StaffMember, now: dt.datetime) -> None:
    """The first good code completes enrolment in the authenticator app."""
    if member.totp_confirmed_at is None:
        member.totp_confirmed_at = now


STAFF = signing_in.AccountType(
    scope="staff", model=StaffMember, actor=staff_actor, code_accepted=_code_accepted
)


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
    email = auth.normalize_email(email)
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
        # Created with a password (the CLI, for the operator's first provider admin).
        joined_at=now,
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
    session: Session, settings: Settings, clock: Clock, attempt: signing_in.Attempt
) -> signing_in.SignedIn[StaffMember]:
    """Check the password, and the code unless the settings relax it. Throttled per
    account and per address. When the code is owed but not given, a page gets a session
    good only for giving it; to the API a missing code is a wrong one."""
    now = clock.now()
    email = attempt.email.strip().lower()
    member = signing_in.check_password(session, settings, STAFF, attempt, email=email, now=now)
    if not member.is_active:
        signing_in.fail(session, settings, STAFF, email, attempt.ip, now, signing_in.NOT_RECOGNISED)
    return signing_in.finish(
        session, settings, STAFF, member, attempt, code_owed=settings.staff_totp_required, now=now
    )


def sign_out(session: Session, clock: Clock, row: UserSession, ip: str) -> None:
    signing_in.sign_out(session, clock, STAFF, row, ip)


def staff_of_facility(
    session: Session, facility_id: int
) -> list[tuple[StaffMember, list[StaffRole]]]:
    """Who works at this facility, by name, each with their roles there."""
    rows = session.execute(
        select(StaffMember, StaffRole)
        .join(StaffRole, StaffRole.staff_id == StaffMember.id)
        .where(StaffRole.facility_id == facility_id)
        .order_by(StaffMember.name)
    )
    grouped: dict[int, tuple[StaffMember, list[StaffRole]]] = {}
    for member, role in rows:
        grouped.setdefault(member.id, (member, []))[1].append(role)
    return list(grouped.values())


def roles_of(session: Session, staff_id: int) -> list[StaffRole]:
    return list(session.scalars(select(StaffRole).where(StaffRole.staff_id == staff_id)))
