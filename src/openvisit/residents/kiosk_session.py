"""A resident's session on a kiosk: signing in with booking number and PIN, and out."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import NoReturn

from sqlalchemy import select
from sqlalchemy.orm import Session

from openvisit import audit
from openvisit.audit.service import AuditActor
from openvisit.auth import endings
from openvisit.auth import service as auth
from openvisit.clock import Clock
from openvisit.config import Settings
from openvisit.errors import Code, DomainError
from openvisit.facilities import kiosks
from openvisit.facilities.models import Kiosk, KioskLocation
from openvisit.people.context import KioskContext
from openvisit.residents.models import CustodyStatus, Resident
from openvisit.residents.service import normalize_booking_number, record_event

RESIDENT_SCOPE = "resident"


class KioskOutOfService(DomainError):
    code = Code.KIOSK_OUT_OF_SERVICE
    message = "This kiosk is out of service. Please use another kiosk or ask an officer."


@dataclass(frozen=True)
class KioskView:
    kiosk: Kiosk
    resident: Resident | None


def kiosk_view(session: Session, ctx: KioskContext) -> KioskView:
    """The kiosk and the resident signed in on it (a resident no longer in custody is not)."""
    kiosk = kiosks.get_device(session, ctx.kiosk_id)
    resident = session.get(Resident, ctx.resident_id) if ctx.resident_id is not None else None
    if resident is not None and resident.custody_status != CustodyStatus.IN_CUSTODY:
        resident = None
    return KioskView(kiosk, resident)


def resident_sign_in(
    session: Session,
    settings: Settings,
    clock: Clock,
    ctx: KioskContext,
    *,
    booking_number: str,
    pin: str,
) -> Resident:
    """Sign a resident in on this kiosk with booking number and PIN.

    Only residents of the kiosk's facility who are in custody, and for a housing
    kiosk only those of its unit. Throttled per resident and per address.
    """
    now = clock.now()
    kiosk = kiosks.get_device(session, ctx.kiosk_id)
    if not kiosk.in_service:
        raise KioskOutOfService()
    number = normalize_booking_number(booking_number)[:40]
    identifier = f"{kiosk.facility_id}:{number}"
    auth.check_throttle(
        session, settings, scope=RESIDENT_SCOPE, identifier=identifier, ip=ctx.ip, now=now
    )
    resident = session.scalar(
        select(Resident).where(
            Resident.facility_id == kiosk.facility_id, Resident.booking_number == number
        )
    )
    why = _why_refused(kiosk, resident, pin)
    if resident is None or why is not None:
        _refuse(session, kiosk, ctx, identifier, number, now, why or "wrong_credentials")
    auth.note_attempt(
        session, scope=RESIDENT_SCOPE, identifier=identifier, ip=ctx.ip, now=now, succeeded=True
    )
    ctx.session.resident_id = resident.id
    ctx.session.resident_signed_in_at = now
    ctx.resident_id = resident.id
    session.flush()
    record_event(
        session,
        "resident:signed_in",
        AuditActor("resident", resident.id, resident.booking_number, ctx.ip),
        now,
        resident,
        {"kiosk_id": kiosk.id},
    )
    return resident


# Why a sign-in was refused (as audited) -> what the resident is told.
_REFUSALS = {
    "wrong_credentials": "Check your booking number and PIN and try again.",
    "not_in_custody": "You can't sign in here. Ask an officer for help.",
    "other_unit": "This kiosk is for another housing unit. Use the kiosk in your unit.",
}


def _why_refused(kiosk: Kiosk, resident: Resident | None, pin: str) -> str | None:
    # The PIN is checked even for an unknown booking number, so both take as long.
    pin_ok = auth.verify_secret(resident.pin_hash if resident else None, "".join(pin.split()))
    if resident is None or not pin_ok:
        return "wrong_credentials"
    if resident.custody_status != CustodyStatus.IN_CUSTODY:
        return "not_in_custody"
    if kiosk.location == KioskLocation.HOUSING and resident.unit_id != kiosk.unit_id:
        return "other_unit"
    return None


def _refuse(
    session: Session,
    kiosk: Kiosk,
    ctx: KioskContext,
    identifier: str,
    number: str,
    now: dt.datetime,
    why: str,
) -> NoReturn:
    auth.note_attempt(
        session, scope=RESIDENT_SCOPE, identifier=identifier, ip=ctx.ip, now=now, succeeded=False
    )
    audit.service.record(
        session,
        tag="resident:sign_in_failed",
        actor=AuditActor("kiosk", kiosk.id, f"kiosk#{kiosk.id}", ctx.ip),
        at=now,
        facility_id=kiosk.facility_id,
        subject=("kiosk", kiosk.id),
        data={"booking_number": number, "why": why},
    )
    message = _REFUSALS[why]
    raise auth.SignInFailed(message, fields={"booking_number": message})


def resident_sign_out(session: Session, clock: Clock, ctx: KioskContext) -> None:
    resident_id = ctx.session.resident_id
    endings.note(session, "session", ctx.session.id)
    ctx.session.resident_id = None
    ctx.session.resident_signed_in_at = None
    ctx.resident_id = None
    session.flush()
    if resident_id is not None:
        audit.service.record(
            session,
            tag="resident:signed_out",
            actor=AuditActor("resident", resident_id, f"resident#{resident_id}", ctx.ip),
            at=clock.now(),
            facility_id=ctx.facility_id,
            subject=("resident", resident_id),
        )
