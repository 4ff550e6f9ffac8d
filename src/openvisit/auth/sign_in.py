"""Signing in with a password and, when one is owed, a code from an authenticator app
(TOTP): one implementation for every kind of account that has both, visitors and staff.

A kind of account is an ``AccountType``: it names the throttling scope, the sessions'
actor type and the audit tags. The caller decides whether a code is owed; these
functions check the password and the code, count and audit every attempt, and start
the session: a full one, or a half one that is good only for giving the code
(``confirm_code``). Every function expects the request's transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, NoReturn, Protocol, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Mapped, Session

from openvisit import audit
from openvisit.audit.service import AuditActor
from openvisit.auth.models import UserSession
from openvisit.auth.service import (
    NewSession,
    SignInFailed,
    Tries,
    check_throttle,
    end_session,
    note_attempt,
    start_session,
    use_totp_code,
    verify_secret,
)
from openvisit.clock import Clock
from openvisit.config import Settings
from openvisit.errors import Code, DomainError

NOT_RECOGNISED = "Enter a correct e-mail address and password."
WRONG_CODE = "Enter the 6-digit code from your authenticator app."


class Account(Protocol):
    """What signing in reads of an account: columns of an ORM class (Visitor,
    StaffMember), described as Mapped so that mypy matches them through the descriptor."""

    @property
    def id(self) -> Mapped[int]: ...

    @property
    def email(self) -> Mapped[str]: ...

    @property
    def password_hash(self) -> Mapped[str]: ...

    @property
    def totp_secret(self) -> Mapped[str | None]: ...


A = TypeVar("A", bound=Account)


@dataclass(frozen=True)
class AccountType(Generic[A]):
    """A kind of account that signs in."""

    # "visitor" | "staff": the throttling scope, the sessions' actor type, the audit tags.
    scope: str
    model: type[A]
    actor: Callable[[A, str], AuditActor]
    # How long a half session waits for the code; None: as long as a full session.
    pending_lifetime: dt.timedelta | None = None
    # Whether a failed attempt's audit record names the step that failed.
    audit_failed_step: bool = False
    # Called when a code is accepted (staff: the first good code completes enrolment).
    code_accepted: Callable[[A, dt.datetime], None] | None = None

    def find(self, session: Session, email: str) -> A | None:
        return session.scalar(select(self.model).filter_by(email=email))


def fail(
    session: Session,
    settings: Settings,
    kind: AccountType[A],
    email: str,
    ip: str,
    now: dt.datetime,
    message: str,
    field: str = "email",
) -> NoReturn:
    """Count and audit a failed attempt, then refuse it (the records are kept)."""
    note_attempt(session, settings, Tries(kind.scope, email, ip, now), succeeded=False)
    data = {"email": email, "step": field} if kind.audit_failed_step else {"email": email}
    audit.service.record(
        session,
        tag=f"{kind.scope}:sign_in_failed",
        actor=AuditActor("anonymous", None, email, ip),
        at=now,
        data=data,
    )
    raise SignInFailed(message, fields={field: message})


@dataclass(frozen=True)
class Attempt:
    """A sign-in as typed. On a page a code that is owed comes in a second step."""

    email: str
    password: str
    totp_code: str | None
    ip: str
    user_agent: str
    from_page: bool = False


@dataclass(frozen=True)
class SignedIn(Generic[A]):
    account: A
    session: NewSession
    needs_code: bool  # the session is only good for giving the TOTP code (confirm_code)


def check_password(
    session: Session,
    settings: Settings,
    kind: AccountType[A],
    attempt: Attempt,
    *,
    email: str,
    now: dt.datetime,
) -> A:
    """The account with this (normalized) e-mail address and the password. Throttled per
    account and per address; an unknown address takes as long as a wrong password."""
    ip = attempt.ip
    check_throttle(session, settings, Tries(kind.scope, email, ip, now))
    account = kind.find(session, email)
    ok = verify_secret(account.password_hash if account else None, attempt.password)
    if account is None or not ok:
        fail(session, settings, kind, email, ip, now, NOT_RECOGNISED)
    return account


def code_fits(
    session: Session, kind: AccountType[A], account: A, code: str, now: dt.datetime
) -> bool:
    """Whether the code is the account's current one, spending it: each code works once (a
    replayed one, or one older than the last used, is a wrong code)."""
    return use_totp_code(
        session,
        scope=kind.scope,
        account_id=account.id,
        secret=account.totp_secret,
        code=code,
        now=now,
    )


def check_code(
    session: Session,
    settings: Settings,
    kind: AccountType[A],
    account: A,
    code: str,
    *,
    ip: str,
    now: dt.datetime,
) -> None:
    """The code from the account's authenticator app (see ``code_fits``); a wrong one is
    counted as a failed sign-in."""
    if not code_fits(session, kind, account, code, now):
        fail(session, settings, kind, account.email, ip, now, WRONG_CODE, field="totp_code")
    if kind.code_accepted is not None:
        kind.code_accepted(account, now)


def finish(
    session: Session,
    settings: Settings,
    kind: AccountType[A],
    account: A,
    attempt: Attempt,
    *,
    code_owed: bool,
    now: dt.datetime,
) -> SignedIn[A]:
    """The password was right. A full session if no code is owed or the code is right; a
    half one, good only for ``confirm_code``, if a page has yet to ask for the code."""
    if code_owed:
        if attempt.totp_code is None and attempt.from_page:
            pending = _start(
                session, settings, kind, account, attempt.ip, attempt.user_agent, now, full=False
            )
            return SignedIn(account, pending, needs_code=True)
        check_code(
            session, settings, kind, account, attempt.totp_code or "", ip=attempt.ip, now=now
        )
    full = _start(session, settings, kind, account, attempt.ip, attempt.user_agent, now, full=True)
    return SignedIn(account, full, needs_code=False)


def _start(
    session: Session,
    settings: Settings,
    kind: AccountType[A],
    account: A,
    ip: str,
    user_agent: str,
    now: dt.datetime,
    *,
    full: bool,
) -> NewSession:
    """A full session once every step passed (the account's failures cleared, the sign-in
    audited), or a half one that waits for the code."""
    lifetime = dt.timedelta(hours=settings.session_hours)
    if full:
        note_attempt(session, settings, Tries(kind.scope, account.email, ip, now), succeeded=True)
        audit.service.record(
            session,
            tag=f"{kind.scope}:signed_in",
            actor=kind.actor(account, ip),
            at=now,
            subject=(kind.scope, account.id),
        )
    elif kind.pending_lifetime is not None:
        lifetime = kind.pending_lifetime
    return start_session(
        session,
        actor_type=kind.scope,
        actor_id=account.id,
        now=now,
        lifetime=lifetime,
        ip=ip,
        user_agent=user_agent,
        second_factor_pending=not full,
    )


def pending_account(session: Session, kind: AccountType[A], row: UserSession | None) -> A | None:
    """The account a half session is waiting on a code for, if ``row`` is one of this kind."""
    if row is None or row.actor_type != kind.scope or not row.second_factor_pending:
        return None
    return session.get(kind.model, row.actor_id)


def confirm_code(
    session: Session,
    settings: Settings,
    clock: Clock,
    kind: AccountType[A],
    *,
    row: UserSession,
    code: str,
    ip: str,
    user_agent: str,
) -> SignedIn[A]:
    """The second step: a correct code swaps the half session for a full one."""
    now = clock.now()
    account = pending_account(session, kind, row)
    if account is None:
        raise DomainError("Your sign-in expired. Please sign in again.", code=Code.SIGN_IN_EXPIRED)
    check_throttle(session, settings, Tries(kind.scope, account.email, ip, now))
    check_code(session, settings, kind, account, code, ip=ip, now=now)
    end_session(session, row)
    full = _start(session, settings, kind, account, ip, user_agent, now, full=True)
    return SignedIn(account, full, needs_code=False)


def sign_out(
    session: Session, clock: Clock, kind: AccountType[A], row: UserSession, ip: str
) -> None:
    account = session.get(kind.model, row.actor_id)
    end_session(session, row)
    if account is not None:
        audit.service.record(
            session,
            tag=f"{kind.scope}:signed_out",
            actor=kind.actor(account, ip),
            at=clock.now(),
            subject=(kind.scope, account.id),
        )
