"""Named personas, built straight into the database for tests.

Riverside Jail (America/New_York) is "our" facility; Lakeview Prison
(America/Chicago) is "the other" one, whose staff must see nothing of ours.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cached_property

import pyotp
from sqlalchemy.orm import Session

from openvisit.auth.service import hash_secret
from openvisit.clock import FrozenClock
from openvisit.config import Settings
from openvisit.facilities.models import (
    Facility,
    FacilityKind,
    FacilitySettings,
    HousingUnit,
    Kiosk,
    KioskLocation,
    VisitingHours,
)
from openvisit.people.models import IdentityStatus, StaffMember, StaffRole, StaffRoleName, Visitor
from openvisit.people.verifications import record_verification
from openvisit.residents.models import Resident

PASSWORD = "correct horse battery"
PIN = "482916"


@dataclass
class StaffPersona:
    member: StaffMember
    password: str = PASSWORD

    def code(self, clock: FrozenClock) -> str:
        return pyotp.TOTP(self.member.totp_secret).at(clock.now())


class Personas:
    def __init__(self, db: Session, clock: FrozenClock, settings: Settings) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings

    # --- facilities ---------------------------------------------------------------
    def make_facility(
        self, name: str, tz: str, kind: FacilityKind = FacilityKind.JAIL, adp: int = 400
    ) -> Facility:
        facility = Facility(
            name=name,
            timezone=tz,
            kind=kind,
            average_daily_population=adp,
            created_at=self.clock.now(),
        )
        self.db.add(facility)
        self.db.flush()
        self.db.add(FacilitySettings(facility_id=facility.id))
        self.db.flush()
        return facility

    def make_unit(self, facility: Facility, name: str, hours: bool = True) -> HousingUnit:
        unit = HousingUnit(facility_id=facility.id, name=name, created_at=self.clock.now())
        self.db.add(unit)
        self.db.flush()
        if hours:
            for weekday in range(7):
                self.db.add(
                    VisitingHours(
                        unit_id=unit.id,
                        weekday=weekday,
                        start_time=dt.time(9),
                        end_time=dt.time(17),
                    )
                )
            self.db.flush()
        return unit

    @cached_property
    def facility(self) -> Facility:
        return self.make_facility("Riverside Jail", "America/New_York")

    @cached_property
    def other_facility(self) -> Facility:
        return self.make_facility("Lakeview Prison", "America/Chicago", FacilityKind.PRISON, 1800)

    @cached_property
    def unit(self) -> HousingUnit:
        return self.make_unit(self.facility, "Unit A")

    @cached_property
    def other_unit(self) -> HousingUnit:
        return self.make_unit(self.other_facility, "Block 1")

    # --- staff --------------------------------------------------------------------
    def make_staff(
        self, email: str, role: StaffRoleName, facility: Facility | None, name: str = ""
    ) -> StaffPersona:
        member = StaffMember(
            email=email,
            name=name or email.split("@")[0].title(),
            password_hash=hash_secret(PASSWORD),
            totp_secret=pyotp.random_base32(),
            totp_confirmed_at=self.clock.now(),
            created_at=self.clock.now(),
            joined_at=self.clock.now(),
        )
        self.db.add(member)
        self.db.flush()
        self.db.add(
            StaffRole(staff_id=member.id, role=role, facility_id=facility.id if facility else None)
        )
        self.db.flush()
        return StaffPersona(member)

    def staff(self, role: StaffRoleName, *, other: bool = False) -> StaffPersona:
        facility = self.other_facility if other else self.facility
        key = f"_staff_{role.value}_{'other' if other else 'own'}"
        if not hasattr(self, key):
            tag = "lakeview" if other else "riverside"
            setattr(
                self,
                key,
                self.make_staff(
                    f"{role.value}@{tag}.example",
                    role,
                    None if role == StaffRoleName.PROVIDER_ADMIN else facility,
                ),
            )
        return getattr(self, key)  # type: ignore[no-any-return]

    @property
    def officer(self) -> StaffPersona:
        return self.staff(StaffRoleName.OFFICER)

    @property
    def scheduler(self) -> StaffPersona:
        return self.staff(StaffRoleName.SCHEDULER)

    @property
    def admin(self) -> StaffPersona:
        return self.staff(StaffRoleName.FACILITY_ADMIN)

    @property
    def investigator(self) -> StaffPersona:
        return self.staff(StaffRoleName.INVESTIGATOR)

    @property
    def other_admin(self) -> StaffPersona:
        return self.staff(StaffRoleName.FACILITY_ADMIN, other=True)

    # --- visitors and residents ---------------------------------------------------
    def make_visitor(
        self,
        email: str,
        *,
        verified: bool = True,
        name: str = "Maria Lopez",
        verified_at: Facility | None = None,
    ) -> Visitor:
        """A visitor whose e-mail is confirmed; ``verified``: their identity was confirmed by
        ``verified_at`` (by default our facility, Riverside), which is where it counts."""
        visitor = Visitor(
            email=email,
            password_hash=hash_secret(PASSWORD),
            legal_name=name,
            date_of_birth=dt.date(1980, 5, 17),
            phone="555-0100",
            email_verified_at=self.clock.now(),
            identity_status=IdentityStatus.VERIFIED if verified else IdentityStatus.UNVERIFIED,
            created_at=self.clock.now(),
        )
        self.db.add(visitor)
        self.db.flush()
        if verified:
            self.verify_identity(visitor, verified_at or self.facility)
        return visitor

    def verify_identity(self, visitor: Visitor, facility: Facility) -> None:
        """Staff of ``facility`` confirmed the visitor's identity."""
        visitor.identity_status = IdentityStatus.VERIFIED
        record_verification(
            self.db, visitor_id=visitor.id, facility_id=facility.id, at=self.clock.now()
        )

    @cached_property
    def visitor(self) -> Visitor:
        """Maria: e-mail confirmed, identity verified."""
        return self.make_visitor("maria@example.com")

    @cached_property
    def new_visitor(self) -> Visitor:
        """Sam: signed up, identity not yet checked."""
        return self.make_visitor("sam@example.com", verified=False, name="Sam Carter")

    def make_resident(
        self,
        facility: Facility,
        unit: HousingUnit,
        booking: str,
        first: str = "James",
        last: str = "Lopez",
    ) -> Resident:
        resident = Resident(
            facility_id=facility.id,
            unit_id=unit.id,
            booking_number=booking,
            first_name=first,
            last_name=last,
            date_of_birth=dt.date(1990, 1, 2),
            pin_hash=hash_secret(PIN),
            created_at=self.clock.now(),
            updated_at=self.clock.now(),
        )
        self.db.add(resident)
        self.db.flush()
        return resident

    @cached_property
    def resident(self) -> Resident:
        return self.make_resident(self.facility, self.unit, "B-1001")

    @cached_property
    def other_resident(self) -> Resident:
        return self.make_resident(self.other_facility, self.other_unit, "L-2002", "Ann", "Ray")

    @cached_property
    def kiosk(self) -> Kiosk:
        kiosk = Kiosk(
            facility_id=self.facility.id,
            unit_id=self.unit.id,
            name="Unit A kiosk 1",
            location=KioskLocation.HOUSING,
            created_at=self.clock.now(),
        )
        self.db.add(kiosk)
        self.db.flush()
        return kiosk

    def commit(self) -> None:
        """Make what was built visible to the app (a savepoint of the test transaction)."""
        self.db.commit()


# --- signing in through the API ------------------------------------------------------


def sign_in_staff(client, persona: StaffPersona, clock: FrozenClock) -> str:  # type: ignore[no-untyped-def]
    """Sign a staff persona in; set the CSRF header for later calls; return the token."""
    response = client.post(
        "/api/v1/staff-session",
        json={
            "email": persona.member.email,
            "password": persona.password,
            "totp_code": persona.code(clock),
        },
    )
    assert response.status_code == 200, response.text
    token = response.json()["csrf_token"]
    client.headers["X-CSRF-Token"] = token
    return token


def sign_in_visitor(client, visitor: Visitor, password: str = PASSWORD) -> str:  # type: ignore[no-untyped-def]
    response = client.post(
        "/api/v1/visitor-session", json={"email": visitor.email, "password": password}
    )
    assert response.status_code == 200, response.text
    token = response.json()["csrf_token"]
    client.headers["X-CSRF-Token"] = token
    return token
