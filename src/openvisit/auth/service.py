"""Credentials, sessions and sign-in throttling shared by every kind of account."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import math
import secrets
from dataclasses import dataclass
from typing import Any, cast

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import CursorResult, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from openvisit.auth import endings
from openvisit.auth.models import LoginAttempt, TotpStep, UserSession
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


def totp_step(secret: str | None, code: str, now: dt.datetime) -> int | None:
    """The time step (RFC 6238) whose code this is, allowing one step of clock drift either
    way; None if it is none of them."""
    code = "".join(code.split())
    if not secret or not code.isascii() or not code.isdigit() or len(code) != 6:
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    matched = None
    for step in (current - 1, current, current + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            matched = step
    return matched


def use_totp_code(
    session: Session,
    *,
    scope: str,
    account_id: int,
    secret: str | None,
    code: str,
    now: dt.datetime,
) -> bool:
    """Whether the code is right and later than the last one this account used: a code
    works once, and neither it nor an older one works again. Marks it used.

    Compare-and-set on the account's ``totp_steps`` row, so that of two requests racing
    with the same code only one wins.
    """
    step = totp_step(secret, code, now)
    if step is None or secret is None:
        return False
    digest = token_digest(secret)
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    session.execute(
        dialect.insert(TotpStep)
        .values(scope=scope, account_id=account_id, secret_digest="", last_step=-1)
        .on_conflict_do_nothing(index_elements=["scope", "account_id"])
    )
    taken = session.execute(
        update(TotpStep)
        .where(
            TotpStep.scope == scope,
            TotpStep.account_id == account_id,
            or_(TotpStep.last_step < step, TotpStep.secret_digest != digest),
        )
        .values(last_step=step, secret_digest=digest)
        .execution_options(synchronize_session=False)
    )
    return bool(cast(CursorResult[Any], taken).rowcount == 1)


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
#
# The rule. Every sign-in attempt (password, TOTP code, resident PIN, kiosk activation) is
# a ``login_attempts`` row naming its account (scope + identifier) and the client's address
# (auth.addresses: a forwarding header counts only from a trusted proxy).
#
# * An ACCOUNT is locked by its own failures, and only a locked account refuses a correct
#   credential. Staff and visitors: ``login_max_failures`` failures within
#   ``login_window_minutes`` lock it for ``lockout_minutes`` after the last one. Residents
#   (``backoff=True``; a PIN has few digits, so it backs off sooner and for longer): from
#   ``resident_backoff_after`` failures within ``resident_backoff_window_hours``, the next
#   attempt waits 2**failures seconds after the last, at most
#   ``resident_backoff_max_seconds``. A success clears the account's failures.
# * An ADDRESS is never locked: behind a proxy or a NAT it is many people's, and one
#   guesser there must not lock out everyone else. Instead, once an address has failed
#   ``ip_max_failures`` times within the window, it is slowed down: each further failure
#   from it counts ``login_max_failures`` times toward the account it named, so a guesser
#   there gets one guess per account per lockout instead of several, while a correct
#   credential from the same address still signs in to any account that is not locked.
#
# Refusing an address outright would turn any guesser into a denial of service for its
# neighbours (30 wrong PINs once locked every staff member, visitor and resident behind
# that address); slowing it by delaying answers would hold the slow answer's worker too.


@dataclass(frozen=True)
class Tries:
    """One attempt at a credential: the account it counts against (``scope`` and
    ``identifier``), the address it came from and when."""

    scope: str
    identifier: str
    ip: str
    now: dt.datetime


def check_throttle(
    session: Session, settings: Settings, tries: Tries, *, backoff: bool = False
) -> None:
    """Refuse before checking a credential when the account is locked (the rule above).

    ``tries.ip`` is not consulted: an address is slowed down through ``note_attempt`` only.
    """
    scope, identifier, now = tries.scope, tries.identifier, tries.now
    hours = settings.resident_backoff_window_hours
    window = (
        dt.timedelta(hours=hours)
        if backoff
        else dt.timedelta(minutes=settings.login_window_minutes)
    )
    failures, last = session.execute(
        select(func.coalesce(func.sum(LoginAttempt.weight), 0), func.max(LoginAttempt.at)).where(
            LoginAttempt.scope == scope,
            LoginAttempt.identifier == identifier,
            LoginAttempt.succeeded.is_(False),
            LoginAttempt.at >= now - window,
        )
    ).one()
    wait = account_wait(settings, int(failures), backoff=backoff)
    if wait is None or last is None or last + wait <= now:
        return
    seconds = max(1, math.ceil((last + wait - now).total_seconds()))
    later = f"{seconds} seconds" if seconds <= 90 else f"{math.ceil(seconds / 60)} minutes"
    raise TooManyAttempts(
        f"Too many failed attempts. Try again in {later}.", retry_after_seconds=seconds
    )


def account_wait(settings: Settings, failures: int, *, backoff: bool) -> dt.timedelta | None:
    """How long after its last failure an account with this many failures is locked."""
    if backoff:
        if failures < settings.resident_backoff_after:
            return None
        seconds = min(2 ** min(failures, 30), settings.resident_backoff_max_seconds)
        return dt.timedelta(seconds=seconds)
    if failures < settings.login_max_failures:
        return None
    return dt.timedelta(minutes=settings.lockout_minutes)


def address_slowed(session: Session, settings: Settings, ip: str, now: dt.datetime) -> bool:
    """Whether this address failed so often lately that its failures weigh more."""
    window_start = now - dt.timedelta(minutes=settings.login_window_minutes)
    failures = session.scalar(
        select(func.count()).where(
            LoginAttempt.ip == ip[:64],
            LoginAttempt.succeeded.is_(False),
            LoginAttempt.at >= window_start,
        )
    )
    return (failures or 0) >= settings.ip_max_failures


def note_attempt(session: Session, settings: Settings, tries: Tries, *, succeeded: bool) -> None:
    """Record an attempt. A failure from a slowed address weighs ``login_max_failures``."""
    scope, identifier, ip, now = tries.scope, tries.identifier, tries.ip, tries.now
    weight = 1
    if not succeeded and address_slowed(session, settings, ip, now):
        weight = max(1, settings.login_max_failures)
    session.add(
        LoginAttempt(
            scope=scope,
            identifier=identifier[:254],
            ip=ip[:64],
            at=now,
            succeeded=succeeded,
            weight=weight,
        )
    )
    if succeeded:
        # A success clears the account's earlier failures.
        clear_failures(session, scope=scope, identifier=identifier)
    session.flush()


def clear_failures(session: Session, *, scope: str, identifier: str) -> None:
    """Forget an account's failures: it signed in, or it was given a new credential."""
    session.execute(
        delete(LoginAttempt).where(
            LoginAttempt.scope == scope,
            LoginAttempt.identifier == identifier[:254],
            LoginAttempt.succeeded.is_(False),
        )
    )


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
