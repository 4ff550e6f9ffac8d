"""Visitor accounts: sign-up, e-mail links, sign-in, TOTP, identity checks, credentials.

The JSON API and the pages call these same functions. Every function expects
the request's transaction: it flushes, never commits.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image, UnidentifiedImageError
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from openvisit import audit
from openvisit.audit.service import AuditActor
from openvisit.auth import service as auth
from openvisit.auth.models import AccountToken, UserSession
from openvisit.clock import Clock
from openvisit.config import Settings
from openvisit.errors import (
    Code,
    Conflict,
    DomainError,
    Forbidden,
    InvalidInput,
    NotFound,
    TooManyAttempts,
)
from openvisit.facilities.models import Facility
from openvisit.notifications.service import queue_email
from openvisit.people.models import (
    IdentityStatus,
    IdentitySubmission,
    ProfessionalCredential,
    ProfessionKind,
    ReviewStatus,
    Visitor,
)
from openvisit.people.staff_service import normalize_email
from openvisit.visits.models import Visit, VisitState

if TYPE_CHECKING:
    from openvisit.billing.gateway import PaymentGateway

VISITOR_SCOPE = "visitor"
VERIFY_EMAIL = "verify_email"
RESET_PASSWORD = "reset_password"  # noqa: S105 - a token purpose, not a secret
VERIFY_EMAIL_LIFETIME = dt.timedelta(hours=48)
RESET_PASSWORD_LIFETIME = dt.timedelta(hours=1)
MIN_AGE = 13
MAX_LINKS_PER_HOUR = 3
_PHONE = re.compile(r"^\+?[0-9 ()\-.]{7,30}$")
# Pillow's name for a format -> the type we store and serve it as.
IMAGE_TYPES = {
    "JPEG": ("image/jpeg", ".jpg"),
    "PNG": ("image/png", ".png"),
    "WEBP": ("image/webp", ".webp"),
}
DOCUMENTS = ("photo_id", "selfie")


# --- errors -------------------------------------------------------------------------


class LinkNotValid(DomainError):
    code = Code.TOKEN_INVALID
    message = (
        "This link isn't valid. Check you copied the whole link from the e-mail, "
        "or ask for a new one."
    )


class LinkExpired(DomainError):
    code = Code.TOKEN_EXPIRED
    message = "This link has expired. Ask for a new one."


class LinkUsed(DomainError):
    code = Code.TOKEN_USED
    message = "This link has already been used. Ask for a new one if you still need it."


class FileTooLarge(DomainError):
    code = Code.FILE_TOO_LARGE


class UnsupportedFileType(DomainError):
    code = Code.UNSUPPORTED_FILE_TYPE


class AccountClosed(DomainError):
    code = Code.ACCOUNT_CLOSED
    message = "This account was closed, so it can't be signed in to."


class AlreadyDecided(Conflict):
    code = Code.ALREADY_DECIDED
    message = "A colleague already decided this."


# --- shapes -------------------------------------------------------------------------


@dataclass(frozen=True)
class DateParts:
    """A date of birth as typed: three fields on the page, or split from ISO in the API."""

    day: str
    month: str
    year: str

    @classmethod
    def from_iso(cls, value: str) -> DateParts:
        value = value.strip()
        if not value:
            return cls("", "", "")
        parts = value.split("-")
        if len(parts) != 3:
            return cls("x", "x", "x")  # not a real date
        return cls(parts[2], parts[1], parts[0])


@dataclass(frozen=True)
class Upload:
    """An uploaded file as the route read it: at most ``upload_max_bytes + 1`` bytes."""

    filename: str
    data: bytes


@dataclass(frozen=True)
class VisitorSignIn:
    visitor: Visitor
    session: auth.NewSession
    needs_code: bool  # the session is only good for giving the TOTP code


@dataclass(frozen=True)
class TotpSetup:
    secret: str
    otpauth_uri: str


def _actor(visitor: Visitor, ip: str = "") -> AuditActor:
    return AuditActor("visitor", visitor.id, visitor.email, ip or None)


# --- registration -------------------------------------------------------------------


def check_date_of_birth(parts: DateParts, today: dt.date) -> dt.date:
    """One message per failure (UX §4)."""
    field = "date_of_birth"
    given = [p.strip() for p in (parts.day, parts.month, parts.year)]
    if not any(given):
        raise InvalidInput("Enter your date of birth.", fields={field: "Enter your date of birth"})
    if not all(given):
        msg = "Date of birth must include a day, month and year"
        raise InvalidInput(msg + ".", fields={field: msg})
    try:
        if not all(p.isdigit() for p in given) or len(given[2]) != 4:
            raise ValueError
        born = dt.date(int(given[2]), int(given[1]), int(given[0]))
    except ValueError:
        msg = "Date of birth must be a real date"
        raise InvalidInput(msg + ".", fields={field: msg}) from None
    if born >= today:
        msg = "Date of birth must be in the past"
        raise InvalidInput(msg + ".", fields={field: msg})
    age = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    if age < MIN_AGE:
        msg = f"You must be {MIN_AGE} or older to have an account"
        raise InvalidInput(msg + ".", fields={field: msg})
    return born


def register(
    session: Session,
    clock: Clock,
    settings: Settings,
    *,
    email: str,
    password: str,
    legal_name: str,
    date_of_birth: DateParts,
    phone: str,
    ip: str = "",
) -> Visitor:
    """Create a visitor account and e-mail a link to confirm the address.

    Every field is checked before anything is written, and all problems are
    reported at once.
    """
    now = clock.now()
    errors: dict[str, str] = {}
    first: DomainError | None = None

    def check(fn):  # type: ignore[no-untyped-def]
        nonlocal first
        try:
            return fn()
        except DomainError as exc:
            errors.update(exc.fields)
            first = first or exc
            return None

    clean_email = check(lambda: normalize_email(email))
    name = " ".join(legal_name.split())
    if not name:
        errors["legal_name"] = "Enter your full name as it appears on your photo ID"
    elif len(name) > 200:
        errors["legal_name"] = "Your name must be 200 characters or fewer"
    born = check(lambda: check_date_of_birth(date_of_birth, now.date()))
    phone = phone.strip()
    if phone and not _PHONE.match(phone):
        errors["phone"] = "Enter a phone number, like 555 010 0100 or +1 555 010 0100"
    check(lambda: auth.check_new_password(password, email=clean_email or ""))
    if errors:
        if first is not None and len(errors) == len(first.fields):
            raise first
        raise InvalidInput("Some of the information given is not valid.", fields=errors)
    assert clean_email is not None and born is not None
    existing = session.scalar(select(Visitor).where(Visitor.email == clean_email))
    if existing is not None and existing.closed_at is not None:
        raise Conflict(
            "The account with this e-mail address was closed. Use another e-mail address.",
            code=Code.EMAIL_TAKEN,
            fields={"email": "The account with this e-mail address was closed"},
        )
    if existing is not None:
        raise Conflict(
            "There is already an account with this e-mail address. "
            "Sign in instead, or reset your password if you have forgotten it.",
            code=Code.EMAIL_TAKEN,
            fields={"email": "There is already an account with this e-mail address"},
        )
    visitor = Visitor(
        email=clean_email,
        password_hash=auth.hash_secret(password),
        legal_name=name,
        date_of_birth=born,
        phone=phone,
        identity_status=IdentityStatus.UNVERIFIED,
        created_at=now,
    )
    session.add(visitor)
    session.flush()
    audit.service.record(
        session,
        tag="visitor:registered",
        actor=_actor(visitor, ip),
        at=now,
        subject=("visitor", visitor.id),
    )
    _send_verification(session, clock, settings, visitor)
    return visitor


def _issue_token(
    session: Session, visitor: Visitor, purpose: str, now: dt.datetime, lifetime: dt.timedelta
) -> str:
    token = auth.new_token()
    session.add(
        AccountToken(
            purpose=purpose,
            visitor_id=visitor.id,
            token_hash=auth.token_digest(token),
            created_at=now,
            expires_at=now + lifetime,
        )
    )
    session.flush()
    return token


def _links_sent_lately(session: Session, visitor: Visitor, purpose: str, now: dt.datetime) -> bool:
    """True once MAX_LINKS_PER_HOUR links of this kind went out in the last hour.

    Keeps the reset and verification forms from being used to flood a mailbox.
    """
    sent = session.scalar(
        select(func.count()).where(
            AccountToken.visitor_id == visitor.id,
            AccountToken.purpose == purpose,
            AccountToken.created_at > now - dt.timedelta(hours=1),
        )
    )
    return (sent or 0) >= MAX_LINKS_PER_HOUR


def _use_token(session: Session, token: str, purpose: str, now: dt.datetime) -> AccountToken:
    """Spend a one-use token (compare-and-set, so two clicks can't both succeed)."""
    row = (
        session.scalar(
            select(AccountToken).where(
                AccountToken.token_hash == auth.token_digest(token.strip()),
                AccountToken.purpose == purpose,
            )
        )
        if token.strip()
        else None
    )
    if row is None:
        raise LinkNotValid()
    if row.used_at is not None:
        raise LinkUsed()
    if row.expires_at <= now:
        raise LinkExpired()
    spent = session.execute(
        update(AccountToken)
        .where(AccountToken.id == row.id, AccountToken.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if spent.rowcount != 1:  # type: ignore[attr-defined]
        raise LinkUsed()
    session.refresh(row)
    return row


def _send_verification(
    session: Session, clock: Clock, settings: Settings, visitor: Visitor
) -> None:
    token = _issue_token(session, visitor, VERIFY_EMAIL, clock.now(), VERIFY_EMAIL_LIFETIME)
    queue_email(
        session,
        clock,
        settings,
        to=visitor.email,
        subject="Confirm your e-mail address for OpenVisit",
        body=(
            f"Hello {visitor.legal_name},\n\n"
            "Confirm your e-mail address to finish setting up your OpenVisit account:\n\n"
            f"{settings.base_url}/verify-email?token={token}\n\n"
            "The link works once and expires in 48 hours.\n"
            "If you didn't create an account, you can ignore this e-mail.\n"
        ),
    )


def resend_verification(
    session: Session, clock: Clock, settings: Settings, visitor: Visitor
) -> None:
    if visitor.email_verified_at is not None:
        raise Conflict(
            "Your e-mail address is already confirmed.", code=Code.EMAIL_ALREADY_VERIFIED
        )
    if _links_sent_lately(session, visitor, VERIFY_EMAIL, clock.now()):
        raise TooManyAttempts(
            "We've sent you several links in the last hour. Check your spam folder, "
            "or try again later."
        )
    _send_verification(session, clock, settings, visitor)


def verify_email(session: Session, clock: Clock, *, token: str, ip: str = "") -> Visitor:
    now = clock.now()
    row = _use_token(session, token, VERIFY_EMAIL, now)
    visitor = session.get(Visitor, row.visitor_id)
    if visitor is None:
        raise LinkNotValid()
    if visitor.email_verified_at is None:
        visitor.email_verified_at = now
    audit.service.record(
        session,
        tag="visitor:email_verified",
        actor=_actor(visitor, ip),
        at=now,
        subject=("visitor", visitor.id),
    )
    session.flush()
    return visitor


# --- signing in -----------------------------------------------------------------------


def _fail(
    session: Session, email: str, ip: str, now: dt.datetime, message: str, field: str = "email"
) -> None:
    auth.note_attempt(
        session, scope=VISITOR_SCOPE, identifier=email, ip=ip, now=now, succeeded=False
    )
    audit.service.record(
        session,
        tag="visitor:sign_in_failed",
        actor=AuditActor("anonymous", None, email, ip),
        at=now,
        data={"email": email, "step": field},
    )
    raise auth.SignInFailed(message, fields={field: message})


def _succeed(
    session: Session,
    settings: Settings,
    visitor: Visitor,
    ip: str,
    user_agent: str,
    now: dt.datetime,
) -> auth.NewSession:
    auth.note_attempt(
        session, scope=VISITOR_SCOPE, identifier=visitor.email, ip=ip, now=now, succeeded=True
    )
    audit.service.record(
        session,
        tag="visitor:signed_in",
        actor=_actor(visitor, ip),
        at=now,
        subject=("visitor", visitor.id),
    )
    return auth.start_session(
        session,
        actor_type="visitor",
        actor_id=visitor.id,
        now=now,
        lifetime=dt.timedelta(hours=settings.session_hours),
        ip=ip,
        user_agent=user_agent,
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
    allow_second_step: bool = False,
) -> VisitorSignIn:
    """Check the password, and the TOTP code if the visitor turned it on.

    Throttled per account and per address. When the code is needed but not
    given: with ``allow_second_step`` (pages) a session good only for
    ``confirm_code`` is returned; otherwise (API) the sign-in is refused with
    ``totp_required``.
    """
    now = clock.now()
    email = email.strip().lower()[:254]
    auth.check_throttle(session, settings, scope=VISITOR_SCOPE, identifier=email, ip=ip, now=now)
    visitor = session.scalar(select(Visitor).where(Visitor.email == email))
    ok = auth.verify_secret(visitor.password_hash if visitor else None, password)
    if visitor is None or not ok:
        _fail(session, email, ip, now, "Enter a correct e-mail address and password.")
    assert visitor is not None
    if visitor.closed_at is not None:
        raise AccountClosed()
    if visitor.totp_enabled_at is not None:
        if not totp_code:
            if not allow_second_step:
                raise DomainError(
                    "Enter the 6-digit code from your authenticator app.",
                    code=Code.TOTP_REQUIRED,
                    fields={"totp_code": "Enter the 6-digit code"},
                )
            pending = auth.start_session(
                session,
                actor_type="visitor",
                actor_id=visitor.id,
                now=now,
                lifetime=dt.timedelta(minutes=10),
                ip=ip,
                user_agent=user_agent,
                second_factor_pending=True,
            )
            return VisitorSignIn(visitor, pending, needs_code=True)
        if not auth.totp_matches(visitor.totp_secret, totp_code, now):
            _fail(
                session,
                email,
                ip,
                now,
                "Enter the 6-digit code from your authenticator app.",
                field="totp_code",
            )
    return VisitorSignIn(
        visitor, _succeed(session, settings, visitor, ip, user_agent, now), needs_code=False
    )


def pending_sign_in(session: Session, row: UserSession | None) -> Visitor | None:
    if row is None or row.actor_type != "visitor" or not row.second_factor_pending:
        return None
    return session.get(Visitor, row.actor_id)


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
    """Second step on the pages: a correct code swaps the half session for a full one."""
    now = clock.now()
    visitor = pending_sign_in(session, row)
    if visitor is None:
        raise DomainError("Your sign-in expired. Please sign in again.", code=Code.SIGN_IN_EXPIRED)
    auth.check_throttle(
        session, settings, scope=VISITOR_SCOPE, identifier=visitor.email, ip=ip, now=now
    )
    if not auth.totp_matches(visitor.totp_secret, code, now):
        _fail(
            session,
            visitor.email,
            ip,
            now,
            "Enter the 6-digit code from your authenticator app.",
            field="totp_code",
        )
    auth.end_session(session, row)
    return _succeed(session, settings, visitor, ip, user_agent, now)


def sign_out(
    session: Session, clock: Clock, visitor: Visitor, row: UserSession, ip: str = ""
) -> None:
    auth.end_session(session, row)
    audit.service.record(
        session,
        tag="visitor:signed_out",
        actor=_actor(visitor, ip),
        at=clock.now(),
        subject=("visitor", visitor.id),
    )


# --- password reset ------------------------------------------------------------------


def request_password_reset(
    session: Session, clock: Clock, settings: Settings, *, email: str, ip: str = ""
) -> None:
    """E-mail a reset link if the account exists. Says nothing either way."""
    now = clock.now()
    email = email.strip().lower()[:254]
    visitor = session.scalar(select(Visitor).where(Visitor.email == email)) if email else None
    if (
        visitor is None
        or visitor.closed_at is not None
        or _links_sent_lately(session, visitor, RESET_PASSWORD, now)
    ):
        return
    token = _issue_token(session, visitor, RESET_PASSWORD, now, RESET_PASSWORD_LIFETIME)
    queue_email(
        session,
        clock,
        settings,
        to=visitor.email,
        subject="Reset your OpenVisit password",
        body=(
            f"Hello {visitor.legal_name},\n\n"
            "Someone (we hope you) asked to reset the password of your OpenVisit account. "
            "Choose a new password here:\n\n"
            f"{settings.base_url}/reset-password?token={token}\n\n"
            "The link works once and expires in 1 hour.\n"
            "If you didn't ask, you can ignore this e-mail: your password stays the same.\n"
        ),
    )
    audit.service.record(
        session,
        tag="visitor:password_reset_requested",
        actor=_actor(visitor, ip),
        at=now,
        subject=("visitor", visitor.id),
    )


def check_reset_link(session: Session, clock: Clock, *, token: str) -> None:
    """For the page: refuse a bad link before asking for a new password."""
    row = (
        session.scalar(
            select(AccountToken).where(
                AccountToken.token_hash == auth.token_digest(token.strip()),
                AccountToken.purpose == RESET_PASSWORD,
            )
        )
        if token.strip()
        else None
    )
    if row is None:
        raise LinkNotValid()
    if row.used_at is not None:
        raise LinkUsed()
    if row.expires_at <= clock.now():
        raise LinkExpired()


def complete_password_reset(
    session: Session, clock: Clock, *, token: str, password: str, ip: str = ""
) -> Visitor:
    """Set a new password from a one-use link and sign the visitor out everywhere."""
    now = clock.now()
    check_reset_link(session, clock, token=token)
    row = session.scalar(
        select(AccountToken).where(AccountToken.token_hash == auth.token_digest(token.strip()))
    )
    assert row is not None
    visitor = session.get(Visitor, row.visitor_id)
    if visitor is None:
        raise LinkNotValid()
    auth.check_new_password(password, email=visitor.email)
    _use_token(session, token, RESET_PASSWORD, now)
    visitor.password_hash = auth.hash_secret(password)
    # The link proved the visitor reads this mailbox.
    if visitor.email_verified_at is None:
        visitor.email_verified_at = now
    auth.end_all_sessions(session, "visitor", visitor.id)
    audit.service.record(
        session,
        tag="visitor:password_reset",
        actor=_actor(visitor, ip),
        at=now,
        subject=("visitor", visitor.id),
    )
    session.flush()
    return visitor


# --- TOTP ---------------------------------------------------------------------------


def start_totp(session: Session, visitor: Visitor) -> TotpSetup:
    """Make a new secret to scan; TOTP is on only once a code confirms it."""
    if visitor.totp_enabled_at is not None:
        raise Conflict(
            "Two-step sign-in is already on. Turn it off first to set up a new app.",
            code=Code.TOTP_ALREADY_ENABLED,
        )
    visitor.totp_secret = auth.new_totp_secret()
    session.flush()
    return TotpSetup(visitor.totp_secret, auth.totp_uri(visitor.totp_secret, visitor.email))


def totp_setup(visitor: Visitor) -> TotpSetup | None:
    """The secret being set up, if any (for the page that shows the QR code)."""
    if visitor.totp_enabled_at is not None or not visitor.totp_secret:
        return None
    return TotpSetup(visitor.totp_secret, auth.totp_uri(visitor.totp_secret, visitor.email))


def _code_error() -> InvalidInput:
    msg = "Enter the 6-digit code from your authenticator app"
    return InvalidInput(msg + ".", code=Code.TOTP_CODE_WRONG, fields={"totp_code": msg})


def confirm_totp(
    session: Session, clock: Clock, visitor: Visitor, *, code: str, ip: str = ""
) -> None:
    now = clock.now()
    if visitor.totp_enabled_at is not None:
        raise Conflict("Two-step sign-in is already on.", code=Code.TOTP_ALREADY_ENABLED)
    if not visitor.totp_secret:
        raise Conflict("Start setting up two-step sign-in first.", code=Code.TOTP_NOT_STARTED)
    if not auth.totp_matches(visitor.totp_secret, code, now):
        raise _code_error()
    visitor.totp_enabled_at = now
    audit.service.record(
        session,
        tag="visitor:totp_enabled",
        actor=_actor(visitor, ip),
        at=now,
        subject=("visitor", visitor.id),
    )
    session.flush()


def disable_totp(
    session: Session, clock: Clock, visitor: Visitor, *, code: str, ip: str = ""
) -> None:
    now = clock.now()
    if visitor.totp_enabled_at is None:
        raise Conflict("Two-step sign-in is not on.", code=Code.TOTP_NOT_ENABLED)
    if not auth.totp_matches(visitor.totp_secret, code, now):
        raise _code_error()
    visitor.totp_enabled_at = None
    visitor.totp_secret = None
    audit.service.record(
        session,
        tag="visitor:totp_disabled",
        actor=_actor(visitor, ip),
        at=now,
        subject=("visitor", visitor.id),
    )
    session.flush()


# --- facilities a visitor may choose ------------------------------------------------


def list_facilities(session: Session) -> list[Facility]:
    return list(session.scalars(select(Facility).order_by(Facility.name)))


def _facility(session: Session, facility_id: int | None) -> Facility:
    facility = session.get(Facility, facility_id) if facility_id else None
    if facility is None:
        raise InvalidInput(
            "Choose the facility you want to visit.", fields={"facility_id": "Choose a facility"}
        )
    return facility


# --- identity verification -----------------------------------------------------------


def _check_image(settings: Settings, upload: Upload, field: str, label: str) -> tuple[str, str]:
    """(media type, extension) if the file really is a JPEG, PNG or WebP image."""
    if not upload.data:
        msg = f"Choose a photo of {label}"
        raise InvalidInput(msg + ".", fields={field: msg})
    if len(upload.data) > settings.upload_max_bytes:
        limit_mb = settings.upload_max_bytes / (1024 * 1024)
        msg = f"The photo of {label} must be smaller than {limit_mb:g} MB"
        raise FileTooLarge(msg + ".", fields={field: msg})
    msg = f"The photo of {label} must be a JPEG, PNG or WebP image"
    try:
        with Image.open(io.BytesIO(upload.data)) as image:
            kind = image.format
            image.verify()
    except (
        UnidentifiedImageError,
        OSError,
        SyntaxError,
        ValueError,
        EOFError,
        Image.DecompressionBombError,
    ):
        raise UnsupportedFileType(msg + ".", fields={field: msg}) from None
    if kind not in IMAGE_TYPES:
        raise UnsupportedFileType(msg + ".", fields={field: msg})
    return IMAGE_TYPES[kind]


def _private_dir(settings: Settings) -> Path:
    directory = settings.upload_dir
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(directory, 0o700)
    os.chmod(directory.parent, 0o700)  # var/private
    return directory


def _write_private(directory: Path, extension: str, data: bytes) -> str:
    name = secrets.token_hex(16) + extension
    fd = os.open(directory / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    return name


def submit_identity(
    session: Session,
    clock: Clock,
    settings: Settings,
    visitor: Visitor,
    *,
    facility_id: int | None,
    photo_id: Upload,
    selfie: Upload,
    ip: str = "",
) -> IdentitySubmission:
    """Store a photo ID and a selfie for staff of the chosen facility to check."""
    now = clock.now()
    if visitor.email_verified_at is None:
        raise Forbidden(
            "Confirm your e-mail address first: use the link we sent you.",
            code=Code.EMAIL_NOT_VERIFIED,
        )
    if visitor.identity_status == IdentityStatus.VERIFIED:
        raise Conflict("Your identity is already confirmed.", code=Code.ALREADY_VERIFIED)
    problems: list[DomainError] = []
    checked: dict[str, tuple[str, str]] = {}
    for field, upload, label in (
        ("photo_id", photo_id, "your photo ID"),
        ("selfie", selfie, "yourself"),
    ):
        try:
            checked[field] = _check_image(settings, upload, field, label)
        except DomainError as exc:
            problems.append(exc)
    try:
        facility = _facility(session, facility_id)
    except DomainError as exc:
        problems.append(exc)
    if problems:
        # Every problem is reported; the error's code is theirs if they share one.
        first = problems[0]
        for other in problems[1:]:
            first.fields = first.fields | other.fields
        if any(type(p) is not type(first) for p in problems):
            raise InvalidInput("Some of the information given is not valid.", fields=first.fields)
        raise first

    directory = _private_dir(settings)
    written: list[Path] = []
    try:
        photo_name = _write_private(directory, checked["photo_id"][1], photo_id.data)
        written.append(directory / photo_name)
        selfie_name = _write_private(directory, checked["selfie"][1], selfie.data)
        written.append(directory / selfie_name)
        session.execute(
            update(IdentitySubmission)
            .where(
                IdentitySubmission.visitor_id == visitor.id,
                IdentitySubmission.status == ReviewStatus.PENDING,
            )
            .values(
                status=ReviewStatus.REJECTED, reason="Replaced by a newer upload.", reviewed_at=now
            )
            .execution_options(synchronize_session=False)
        )
        submission = IdentitySubmission(
            visitor_id=visitor.id,
            facility_id=facility.id,
            photo_id_file=photo_name,
            photo_id_type=checked["photo_id"][0],
            selfie_file=selfie_name,
            selfie_type=checked["selfie"][0],
            status=ReviewStatus.PENDING,
            reason="",
            submitted_at=now,
        )
        session.add(submission)
        visitor.identity_status = IdentityStatus.PENDING
        session.flush()
        audit.service.record(
            session,
            tag="identity:submitted",
            actor=_actor(visitor, ip),
            at=now,
            facility_id=facility.id,
            subject=("identity_submission", submission.id),
        )
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return submission


def latest_identity_submission(session: Session, visitor: Visitor) -> IdentitySubmission | None:
    return session.scalar(
        select(IdentitySubmission)
        .where(IdentitySubmission.visitor_id == visitor.id)
        .order_by(IdentitySubmission.submitted_at.desc(), IdentitySubmission.id.desc())
        .limit(1)
    )


def list_identity_reviews(
    session: Session, facility: Facility
) -> list[tuple[IdentitySubmission, Visitor]]:
    """Pending submissions for this facility, oldest first. Caller authorized the facility."""
    rows = session.execute(
        select(IdentitySubmission, Visitor)
        .join(Visitor, Visitor.id == IdentitySubmission.visitor_id)
        .where(
            IdentitySubmission.facility_id == facility.id,
            IdentitySubmission.status == ReviewStatus.PENDING,
        )
        .order_by(IdentitySubmission.submitted_at, IdentitySubmission.id)
    )
    return [(s, v) for s, v in rows]


def access_identity_review(
    session: Session, facility: Facility, review_id: int
) -> tuple[IdentitySubmission, Visitor]:
    """A submission of this facility; another facility's answers "not found"."""
    submission = session.scalar(
        select(IdentitySubmission).where(
            IdentitySubmission.id == review_id, IdentitySubmission.facility_id == facility.id
        )
    )
    if submission is None:
        raise NotFound("We couldn't find that identity check.")
    visitor = session.get(Visitor, submission.visitor_id)
    assert visitor is not None
    return submission, visitor


def identity_document(
    session: Session,
    clock: Clock,
    settings: Settings,
    actor: AuditActor,
    facility: Facility,
    review_id: int,
    which: str,
) -> tuple[Path, str]:
    """The private file to stream to a reviewer, and its type. Each viewing is audited."""
    if which not in DOCUMENTS:
        raise NotFound("We couldn't find that document.")
    submission, _visitor = access_identity_review(session, facility, review_id)
    name, media_type = (
        (submission.photo_id_file, submission.photo_id_type)
        if which == "photo_id"
        else (submission.selfie_file, submission.selfie_type)
    )
    path = settings.upload_dir / name
    if not path.is_file():
        raise NotFound("That document is no longer stored.", code=Code.DOCUMENT_MISSING)
    audit.service.record(
        session,
        tag="identity:document_viewed",
        actor=actor,
        at=clock.now(),
        facility_id=facility.id,
        subject=("identity_submission", submission.id),
        data={"document": which},
    )
    return path, media_type


def _check_reason(verified: bool, reason: str) -> str:
    reason = reason.strip()
    if verified:
        return ""
    if not reason:
        msg = "Enter the reason, which the visitor will see"
        raise InvalidInput(msg + ".", fields={"reason": msg})
    if len(reason) > 500:
        msg = "The reason must be 500 characters or fewer"
        raise InvalidInput(msg + ".", fields={"reason": msg})
    return reason


def decide_identity(
    session: Session,
    clock: Clock,
    settings: Settings,
    actor: AuditActor,
    facility: Facility,
    review_id: int,
    *,
    verified: bool,
    reason: str = "",
) -> IdentitySubmission:
    """Verify or reject a pending submission; tell the visitor by e-mail."""
    now = clock.now()
    reason = _check_reason(verified, reason)
    submission, visitor = access_identity_review(session, facility, review_id)
    status = ReviewStatus.VERIFIED if verified else ReviewStatus.REJECTED
    decided = session.execute(
        update(IdentitySubmission)
        .where(
            IdentitySubmission.id == submission.id,
            IdentitySubmission.status == ReviewStatus.PENDING,
        )
        .values(status=status, reason=reason, reviewed_at=now, reviewed_by_staff_id=actor.id)
        .execution_options(synchronize_session=False)
    )
    if decided.rowcount != 1:  # type: ignore[attr-defined]
        raise AlreadyDecided()
    session.refresh(submission)
    visitor.identity_status = IdentityStatus.VERIFIED if verified else IdentityStatus.REJECTED
    audit.service.record(
        session,
        tag=f"identity:{status.value}",
        actor=actor,
        at=now,
        facility_id=facility.id,
        subject=("identity_submission", submission.id),
        data={"visitor_id": visitor.id, "reason": reason},
    )
    if verified:
        subject = "Your identity is confirmed"
        text = (
            "Staff at {f} checked your photos and confirmed your identity.\n\n"
            "You can now ask to be approved to visit someone: {url}/account\n"
        )
    else:
        subject = "We couldn't confirm your identity"
        text = (
            "Staff at {f} couldn't confirm your identity from the photos you sent.\n\n"
            "Reason: {reason}\n\nYou can send new photos here: {url}/account/identity\n"
        )
    queue_email(
        session,
        clock,
        settings,
        to=visitor.email,
        subject=subject,
        body=f"Hello {visitor.legal_name},\n\n"
        + text.format(f=facility.name, reason=reason, url=settings.base_url),
    )
    session.flush()
    return submission


# --- professional credentials ---------------------------------------------------------


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
    if visitor.email_verified_at is None:
        raise Forbidden(
            "Confirm your e-mail address first: use the link we sent you.",
            code=Code.EMAIL_NOT_VERIFIED,
        )
    errors: dict[str, str] = {}
    facility = None
    try:
        facility = _facility(session, facility_id)
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
    audit.service.record(
        session,
        tag="credential:submitted",
        actor=_actor(visitor, ip),
        at=now,
        facility_id=facility.id,
        subject=("credential", credential.id),
        data={"kind": profession.value},
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
    return [(c, f) for c, f in rows]


def list_credential_reviews(
    session: Session, facility: Facility
) -> list[tuple[ProfessionalCredential, Visitor]]:
    rows = session.execute(
        select(ProfessionalCredential, Visitor)
        .join(Visitor, Visitor.id == ProfessionalCredential.visitor_id)
        .where(
            ProfessionalCredential.facility_id == facility.id,
            ProfessionalCredential.status == ReviewStatus.PENDING,
        )
        .order_by(ProfessionalCredential.submitted_at, ProfessionalCredential.id)
    )
    return [(c, v) for c, v in rows]


def decide_credential(
    session: Session,
    clock: Clock,
    settings: Settings,
    actor: AuditActor,
    facility: Facility,
    review_id: int,
    *,
    verified: bool,
    reason: str = "",
) -> ProfessionalCredential:
    now = clock.now()
    reason = _check_reason(verified, reason)
    credential = session.scalar(
        select(ProfessionalCredential).where(
            ProfessionalCredential.id == review_id,
            ProfessionalCredential.facility_id == facility.id,
        )
    )
    if credential is None:
        raise NotFound("We couldn't find that credential.")
    status = ReviewStatus.VERIFIED if verified else ReviewStatus.REJECTED
    decided = session.execute(
        update(ProfessionalCredential)
        .where(
            ProfessionalCredential.id == credential.id,
            ProfessionalCredential.status == ReviewStatus.PENDING,
        )
        .values(status=status, reason=reason, reviewed_at=now, reviewed_by_staff_id=actor.id)
        .execution_options(synchronize_session=False)
    )
    if decided.rowcount != 1:  # type: ignore[attr-defined]
        raise AlreadyDecided()
    session.refresh(credential)
    visitor = session.get(Visitor, credential.visitor_id)
    assert visitor is not None
    audit.service.record(
        session,
        tag=f"credential:{status.value}",
        actor=actor,
        at=now,
        facility_id=facility.id,
        subject=("credential", credential.id),
        data={"visitor_id": visitor.id, "reason": reason},
    )
    what = "bar number" if credential.kind == ProfessionKind.ATTORNEY else "clergy credential"
    if verified:
        subject = f"Your {what} is verified at {facility.name}"
        text = f"Staff at {facility.name} verified your {what} {credential.number}.\n"
    else:
        subject = f"We couldn't verify your {what}"
        text = (
            f"Staff at {facility.name} couldn't verify your {what} {credential.number}.\n\n"
            f"Reason: {reason}\n\nYou can correct it here: "
            f"{settings.base_url}/account/credentials\n"
        )
    queue_email(
        session,
        clock,
        settings,
        to=visitor.email,
        subject=subject,
        body=f"Hello {visitor.legal_name},\n\n{text}",
    )
    session.flush()
    return credential


# --- closing an account ------------------------------------------------------------------


@dataclass(frozen=True)
class ClosurePreview:
    """What closing the account would do, for the page that asks to confirm it."""

    available_cents: int
    held_cents: int
    upcoming: list[Visit]  # requested or booked: they will be cancelled
    in_progress: list[Visit]  # open or live: closing must wait until they end


@dataclass(frozen=True)
class ClosedAccount:
    refunded_cents: int
    payout: str  # the gateway's reference, "" when there was nothing to pay back
    cancelled: list[Visit]


class PayoutFailed(DomainError):
    code = Code.PAYOUT_FAILED
    message = (
        "We couldn't pay your balance back just now, so your account is still open and "
        "nothing has changed. Please try again in a few minutes."
    )


_UPCOMING = (VisitState.REQUESTED, VisitState.SCHEDULED)
_IN_PROGRESS = (VisitState.OPEN, VisitState.LIVE)


def closure_preview(session: Session, visitor: Visitor) -> ClosurePreview:
    from openvisit.billing import service as billing
    from openvisit.scheduling import service as scheduling

    mine = scheduling.visits_for_visitor(session, visitor.id)
    summary = billing.wallet_summary(session, visitor.id)
    return ClosurePreview(
        available_cents=summary.available_cents,
        held_cents=summary.held_cents,
        upcoming=[v for v in mine if v.state in _UPCOMING],
        in_progress=[v for v in mine if v.state in _IN_PROGRESS],
    )


def close_account(
    session: Session,
    clock: Clock,
    settings: Settings,
    gateway: PaymentGateway,
    visitor: Visitor,
    *,
    confirm: bool,
    password: str,
    ip: str = "",
) -> ClosedAccount:
    """Close a visitor's account, all in the request's transaction: cancel their upcoming
    visits and give back what was set aside for them, pay the whole balance back through
    the gateway (as a refund on request is), revoke every session so the account can't be
    used again, audit it and e-mail a confirmation.

    The payout is the one step outside the database: if it fails, the error is raised and
    the caller's rollback undoes everything (the account stays open, nothing is cancelled).
    A retry keys the payout the same way while the wallet is unchanged, so a payout that
    went through unseen is not paid twice. A visit in progress, or one whose charge is not
    settled yet, makes it refuse with nothing changed."""
    from openvisit.billing import refunds
    from openvisit.billing import service as billing
    from openvisit.billing.gateway import GatewayConflict, GatewayTimeout
    from openvisit.scheduling import service as scheduling

    now = clock.now()
    actor = _actor(visitor, ip)
    if visitor.closed_at is not None:
        raise AccountClosed()
    if not confirm:
        raise InvalidInput(
            "Choose yes to close your account, or go back to keep it.",
            code=Code.NOT_CONFIRMED,
            fields={"answer": "Choose yes to close your account"},
        )
    auth.check_throttle(
        session, settings, scope=VISITOR_SCOPE, identifier=visitor.email, ip=ip, now=now
    )
    if not auth.verify_secret(visitor.password_hash, password):
        _fail(session, visitor.email, ip, now, "Enter your current password.", field="password")
    # The wallet first: a booking made meanwhile waits for it, then finds no money.
    last_movement = billing.lock_wallet(session, clock, visitor.id)
    mine = scheduling.visits_for_visitor(session, visitor.id)
    if any(v.state in _IN_PROGRESS for v in mine):
        raise Conflict(
            "You have a visit in progress. You can close your account once it has ended.",
            code=Code.VISIT_IN_PROGRESS,
        )
    cancelled = []
    for visit in mine:
        if visit.state in _UPCOMING:
            scheduling.cancel(
                session,
                clock,
                actor,
                visit,
                cause="account_closed",
                reason="The visitor closed their account",
            )
            cancelled.append(visit)
    try:
        txn = refunds.refund_on_closure(
            session, clock, gateway, actor, visitor.id, mine, last_movement=last_movement
        )
    except (GatewayTimeout, GatewayConflict) as exc:
        raise PayoutFailed(gateway_error=exc.code) from exc
    refunded = -billing.wallet_change(session, txn.id, visitor.id) if txn is not None else 0
    payout = refunds.payout_reference(txn) if txn is not None else ""
    visitor.closed_at = now
    auth.end_all_sessions(session, "visitor", visitor.id)
    audit.service.record(
        session,
        tag="visitor:account_closed",
        actor=actor,
        at=now,
        subject=("visitor", visitor.id),
        data={
            "refunded_cents": refunded,
            "payout": payout,
            "cancelled_visit_ids": [v.id for v in cancelled],
        },
    )
    from openvisit.billing.ledger import dollars

    money = (
        f"We are paying {dollars(refunded)}, your whole balance, back to your payment method. "
        "There is no fee."
        if refunded
        else "There was no money in your wallet to pay back."
    )
    visits_words = f"\n\n{len(cancelled)} upcoming visit(s) were cancelled." if cancelled else ""
    queue_email(
        session,
        clock,
        settings,
        to=visitor.email,
        subject="Your OpenVisit account is closed",
        body=(
            f"Hello {visitor.legal_name},\n\nYour OpenVisit account is closed, as you asked. "
            f"{money}{visits_words}\n\nYou can't sign in to it any more. Records of your "
            "visits and payments are kept as the law requires."
        ),
    )
    session.flush()
    return ClosedAccount(refunded_cents=refunded, payout=payout, cancelled=cancelled)
