from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from openvisit.db import Base, BigId, intpk


class UserSession(Base):
    """A signed-in browser: visitor, staff member, or kiosk device (+ resident).

    The cookie carries a random token; only its sha256 is stored.
    """

    __tablename__ = "user_sessions"
    __table_args__ = (Index("ix_user_sessions_actor", "actor_type", "actor_id"),)

    id: Mapped[intpk]
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    actor_type: Mapped[str] = mapped_column(String(16))  # visitor | staff | kiosk
    actor_id: Mapped[int] = mapped_column(BigId)
    # staff: password checked but TOTP not yet given
    second_factor_pending: Mapped[bool] = mapped_column(Boolean, default=False)
    # kiosk devices: the resident signed in on it, if any
    resident_id: Mapped[int | None] = mapped_column(ForeignKey("residents.id"))
    resident_signed_in_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime]
    last_seen_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]
    ip: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(300), default="")


class OneUseToken:
    """The columns of an e-mailed one-use link: only the token's sha256 is stored, and the
    link works until it expires or is spent (``used_at``)."""

    id: Mapped[intpk]
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]
    used_at: Mapped[dt.datetime | None]


class AccountToken(OneUseToken, Base):
    """One-use e-mail tokens (verify e-mail, reset password)."""

    __tablename__ = "account_tokens"

    purpose: Mapped[str] = mapped_column(String(24))
    visitor_id: Mapped[int] = mapped_column(ForeignKey("visitors.id"), index=True)


class LoginAttempt(Base):
    """Every sign-in attempt, for throttling by account and by address."""

    __tablename__ = "login_attempts"
    __table_args__ = (
        Index("ix_login_attempts_key_at", "scope", "identifier", "at"),
        Index("ix_login_attempts_ip_at", "ip", "at"),
    )

    id: Mapped[intpk]
    scope: Mapped[str] = mapped_column(String(24))  # visitor | staff | resident | kiosk_device
    identifier: Mapped[str] = mapped_column(String(254))
    ip: Mapped[str] = mapped_column(String(64))
    at: Mapped[dt.datetime]
    succeeded: Mapped[bool] = mapped_column(Boolean)
    # How many failures this one counts as toward its account's lock: more than one when it
    # came from an address that was already failing a lot (auth.service, the throttling rule).
    weight: Mapped[int] = mapped_column(Integer, default=1, server_default="1")


class TotpStep(Base):
    """The last TOTP time step accepted for an account, so that a code works only once.

    ``secret_digest`` is the sha256 of the secret the step was accepted for: a new secret
    (re-enrolment) starts afresh rather than inheriting the old secret's steps.
    """

    __tablename__ = "totp_steps"
    __table_args__ = (UniqueConstraint("scope", "account_id"),)

    id: Mapped[intpk]
    scope: Mapped[str] = mapped_column(String(24))  # visitor | staff
    account_id: Mapped[int] = mapped_column(BigId)
    secret_digest: Mapped[str] = mapped_column(String(64))
    last_step: Mapped[int] = mapped_column(BigInteger)
