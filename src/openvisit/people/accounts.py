"""Visitor accounts: sign-up, the e-mailed links (confirming the address, resetting the
password), and an account's end.

The JSON API and the pages call these same functions. Every function expects the
request's transaction: it flushes, never commits.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from sqlalchemy import func, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from openvisit import audit, bounds
from openvisit.audit.service import AuditActor
from openvisit.auth import service as auth
from openvisit.auth.models import AccountToken, OneUseToken
from openvisit.clock import Clock
from openvisit.config import Settings
from openvisit.errors import Code, Conflict, DomainError, Forbidden, InvalidInput, TooManyAttempts
from openvisit.notifications.service import count_queued, queue_email
from openvisit.people.models import IdentityStatus, Visitor

VERIFY_EMAIL = "verify_email"
RESET_PASSWORD = "reset_password"  # noqa: S105 - a token purpose, not a secret
VERIFY_EMAIL_LIFETIME = dt.timedelta(hours=48)
RESET_PASSWORD_LIFETIME = dt.timedelta(hours=1)
MIN_AGE = 13
MAX_LINKS_PER_HOUR = 3
_PHONE = re.compile(r"^\+?[0-9 ()\-.]{7,30}$")

T = TypeVar("T")
L = TypeVar("L", bound=OneUseToken)


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


class AccountClosed(DomainError):
    code = Code.ACCOUNT_CLOSED
    message = "This account was closed, so it can't be signed in to."


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


def visitor_actor(visitor: Visitor, ip: str = "") -> AuditActor:
    return AuditActor("visitor", visitor.id, visitor.email, ip or None)


def audit_visitor(session: Session, tag: str, visitor: Visitor, ip: str, now: dt.datetime) -> None:
    """Record something a visitor did to their own account."""
    audit.service.record(
        session, tag=tag, actor=visitor_actor(visitor, ip), at=now, subject=("visitor", visitor.id)
    )


def check_email_verified(visitor: Visitor) -> None:
    """What a visitor sends to a facility needs an address that is known to work."""
    if visitor.email_verified_at is None:
        raise Forbidden(
            "Confirm your e-mail address first: use the link we sent you.",
            code=Code.EMAIL_NOT_VERIFIED,
        )


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
        if not all(p.isascii() and p.isdigit() for p in given) or len(given[2]) != 4:
            raise ValueError
        born = dt.date(int(given[2]), int(given[1]), int(given[0]))
        if not bounds.in_range(born):
            raise ValueError
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


class _Problems:
    """Collects every field's problem, so that a form reports them all at once."""

    def __init__(self) -> None:
        self.fields: dict[str, str] = {}
        self.first: DomainError | None = None

    def check(self, fn: Callable[[], T]) -> T | None:
        try:
            return fn()
        except DomainError as exc:
            self.fields.update(exc.fields)
            self.first = self.first or exc
            return None

    def raise_any(self) -> None:
        if not self.fields:
            return
        if self.first is not None and len(self.fields) == len(self.first.fields):
            raise self.first
        raise InvalidInput("Some of the information given is not valid.", fields=self.fields)


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
) -> str:
    """Create a visitor account and e-mail a link to confirm the address; return the
    address (normalized).

    Every field is checked before anything is written, and all problems are
    reported at once. An address that already has an account (open or closed) is
    answered the same way, and its owner is told by e-mail instead.
    """
    now = clock.now()
    problems = _Problems()
    clean_email = problems.check(lambda: auth.normalize_email(email))
    name = " ".join(legal_name.split())
    if not name:
        problems.fields["legal_name"] = "Enter your full name as it appears on your photo ID"
    elif len(name) > 200:
        problems.fields["legal_name"] = "Your name must be 200 characters or fewer"
    born = problems.check(lambda: check_date_of_birth(date_of_birth, now.date()))
    phone = phone.strip()
    if phone and not _PHONE.match(phone):
        problems.fields["phone"] = "Enter a phone number, like 555 010 0100 or +1 555 010 0100"
    problems.check(lambda: auth.check_new_password(password, email=clean_email or ""))
    problems.raise_any()
    assert clean_email is not None and born is not None
    existing = session.scalar(select(Visitor).where(Visitor.email == clean_email))
    if existing is not None:
        # The same answer as for a new address (and about the same time: the password
        # is hashed all the same), so that sign-up can't tell anyone who has an
        # account; the owner hears of it by e-mail instead.
        auth.hash_secret(password)
        _tell_owner_of_sign_up(session, clock, settings, existing, ip)
        return clean_email
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
    audit_visitor(session, "visitor:registered", visitor, ip, now)
    _send_verification(session, clock, settings, visitor)
    return clean_email


def sign_up_answer(email: str) -> str:
    """What sign-up says, whether or not the address already had an account."""
    return (
        f"Thank you. We've sent a link to {email}: open it to confirm your e-mail "
        "address, then sign in."
    )


ALREADY_REGISTERED_SUBJECT = "You already have an OpenVisit account"


def _tell_owner_of_sign_up(
    session: Session, clock: Clock, settings: Settings, visitor: Visitor, ip: str
) -> None:
    """Someone signed up with the address of an existing account: tell its owner (at
    most MAX_LINKS_PER_HOUR times an hour, so the form can't flood a mailbox)."""
    now = clock.now()
    audit.service.record(
        session,
        tag="visitor:sign_up_with_existing_email",
        actor=AuditActor("anonymous", None, "sign-up", ip),
        at=now,
        subject=("visitor", visitor.id),
    )
    since = now - dt.timedelta(hours=1)
    if count_queued(session, to=visitor.email, subject=ALREADY_REGISTERED_SUBJECT, since=since) >= (
        MAX_LINKS_PER_HOUR
    ):
        return
    if visitor.closed_at is not None:
        body = (
            f"Hello {visitor.legal_name},\n\n"
            "Someone asked to create an OpenVisit account with this e-mail address. "
            "The account you had with it was closed, so it can't be used again: to use "
            "OpenVisit, sign up with another e-mail address.\n\n"
            "If this wasn't you, you can ignore this e-mail.\n"
        )
    else:
        body = (
            f"Hello {visitor.legal_name},\n\n"
            "Someone asked to create an OpenVisit account with this e-mail address, but "
            "you already have an account. Sign in instead:\n\n"
            f"{settings.base_url}/sign-in\n\n"
            "If you've forgotten your password, you can reset it:\n\n"
            f"{settings.base_url}/forgot-password\n\n"
            "If this wasn't you, you can ignore this e-mail: nothing has changed.\n"
        )
    queue_email(
        session, clock, settings, to=visitor.email, subject=ALREADY_REGISTERED_SUBJECT, body=body
    )


# --- the e-mailed links -----------------------------------------------------------------


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


def _find_token(session: Session, token: str, purpose: str, now: dt.datetime) -> AccountToken:
    """The unused, unexpired token of this purpose; each other case says what went wrong."""
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
    return usable_link(row, now)


def usable_link(row: L | None, now: dt.datetime) -> L:
    """The link found for a token, if it can still be used; each other case says what went
    wrong."""
    if row is None:
        raise LinkNotValid()
    if row.used_at is not None:
        raise LinkUsed()
    if row.expires_at <= now:
        raise LinkExpired()
    return row


def spend_link(session: Session, row: OneUseToken, now: dt.datetime) -> None:
    """Mark the link used with a compare-and-set, so that of two clicks only one succeeds."""
    model = type(row)
    spent = cast(
        CursorResult[Any],
        session.execute(
            update(model)
            .where(model.id == row.id, model.used_at.is_(None))
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        ),
    )
    if spent.rowcount != 1:
        raise LinkUsed()


def _use_token(session: Session, token: str, purpose: str, now: dt.datetime) -> AccountToken:
    """Spend a one-use token (compare-and-set, so two clicks can't both succeed)."""
    row = _find_token(session, token, purpose, now)
    spend_link(session, row, now)
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
    audit_visitor(session, "visitor:email_verified", visitor, ip, now)
    session.flush()
    return visitor


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
    audit_visitor(session, "visitor:password_reset_requested", visitor, ip, now)


def check_reset_link(session: Session, clock: Clock, *, token: str) -> None:
    """For the page: refuse a bad link before asking for a new password."""
    _find_token(session, token, RESET_PASSWORD, clock.now())


def complete_password_reset(
    session: Session, clock: Clock, *, token: str, password: str, ip: str = ""
) -> Visitor:
    """Set a new password from a one-use link and sign the visitor out everywhere."""
    now = clock.now()
    row = _find_token(session, token, RESET_PASSWORD, now)
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
    audit_visitor(session, "visitor:password_reset", visitor, ip, now)
    session.flush()
    return visitor


# --- closing -------------------------------------------------------------------------------


def check_closable(visitor: Visitor, *, confirm: bool) -> None:
    """Before anything else when a visitor asks to close their account."""
    if visitor.closed_at is not None:
        raise AccountClosed()
    if not confirm:
        raise InvalidInput(
            "Choose yes to close your account, or go back to keep it.",
            code=Code.NOT_CONFIRMED,
            fields={"answer": "Choose yes to close your account"},
        )


def end_account(
    session: Session, visitor: Visitor, actor: AuditActor, now: dt.datetime, details: dict[str, Any]
) -> None:
    """The account can't be used again: every session ends. Its rows stay, as the ledger and
    the audit log need them; ``details`` (what else the closing did) goes in the audit record."""
    visitor.closed_at = now
    auth.end_all_sessions(session, "visitor", visitor.id)
    audit.service.record(
        session,
        tag="visitor:account_closed",
        actor=actor,
        at=now,
        subject=("visitor", visitor.id),
        data=details,
    )
