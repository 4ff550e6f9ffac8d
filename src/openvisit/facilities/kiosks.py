"""Kiosks: the devices residents (in a housing unit) and on-site visitors (in the lobby)
use, their device credentials and the activation that exchanges one for a session."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from openvisit import audit
from openvisit.audit.service import AuditActor
from openvisit.auth import service as auth
from openvisit.clock import Clock
from openvisit.config import Settings
from openvisit.errors import Code, Conflict, InvalidInput, NotFound
from openvisit.facilities.models import Facility, Kiosk, KioskLocation
from openvisit.facilities.service import check_name, get_owned, record_event
from openvisit.facilities.units import get_unit

KIOSK_SCOPE = "kiosk_device"


@dataclass(frozen=True)
class IssuedCredential:
    kiosk: Kiosk
    token: str  # shown once; only its digest is stored
    activation_url: str


def list_kiosks(session: Session, facility: Facility) -> list[Kiosk]:
    return list(
        session.scalars(select(Kiosk).where(Kiosk.facility_id == facility.id).order_by(Kiosk.name))
    )


def get_kiosk(session: Session, facility: Facility, kiosk_id: int) -> Kiosk:
    return get_owned(session, Kiosk, facility, kiosk_id, "We couldn't find that kiosk.")


def get_device(session: Session, kiosk_id: int) -> Kiosk:
    """The kiosk a device session belongs to (the session names it; no staff access)."""
    kiosk = session.get(Kiosk, kiosk_id)
    if kiosk is None:
        raise NotFound("This kiosk isn't set up. Ask an officer.")
    return kiosk


def create_kiosk(
    session: Session,
    clock: Clock,
    actor: AuditActor,
    facility: Facility,
    *,
    name: str,
    location: str,
    unit_id: int | None,
) -> Kiosk:
    name = check_name(name, "kiosk", 80)
    try:
        where = KioskLocation(location)
    except ValueError:
        raise InvalidInput(
            "Choose housing unit or lobby.", fields={"location": "Choose housing unit or lobby"}
        ) from None
    if where == KioskLocation.LOBBY and unit_id is not None:
        raise InvalidInput(
            "A lobby kiosk is not in a housing unit.",
            code=Code.LOBBY_KIOSK_UNIT,
            fields={"unit_id": "Leave the unit empty for a lobby kiosk"},
        )
    if where == KioskLocation.HOUSING:
        if unit_id is None:
            raise InvalidInput(
                "Choose the housing unit this kiosk is in.",
                code=Code.KIOSK_NEEDS_UNIT,
                fields={"unit_id": "Choose a unit"},
            )
        get_unit(session, facility, unit_id, field="unit_id")
    if session.scalar(
        select(func.count()).where(
            Kiosk.facility_id == facility.id, func.lower(Kiosk.name) == name.lower()
        )
    ):
        raise Conflict(
            f"There is already a kiosk called {name}.",
            code=Code.KIOSK_NAME_TAKEN,
            fields={"name": "Another kiosk already has this name"},
        )
    now = clock.now()
    kiosk = Kiosk(
        facility_id=facility.id, unit_id=unit_id, name=name, location=where, created_at=now
    )
    session.add(kiosk)
    session.flush()
    record_event(
        session,
        "kiosk:created",
        actor,
        now,
        kiosk,
        {"name": name, "location": where.value, "unit_id": unit_id},
    )
    return kiosk


def set_kiosk_service(
    session: Session,
    clock: Clock,
    actor: AuditActor,
    kiosk: Kiosk,
    *,
    in_service: bool,
    reason: str = "",
) -> Kiosk:
    reason = reason.strip()
    if not in_service and not reason:
        raise InvalidInput(
            "Say why the kiosk is out of service.",
            fields={"reason": "Enter why it is out of service"},
        )
    if len(reason) > 300:
        raise InvalidInput(
            "The reason can be at most 300 characters.",
            fields={"reason": "Enter at most 300 characters"},
        )
    before = {"in_service": kiosk.in_service, "reason": kiosk.out_of_service_reason}
    kiosk.in_service = in_service
    kiosk.out_of_service_reason = "" if in_service else reason
    session.flush()
    record_event(
        session,
        "kiosk:service_changed",
        actor,
        clock.now(),
        kiosk,
        {
            "before": before,
            "after": {"in_service": kiosk.in_service, "reason": kiosk.out_of_service_reason},
            "note": reason,
        },
    )
    return kiosk


def issue_kiosk_credential(
    session: Session,
    settings: Settings,
    clock: Clock,
    actor: AuditActor,
    kiosk: Kiosk,
) -> IssuedCredential:
    """A new device credential, replacing (and signing out) any earlier one."""
    now = clock.now()
    replaced = kiosk.credential_hash is not None
    token = auth.new_token()
    kiosk.credential_hash = auth.token_digest(token)
    kiosk.credential_issued_at = now
    kiosk.credential_used_at = None
    auth.end_all_sessions(session, "kiosk", kiosk.id)
    session.flush()
    record_event(session, "kiosk:credential_issued", actor, now, kiosk, {"replaced": replaced})
    return IssuedCredential(kiosk, token, f"{settings.base_url}/kiosk/activate?code={token}")


def revoke_kiosk_credential(
    session: Session, clock: Clock, actor: AuditActor, kiosk: Kiosk
) -> Kiosk:
    """Forget the credential and sign the device out."""
    if kiosk.credential_hash is None:
        raise Conflict(
            "This kiosk has no device credential to revoke.", code=Code.KIOSK_HAS_NO_CREDENTIAL
        )
    kiosk.credential_hash = None
    kiosk.credential_issued_at = None
    kiosk.credential_used_at = None
    auth.end_all_sessions(session, "kiosk", kiosk.id)
    session.flush()
    record_event(session, "kiosk:credential_revoked", actor, clock.now(), kiosk)
    return kiosk


_ACTIVATION_MESSAGES = {
    "invalid": "That activation code isn't valid. Ask an administrator for a new one.",
    "used": "That activation code has already been used. Ask an administrator for a new one.",
    "expired": "That activation code has expired. Ask an administrator for a new one.",
}


def _activation_refusal(settings: Settings, kiosk: Kiosk | None, now: dt.datetime) -> str | None:
    """Why the code of ``kiosk`` can't activate a device now (None: it can)."""
    if kiosk is None:
        return "invalid"
    if kiosk.credential_used_at is not None:
        return "used"
    issued = kiosk.credential_issued_at
    if issued is None or now >= issued + dt.timedelta(hours=settings.kiosk_code_hours):
        return "expired"
    return None


def _spend_code(session: Session, kiosk: Kiosk, now: dt.datetime) -> bool:
    """Mark the code used with a compare-and-set, so that of two devices activating
    with one code at once only one gets a session."""
    spent = session.execute(
        update(Kiosk)
        .where(
            Kiosk.id == kiosk.id,
            Kiosk.credential_hash == kiosk.credential_hash,
            Kiosk.credential_used_at.is_(None),
        )
        .values(credential_used_at=now)
        .execution_options(synchronize_session=False)
    )
    session.refresh(kiosk)
    return bool(getattr(spent, "rowcount", 0) == 1)


@dataclass(frozen=True)
class KioskActivation:
    kiosk: Kiosk
    session: auth.NewSession


def activate_kiosk(
    session: Session, settings: Settings, clock: Clock, *, code: str, ip: str, user_agent: str = ""
) -> KioskActivation:
    """Exchange a device credential for a long-lived kiosk session. Throttled per address.

    A code works once, and for ``settings.kiosk_code_hours`` after it was issued."""
    now = clock.now()
    tries = auth.Tries(KIOSK_SCOPE, ip, ip, now)  # a device has no account: its address is it
    auth.check_throttle(session, settings, tries)
    code = "".join(code.split())
    kiosk = None
    if code:
        kiosk = session.scalar(
            select(Kiosk).where(Kiosk.credential_hash == auth.token_digest(code))
        )
    refusal = _activation_refusal(settings, kiosk, now)
    if refusal is None and kiosk is not None and not _spend_code(session, kiosk, now):
        refusal = "used"  # another device took it a moment ago
    succeeded = kiosk is not None and refusal is None
    auth.note_attempt(session, settings, tries, succeeded=succeeded)
    if kiosk is None or refusal is not None:
        actor = AuditActor("anonymous", None, "kiosk device", ip)
        if kiosk is None:
            audit.service.record(session, tag="kiosk:activation_failed", actor=actor, at=now)
        else:
            record_event(session, "kiosk:activation_failed", actor, now, kiosk, {"code": refusal})
        message = _ACTIVATION_MESSAGES[refusal or "invalid"]
        raise auth.SignInFailed(message, fields={"code": message})
    new = auth.start_session(
        session,
        actor_type="kiosk",
        actor_id=kiosk.id,
        now=now,
        lifetime=dt.timedelta(days=settings.kiosk_session_days),
        ip=ip,
        user_agent=user_agent,
    )
    record_event(
        session,
        "kiosk:activated",
        AuditActor("kiosk", kiosk.id, f"kiosk#{kiosk.id}", ip),
        now,
        kiosk,
        {"in_service": kiosk.in_service},
    )
    return KioskActivation(kiosk, new)
