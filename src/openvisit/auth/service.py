"""Credentials, sessions and sign-in throttling shared by every kind of account."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from openvisit.auth import endings
from openvisit.auth.models import LoginAttempt, UserSession
from openvisit.config import Settings
from openvisit.errors import Code, DomainError, InvalidInput, TooManyAttempts

# argon2-cffi's defaults are argon2id with RFC 9106's low-memory profile.
_hasher = PasswordHasher()
# Verified against when the account does not exist, so that an unknown e-mail
# takes as long as a wrong password.
_DUMMY_HASH = _hasher.hash("not a real password")


def hash_secret(secret: str) -> str:
    return _hasher.hash(secret)


def verify_secret(stored_hash: str | None, given: str) -> bool:
    try:
        return _hasher.verify(stored_hash or _DUMMY_HASH, given) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_totp_secret() -> str:
    return pyotp.random_base32()


def totp_matches(secret: str | None, code: str, now: dt.datetime) -> bool:
    code = "".join(code.split())
    if not secret or not code.isdigit() or len(code) != 6:
        return False
    return pyotp.TOTP(secret).verify(code, for_time=now, valid_window=1)


def totp_uri(secret: str, account: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=account, issuer_name="OpenVisit")


class SignInFailed(DomainError):
    """A wrong credential. The attempt row it leaves behind is kept (committed)."""

    code = Code.SIGN_IN_FAILED
    keep_changes = True


class PasswordTooWeak(DomainError):
    code = Code.PASSWORD_TOO_WEAK


def normalize_email(email: str) -> str:
    """An e-mail address as accounts store it: trimmed and lower-cased."""
    email = email.strip().lower()
    if "@" not in email or len(email) > 254 or " " in email:
        raise InvalidInput(
            "Enter an e-mail address in the right format, like name@example.com.",
            fields={"email": "Enter an e-mail address like name@example.com"},
        )
    return email


def check_new_password(password: str, *, email: str = "") -> None:
    if len(password) < 10:
        raise PasswordTooWeak(
            "Use a password of at least 10 characters.",
            fields={"password": "Use at least 10 characters"},
        )
    if len(password) > 256:
        raise PasswordTooWeak(
            "Use a password of at most 256 characters.",
            fields={"password": "Use at most 256 characters"},
        )
    if email and password.lower() == email.lower():
        raise PasswordTooWeak(
            "Your password can't be your e-mail address.",
            fields={"password": "Choose something other than your e-mail"},
        )


# --- throttling -----------------------------------------------------------------------


def check_throttle(
    session: Session, settings: Settings, *, scope: str, identifier: str, ip: str, now: dt.datetime
) -> None:
    """Refuse before checking a credential when the account or the address is locked out.

    An account is locked after ``login_max_failures`` failures inside the window,
    until the window has passed since the last of them; an address after
    ``ip_max_failures`` across every account.
    """
    window_start = now - dt.timedelta(minutes=settings.login_window_minutes)
    failures = session.execute(
        select(func.count(), func.max(LoginAttempt.at)).where(
            LoginAttempt.scope == scope,
            LoginAttempt.identifier == identifier,
            LoginAttempt.succeeded.is_(False),
            LoginAttempt.at >= window_start,
        )
    ).one()
    if failures[0] >= settings.login_max_failures:
        raise TooManyAttempts(
            f"Too many failed attempts. Try again in {settings.lockout_minutes} minutes.",
            retry_after_minutes=settings.lockout_minutes,
        )
    ip_failures = (
        session.scalar(
            select(func.count()).where(
                LoginAttempt.ip == ip,
                LoginAttempt.succeeded.is_(False),
                LoginAttempt.at >= window_start,
            )
        )
        or 0
    )
    if ip_failures >= settings.ip_max_failures:
        raise TooManyAttempts()


def note_attempt(
    session: Session, *, scope: str, identifier: str, ip: str, now: dt.datetime, succeeded: bool
) -> None:
    session.add(
        LoginAttempt(
            scope=scope, identifier=identifier[:254], ip=ip[:64], at=now, succeeded=succeeded
        )
    )
    if succeeded:
        # A success clears the account's earlier failures.
        session.execute(
            delete(LoginAttempt).where(
                LoginAttempt.scope == scope,
                LoginAttempt.identifier == identifier,
                LoginAttempt.succeeded.is_(False),
            )
        )
    session.flush()


# --- sessions ------------------------------------------------------------------------


@dataclass(frozen=True)
class NewSession:
    row: UserSession
    token: str


def start_session(
    session: Session,
    *,
    actor_type: str,
    actor_id: int,
    now: dt.datetime,
    lifetime: dt.timedelta,
    ip: str = "",
    user_agent: str = "",
    second_factor_pending: bool = False,
) -> NewSession:
    token = new_token()
    row = UserSession(
        token_hash=token_digest(token),
        actor_type=actor_type,
        actor_id=actor_id,
        second_factor_pending=second_factor_pending,
        created_at=now,
        last_seen_at=now,
        expires_at=now + lifetime,
        ip=ip[:64],
        user_agent=user_agent[:300],
    )
    session.add(row)
    session.flush()
    return NewSession(row, token)


def find_session(session: Session, token: str | None, now: dt.datetime) -> UserSession | None:
    if not token:
        return None
    row = session.scalar(select(UserSession).where(UserSession.token_hash == token_digest(token)))
    if row is None or row.expires_at <= now:
        return None
    return row


def end_session(session: Session, row: UserSession) -> None:
    """Sign one browser out; the sockets it holds close once this commits."""
    endings.note(session, "session", row.id)
    session.delete(row)
    session.flush()


def end_all_sessions(
    session: Session, actor_type: str, actor_id: int, *, keep: UserSession | None = None
) -> None:
    """Sign an account out everywhere (but ``keep``, the browser asking, if given); every
    socket of the others closes once this commits."""
    query = delete(UserSession).where(
        UserSession.actor_type == actor_type, UserSession.actor_id == actor_id
    )
    if keep is None:
        endings.note_session_ended(session, actor_type, actor_id)
    else:
        query = query.where(UserSession.id != keep.id)
        ended = session.scalars(
            select(UserSession.id).where(
                UserSession.actor_type == actor_type,
                UserSession.actor_id == actor_id,
                UserSession.id != keep.id,
            )
        )
        for session_id in ended:
            endings.note(session, "session", session_id)
    session.execute(query)
