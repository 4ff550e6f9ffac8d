"""Professional credentials: an attorney's bar number or a clergy credential, sent to a
facility whose staff verify it (people.reviews decides them)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from openvisit.clock import Clock
from openvisit.config import Settings
from openvisit.errors import Code, Conflict, DomainError, InvalidInput
from openvisit.facilities.models import Facility
from openvisit.people import reviews
from openvisit.people.accounts import check_email_verified, visitor_actor
from openvisit.people.models import ProfessionalCredential, ProfessionKind, ReviewStatus, Visitor


def submit_credential(
    session: Session,
    clock: Clock,
    visitor: Visitor,
    *,
    facility_id: int | None,
    kind: str,
    number: str,
    issuer: str,
    ip: str = "",
) -> ProfessionalCredential:
    """Ask a facility to verify a bar number or clergy credential (again, if sent before)."""
    now = clock.now()
    check_email_verified(visitor)
    errors: dict[str, str] = {}
    facility = None
    try:
        facility = reviews.chosen_facility(session, facility_id)
    except DomainError as exc:
        errors.update(exc.fields)
    try:
        profession = ProfessionKind(kind)
    except ValueError:
        errors["kind"] = "Choose attorney or clergy"
    number = number.strip()
    issuer = " ".join(issuer.split())
    if not number:
        errors["number"] = "Enter your bar number or credential number"
    elif len(number) > 60:
        errors["number"] = "The number must be 60 characters or fewer"
    if not issuer:
        errors["issuer"] = "Enter who issued it, like State Bar of Ohio"
    elif len(issuer) > 120:
        errors["issuer"] = "The issuer must be 120 characters or fewer"
    if errors:
        raise InvalidInput("Some of the information given is not valid.", fields=errors)
    assert facility is not None
    credential = session.scalar(
        select(ProfessionalCredential).where(
            ProfessionalCredential.visitor_id == visitor.id,
            ProfessionalCredential.facility_id == facility.id,
            ProfessionalCredential.kind == profession,
        )
    )
    if credential is None:
        credential = ProfessionalCredential(
            visitor_id=visitor.id,
            facility_id=facility.id,
            kind=profession,
            number=number,
            issuer=issuer,
            status=ReviewStatus.PENDING,
            reason="",
            submitted_at=now,
        )
        session.add(credential)
    else:
        if (
            credential.status == ReviewStatus.VERIFIED
            and credential.number == number
            and credential.issuer == issuer
        ):
            raise Conflict(
                "This credential is already verified at this facility.", code=Code.ALREADY_VERIFIED
            )
        credential.number, credential.issuer = number, issuer
        credential.status, credential.reason = ReviewStatus.PENDING, ""
        credential.submitted_at = now
        credential.reviewed_at, credential.reviewed_by_staff_id = None, None
    session.flush()
    reviews.record(
        session,
        CREDENTIALS,
        credential,
        "submitted",
        visitor_actor(visitor, ip),
        now,
        {"kind": profession.value},
    )
    return credential


def list_my_credentials(
    session: Session, visitor: Visitor
) -> list[tuple[ProfessionalCredential, Facility]]:
    rows = session.execute(
        select(ProfessionalCredential, Facility)
        .join(Facility, Facility.id == ProfessionalCredential.facility_id)
        .where(ProfessionalCredential.visitor_id == visitor.id)
        .order_by(Facility.name, ProfessionalCredential.kind)
    )
    return [(credential, facility) for credential, facility in rows]


def _letter(
    credential: ProfessionalCredential, facility: Facility, settings: Settings
) -> tuple[str, str]:
    what = "bar number" if credential.kind == ProfessionKind.ATTORNEY else "clergy credential"
    if credential.status == ReviewStatus.VERIFIED:
        return (
            f"Your {what} is verified at {facility.name}",
            f"Staff at {facility.name} verified your {what} {credential.number}.\n",
        )
    return f"We couldn't verify your {what}", (
        f"Staff at {facility.name} couldn't verify your {what} {credential.number}.\n\n"
        f"Reason: {credential.reason}\n\nYou can correct it here: "
        f"{settings.base_url}/account/credentials\n"
    )


# Decided with people.reviews.decide.
CREDENTIALS = reviews.Kind(
    ProfessionalCredential,
    missing="We couldn't find that credential.",
    tag="credential",
    subject="credential",
    letter=_letter,
)
