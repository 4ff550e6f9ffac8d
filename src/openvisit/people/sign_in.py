"""Visitors signing in and out, and their two-step sign-in (TOTP) setting.

The password and code checks, the throttling and the half session that waits for
a code are auth.sign_in's, shared with staff. Every function expects the request's
transaction.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.orm import Session

from openvisit.auth import service as auth
from openvisit.auth import sign_in as signing_in
from openvisit.auth.models import UserSession
from openvisit.clock import Clock
from openvisit.config import Settings
from openvisit.errors import Code, Conflict, DomainError, InvalidInput
from openvisit.people.accounts import AccountClosed, audit_visitor, visitor_actor
from openvisit.people.models import Visitor

VISITORS = signing_in.AccountType(
    scope="visitor",
    model=Visitor,
    actor=visitor_actor,
    pending_lifetime=dt.timedelta(minutes=10),
    audit_failed_step=True,
)


@dataclass(frozen=True)
class TotpSetup:
    secret: str
    otpauth_uri: str


def sign_in(
    session: Session, settings: Settings, clock: Clock, attempt: signing_in.Attempt
) -> signing_in.SignedIn[Visitor]:
    """Check the password, and the TOTP code if the visitor turned it on.

    Throttled per account and per address. When the code is owed but not given, a page
    gets a session good only for giving it; the API is refused with ``totp_required``.
    """
    now = clock.now()
    email = attempt.email.strip().lower()[:254]
    visitor = signing_in.check_password(session, settings, VISITORS, attempt, email=email, now=now)
    if visitor.closed_at is not None:
        raise AccountClosed()
    code_owed = visitor.totp_enabled_at is not None
    if code_owed and not attempt.totp_code and not attempt.from_page:
        raise DomainError(
            "Enter the 6-digit code from your authenticator app.",
            code=Code.TOTP_REQUIRED,
            fields={"totp_code": "Enter the 6-digit code"},
        )
    return signing_in.finish(
        session, settings, VISITORS, visitor, attempt, code_owed=code_owed, now=now
    )


def confirm_password(
    session: Session,
    settings: Settings,
    visitor: Visitor,
    password: str,
    *,
    ip: str,
    now: dt.datetime,
) -> None:
    """Ask for the password again before something that can't be undone; a wrong one
    counts as a failed sign-in."""
    auth.check_throttle(session, settings, auth.Tries(VISITORS.scope, visitor.email, ip, now))
    if not auth.verify_secret(visitor.password_hash, password):
        signing_in.fail(
            session,
            settings,
            VISITORS,
            visitor.email,
            ip,
            now,
            "Enter your current password.",
            field="password",
        )


def sign_out(session: Session, clock: Clock, row: UserSession, ip: str = "") -> None:
    signing_in.sign_out(session, clock, VISITORS, row, ip)


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


def _check_code(session: Session, visitor: Visitor, code: str, now: dt.datetime) -> None:
    """The code, which (as at sign-in) works only once."""
    if not signing_in.code_fits(session, VISITORS, visitor, code, now):
        msg = "Enter the 6-digit code from your authenticator app"
        raise InvalidInput(msg + ".", code=Code.TOTP_CODE_WRONG, fields={"totp_code": msg})


def confirm_totp(
    session: Session, clock: Clock, visitor: Visitor, *, code: str, ip: str = ""
) -> None:
    now = clock.now()
    if visitor.totp_enabled_at is not None:
        raise Conflict("Two-step sign-in is already on.", code=Code.TOTP_ALREADY_ENABLED)
    if not visitor.totp_secret:
        raise Conflict("Start setting up two-step sign-in first.", code=Code.TOTP_NOT_STARTED)
    _check_code(session, visitor, code, now)
    visitor.totp_enabled_at = now
    audit_visitor(session, "visitor:totp_enabled", visitor, ip, now)
    session.flush()


def disable_totp(
    session: Session, clock: Clock, visitor: Visitor, *, code: str, ip: str = ""
) -> None:
    now = clock.now()
    if visitor.totp_enabled_at is None:
        raise Conflict("Two-step sign-in is not on.", code=Code.TOTP_NOT_ENABLED)
    _check_code(session, visitor, code, now)
    visitor.totp_enabled_at = None
    visitor.totp_secret = None
    audit_visitor(session, "visitor:totp_disabled", visitor, ip, now)
    session.flush()
