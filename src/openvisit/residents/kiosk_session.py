"""A resident's session on a kiosk: signing in with booking number and PIN, and out."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

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
from openvisit.residents.pins import normalize_pin, pin_problem
from openvisit.residents.service import (
    RESIDENT_SCOPE,
    normalize_booking_number,
    pin_account,
    record_event,
)


class KioskOutOfService(DomainError):
    code = Code.KIOSK_OUT_OF_SERVICE
    message = "This kiosk is out of service. Please use another kiosk or ask an officer."


class ResidentAtLobbyKiosk(DomainError):
    code = Code.FORBIDDEN
    keep_changes = True  # its audit record
    message = (
        "This is a lobby terminal, for visitors. Residents sign in at a kiosk in their own "
        "housing unit."
    )


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

    Only at a housing kiosk (a lobby terminal is the visitors' side of on-site visits),
    and only residents of its unit who are in custody. Every refusal after the PIN is
    checked answers the same, so that none tells a guesser the PIN was right. Throttled
    per booking number with an exponential backoff (auth.service, the throttling rule).
    """
    now = clock.now()
    kiosk = kiosks.get_device(session, ctx.kiosk_id)
    if not kiosk.in_service:
        raise KioskOutOfService()
    number = normalize_booking_number(booking_number)[:40]
    if kiosk.location != KioskLocation.HOUSING:
        # Refused before anyone is looked up, so it says nothing about the resident.
        _audit_refusal(session, kiosk, ctx, number, now, "lobby_kiosk")
        raise ResidentAtLobbyKiosk()
    tries = auth.Tries(RESIDENT_SCOPE, pin_account(kiosk.facility_id, number), ctx.ip, now)
    auth.check_throttle(session, settings, tries, backoff=True)
    resident = session.scalar(
        select(Resident).where(
            Resident.facility_id == kiosk.facility_id, Resident.booking_number == number
        )
    )
    why = _why_refused(kiosk, resident, normalize_pin(pin))
    if resident is not None and why == "pin_too_weak":
        _expire_weak_pin(session, kiosk, ctx, resident, now)
    auth.note_attempt(session, settings, tries, succeeded=resident is not None and why is None)
    if resident is None or why is not None:
        _audit_refusal(session, kiosk, ctx, number, now, why or "wrong_credentials")
        raise auth.SignInFailed(REFUSED, fields={"booking_number": REFUSED})
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


# The one answer to a refused booking number and PIN: an unknown booking number, a wrong
# PIN, a resident of another unit or no longer in custody, a PIN too weak to keep. Only
# the audit log says which.
REFUSED = (
    "Check your booking number and PIN and try again. "
    "Residents sign in at a kiosk in their own housing unit."
)


def _why_refused(kiosk: Kiosk, resident: Resident | None, digits: str) -> str | None:
    # The PIN is checked whatever else is wrong, so that every refusal takes as long.
    pin_ok = auth.verify_secret(resident.pin_hash if resident else None, digits)
    if resident is None or not pin_ok:
        return "wrong_credentials"
    if resident.custody_status != CustodyStatus.IN_CUSTODY:
        return "not_in_custody"
    if resident.unit_id is None or resident.unit_id != kiosk.unit_id:
        return "other_unit"
    problem = pin_problem(
        digits, booking_number=resident.booking_number, date_of_birth=resident.date_of_birth
    )
    if problem is not None:
        return "pin_too_weak"
    return None


def _expire_weak_pin(
    session: Session, kiosk: Kiosk, ctx: KioskContext, resident: Resident, now: dt.datetime
) -> None:
    """A PIN set under the old rules (4 digits, or guessable) is not accepted: the right one
    is answered like a wrong one and cleared, so that staff set a new one. A hash doesn't
    say how long its PIN was, so this is the first moment anyone can tell."""
    resident.pin_hash = None
    resident.updated_at = now
    session.flush()
    record_event(
        session,
        "resident:pin_cleared",
        AuditActor("kiosk", kiosk.id, f"kiosk#{kiosk.id}", ctx.ip),
        now,
        resident,
        {"why": "too_weak", "kiosk_id": kiosk.id},
    )


def _audit_refusal(
    session: Session, kiosk: Kiosk, ctx: KioskContext, number: str, now: dt.datetime, why: str
) -> None:
    audit.service.record(
        session,
        tag="resident:sign_in_failed",
        actor=AuditActor("kiosk", kiosk.id, f"kiosk#{kiosk.id}", ctx.ip),
        at=now,
        facility_id=kiosk.facility_id,
        subject=("kiosk", kiosk.id),
        data={"booking_number": number, "why": why},
    )


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
