"""`openvisit demo`: a demo facility with ready logins, for trying OpenVisit locally.

Idempotent: a second run finds the demo facility and only prints the logins
again (with a fresh kiosk activation link, since a credential is shown once).
"""

from __future__ import annotations

import datetime as dt

import pyotp
from sqlalchemy import select
from sqlalchemy.orm import Session

from openvisit import audit
from openvisit.approvals.models import Approval, ApprovalStatus
from openvisit.audit.service import SYSTEM, AuditActor
from openvisit.auth.permissions import StaffRoleName
from openvisit.auth.service import hash_secret, new_token, token_digest, totp_uri
from openvisit.billing import lobby
from openvisit.clock import Clock, SystemClock
from openvisit.config import Settings
from openvisit.db import make_engine, make_sessionmaker, transaction
from openvisit.errors import Code, DomainError
from openvisit.facilities.models import (
    Facility,
    FacilityKind,
    FacilitySettings,
    HousingUnit,
    Kiosk,
    KioskLocation,
    VisitingHours,
)
from openvisit.people.models import IdentityStatus, StaffMember, StaffRole, Visitor
from openvisit.people.verifications import record_verification
from openvisit.residents.models import Resident
from openvisit.scheduling import service as scheduling
from openvisit.visits import states
from openvisit.visits.deadlines import schedule_deadlines
from openvisit.visits.models import Visit, VisitState, VisitType
from openvisit.web.render import local_datetime

FACILITY = "Riverside County Jail (demo)"
PASSWORD = "demo-visit-2026"  # noqa: S105 - printed for the demo on purpose
RESIDENT_PIN = "246810"
STAFF = [
    ("officer@demo.openvisit", "Olivia Officer", StaffRoleName.OFFICER),
    ("scheduler@demo.openvisit", "Sam Scheduler", StaffRoleName.SCHEDULER),
    ("investigator@demo.openvisit", "Ivan Investigator", StaffRoleName.INVESTIGATOR),
    ("admin@demo.openvisit", "Ada Admin", StaffRoleName.FACILITY_ADMIN),
]
VISITOR = "visitor@demo.openvisit"
RESIDENTS = [
    ("D-1001", "James", "Lopez", "Unit A"),
    ("D-1002", "Robert", "Chen", "Unit A"),
    ("D-1003", "Michael", "Okafor", "Unit B"),
    ("D-1004", "David", "Novak", "Unit B"),
    ("D-1005", "Luis", "Garcia", "Unit C"),
    ("D-1006", "Kevin", "Brown", "Unit C"),
]


def seed_demo(settings: Settings) -> str:
    if settings.env == "production":
        raise DomainError("The demo refuses to run in production.", code=Code.DEMO_IN_PRODUCTION)
    settings.ensure_secret_key()
    engine = make_engine(settings.database_url)
    factory = make_sessionmaker(engine)
    with transaction(factory) as session:
        facility = session.scalar(select(Facility).where(Facility.name == FACILITY))
        created = facility is None
        if facility is None:
            facility = _build(session)
        kiosk_code = _fresh_kiosk_code(session, facility)
        visit = _visit_to_join_now(session, facility)
        text = _logins(session, settings, facility, kiosk_code, created, visit)
    engine.dispose()
    return text


def _build(session: Session) -> Facility:
    now = SystemClock().now()
    facility = Facility(
        name=FACILITY,
        timezone="America/New_York",
        kind=FacilityKind.JAIL,
        average_daily_population=420,
        phone="555-0100",
        created_at=now,
    )
    session.add(facility)
    session.flush()
    # Short notice so that a demo booking can be made for today.
    session.add(FacilitySettings(facility_id=facility.id, min_notice_minutes=0))
    units = {}
    for name in ("Unit A", "Unit B", "Unit C"):
        unit = HousingUnit(facility_id=facility.id, name=name, created_at=now)
        session.add(unit)
        session.flush()
        units[name] = unit
        for weekday in range(7):
            # Generous hours so the demo has open slots whenever it is tried.
            session.add(
                VisitingHours(
                    unit_id=unit.id,
                    weekday=weekday,
                    start_time=dt.time(0, 0),
                    end_time=dt.time(23, 59),
                )
            )
        session.add(
            Kiosk(
                facility_id=facility.id,
                unit_id=unit.id,
                name=f"{name} kiosk",
                location=KioskLocation.HOUSING,
                created_at=now,
            )
        )
    session.add(
        Kiosk(
            facility_id=facility.id,
            unit_id=None,
            name="Lobby terminal 1",
            location=KioskLocation.LOBBY,
            created_at=now,
        )
    )
    for booking, first, last, unit_name in RESIDENTS:
        session.add(
            Resident(
                facility_id=facility.id,
                booking_number=booking,
                first_name=first,
                last_name=last,
                date_of_birth=dt.date(1988, 3, 14),
                unit_id=units[unit_name].id,
                pin_hash=hash_secret(RESIDENT_PIN),
                created_at=now,
                updated_at=now,
            )
        )
    for email, name, role in STAFF:
        _staff(session, now, email, name, role, facility.id)
    visitor = Visitor(
        email=VISITOR,
        password_hash=hash_secret(PASSWORD),
        legal_name="Maria Lopez",
        date_of_birth=dt.date(1984, 7, 2),
        phone="555-0199",
        email_verified_at=now,
        identity_status=IdentityStatus.VERIFIED,
        created_at=now,
    )
    session.add(visitor)
    session.flush()
    record_verification(session, visitor_id=visitor.id, facility_id=facility.id, at=now)
    # Maria is approved to visit James (D-1001), so she can book straight away.
    james = session.scalars(
        select(Resident).where(
            Resident.facility_id == facility.id, Resident.booking_number == "D-1001"
        )
    ).one()
    session.add(
        Approval(
            facility_id=facility.id,
            visitor_id=visitor.id,
            resident_id=james.id,
            relationship="sibling",
            status=ApprovalStatus.APPROVED,
            requested_at=now,
            decided_at=now,
        )
    )
    session.flush()
    # ... and has $20 in her wallet, paid in cash at the lobby, for paid remote visits.

    lobby.record_deposit(
        session,
        SystemClock(),
        SYSTEM,
        facility,
        visitor_id=visitor.id,
        amount_cents=2000,
        method="cash",
        reference="demo",
        idempotency_key="demo-seed-wallet",
    )
    audit.service.record(
        session,
        tag="demo:seeded",
        actor=SYSTEM,
        at=now,
        facility_id=facility.id,
        subject=("facility", facility.id),
    )
    return facility


def _staff(
    session: Session, now: dt.datetime, email: str, name: str, role: StaffRoleName, facility_id: int
) -> None:
    member = StaffMember(
        email=email,
        name=name,
        password_hash=hash_secret(PASSWORD),
        totp_secret=pyotp.random_base32(),
        totp_confirmed_at=now,
        created_at=now,
        joined_at=now,
    )
    session.add(member)
    session.flush()
    session.add(StaffRole(staff_id=member.id, facility_id=facility_id, role=role))


def _fresh_kiosk_code(session: Session, facility: Facility) -> str:
    kiosk = session.scalars(
        select(Kiosk).where(Kiosk.facility_id == facility.id, Kiosk.name == "Unit A kiosk")
    ).one()
    code = new_token()
    kiosk.credential_hash = token_digest(code)
    kiosk.credential_issued_at = SystemClock().now()
    session.flush()
    return code


def _visit_to_join_now(session: Session, facility: Facility) -> Visit | None:
    """Maria's visit with James that can be joined now: the one still open, or a new one."""
    maria = session.scalars(select(Visitor).where(Visitor.email == VISITOR)).one()
    james = session.scalars(
        select(Resident).where(
            Resident.facility_id == facility.id, Resident.booking_number == "D-1001"
        )
    ).one()
    now = SystemClock().now()
    found = session.scalars(
        select(Visit).where(
            Visit.visitor_id == maria.id,
            Visit.resident_id == james.id,
            Visit.state.in_((VisitState.OPEN, VisitState.LIVE)),
            Visit.ends_at > now + dt.timedelta(minutes=5),
        )
    ).first()
    if found is not None:
        return found
    try:
        with session.begin_nested():
            return begin_visit_now(
                session, SystemClock(), SYSTEM, resident_id=james.id, visitor_id=maria.id
            )
    except DomainError:
        return None  # e.g. the demo wallet ran dry: booking still works by hand


def _logins(
    session: Session,
    settings: Settings,
    facility: Facility,
    kiosk_code: str,
    created: bool,
    visit: Visit | None = None,
) -> str:
    base = settings.base_url.rstrip("/")
    state = "created" if created else f"ready (reusing the data in {settings.database_url})"
    lines = [
        "",
        f"OpenVisit demo {state}",
        f"  facility: {facility.name} ({facility.timezone})",
        f"  open {base}/",
        "",
        "  Visitor (identity verified, approved to visit James Lopez, D-1001)",
        f"    {base}/sign-in   e-mail {VISITOR}   password {PASSWORD}",
        "  Resident at the Unit A kiosk",
        f"    1. set up the kiosk: {base}/kiosk/activate?code={kiosk_code}",
        f"    2. then sign in at {base}/kiosk   booking number D-1001   PIN {RESIDENT_PIN}",
        "  Staff (all with password " + PASSWORD + ")",
    ]
    for email, _name, role in STAFF:
        member = session.scalars(select(StaffMember).where(StaffMember.email == email)).one()
        lines.append(f"    {role.value:<15} {base}/staff/sign-in   {email}")
        if settings.staff_totp_required:
            lines.append(f"      TOTP: {totp_uri(member.totp_secret, email)}")
    if not settings.staff_totp_required:
        lines.append(
            "    (staff TOTP is relaxed for the demo: OPENVISIT_STAFF_TOTP_REQUIRED=false)"
        )
    if visit is not None:
        ends = local_datetime(visit.ends_at, facility.timezone, "h:mm a zzz")
        lines += [
            "",
            f"  A video visit you can join right now (until {ends}), from two browser tabs:",
            f"    visitor: sign in as above, then {base}/visits/{visit.id}/check",
            f"    kiosk:   set up and sign in as above, then {base}/kiosk/visits/{visit.id}",
            f"    officer: watch it at {base}/staff/facilities/{facility.id}/monitoring",
        ]
    lines.append("")
    return "\n".join(lines)


def begin_visit_now(
    session: Session,
    clock: Clock,
    actor: AuditActor,
    *,
    resident_id: int,
    visitor_id: int,
    visit_type: VisitType = VisitType.REMOTE,
    seconds: int = 30 * 60,
) -> Visit:
    """A visit that can be joined right away: booked through the real booking path
    (rules, hold, kiosk) at its first free slot, then moved to begin now, last
    ``seconds``, and open its join window. For the demo, media tests and benchmarks;
    the booked length must be at least ``seconds`` so the hold covers it."""

    lengths = sorted(
        session.scalars(
            select(FacilitySettings.visit_lengths_minutes)
            .join(Resident, Resident.facility_id == FacilitySettings.facility_id)
            .where(Resident.id == resident_id)
        ).one()
    )
    length = next((m for m in lengths if m * 60 >= seconds), lengths[-1])
    found = scheduling.availability(
        session,
        clock,
        resident_id=resident_id,
        visitor_id=visitor_id,
        visit_type=visit_type,
        length_minutes=length,
    )
    if not found.slots:
        raise DomainError("No free slot to book the visit.", code=Code.NO_SLOT)
    visit = scheduling.book(
        session,
        clock,
        actor,
        resident_id=resident_id,
        visitor_id=visitor_id,
        visit_type=visit_type,
        start=found.slots[0].start,
        length_minutes=length,
    )
    now = clock.now().replace(microsecond=0)
    visit.starts_at = now
    visit.ends_at = now + dt.timedelta(seconds=min(seconds, length * 60))
    settings = session.get(FacilitySettings, visit.facility_id)
    assert settings is not None
    schedule_deadlines(visit, settings)
    session.flush()
    states.transition(
        session, visit, VisitState.OPEN, actor=actor, at=now, cause="demo", reason="Begins now."
    )
    return visit
