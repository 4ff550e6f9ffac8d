"""Settings from the environment (prefix ``OPENVISIT_``).

Never read at import time: ``create_app(settings)`` and the CLI build one
``Settings`` and pass it along.
"""

from __future__ import annotations

import ipaddress
import logging
import secrets
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from openvisit.private_files import private_dir

log = logging.getLogger(__name__)

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


# Sessions, CSRF tokens and flash messages are signed with the secret key.
MIN_SECRET_KEY_BYTES = 32


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OPENVISIT_", extra="ignore")

    env: Literal["development", "production", "test"] = "development"
    var_dir: Path = Path("var")
    database_url: str = ""
    secret_key: str = ""
    base_url: str = "http://127.0.0.1:8000"
    host: str = "127.0.0.1"
    port: int = 8000
    # Secure cookies work on http://localhost and 127.0.0.1 in browsers (a
    # secure context); switch off only for plain-HTTP deployments behind
    # something you trust, never in production.
    cookie_secure: bool = True
    staff_totp_required: bool = True
    session_hours: int = 12
    kiosk_session_days: int = 365
    # A kiosk activation code works once, and only this long after it was issued.
    kiosk_code_hours: int = Field(default=24, ge=1, le=24 * 14)
    login_max_failures: int = 5
    login_window_minutes: int = 15
    lockout_minutes: int = 15
    ip_max_failures: int = 30
    # Residents' PINs back off exponentially (auth.service, the throttling rule): from this
    # many failures on, each failure makes the next attempt wait 2**failures seconds, at most
    # resident_backoff_max_seconds, counting failures over resident_backoff_window_hours.
    resident_backoff_after: int = 3
    resident_backoff_max_seconds: int = 900
    resident_backoff_window_hours: int = 24
    # Proxies whose forwarding header names the client (comma-separated addresses or CIDRs,
    # e.g. "10.0.0.0/8, 127.0.0.1"). Empty: none, the connection's peer is the client.
    trusted_proxies: str = ""
    # Which header those proxies set: X-Forwarded-For or the standard Forwarded (RFC 7239).
    # Only one is read, so that a client can't slip in the other.
    trusted_proxy_header: Literal["x-forwarded-for", "forwarded"] = "x-forwarded-for"
    upload_max_bytes: int = 5 * 1024 * 1024
    # An uploaded image's width x height at most: refused above it before it is decoded.
    upload_max_pixels: int = Field(default=40_000_000, ge=1)
    # Identity documents are deleted from disk this many days after their decision.
    identity_document_retention_days: int = Field(default=90, ge=0)
    request_max_bytes: int = 12 * 1024 * 1024
    roster_max_rows: int = 20000
    mail_from: str = "OpenVisit <no-reply@openvisit.local>"
    smtp_host: str = ""
    smtp_port: int = 25
    worker_interval_seconds: float = 5.0
    # The media plane (DESIGN §5). Host addresses the embedded backend announces,
    # comma-separated (empty: the machine's interfaces, as aioice finds them).
    media_addresses: str = ""
    # The most a party may send, bits per second (video); aiortc's own estimate is off.
    media_max_bitrate: int = 800_000
    # Under load (docs/architecture.md "Under load"): at most db_pool_size requests work in
    # the database at once, each with one pooled connection; more wait for a turn without
    # a thread. The worker and signaling use the db_pool_overflow connections beyond them.
    # worker_threads sizes AnyIO's thread pool (sync dependencies and endpoints) and may
    # not be smaller than the pool. Every wait is bounded by db_wait_seconds (a turn, a
    # connection, a PostgreSQL row lock; SQLite's busy timeout); past it the answer is
    # 503 busy with Retry-After. A statement running longer than db_statement_seconds is
    # cancelled the same way (PostgreSQL; 0: never).
    db_pool_size: int = Field(default=20, ge=1, le=1000)
    db_pool_overflow: int = Field(default=5, ge=0, le=1000)
    worker_threads: int = Field(default=40, ge=1, le=4000)
    db_wait_seconds: float = Field(default=4.0, gt=0, le=120)
    db_statement_seconds: float = Field(default=30.0, ge=0, le=3600)
    log_mail: bool = Field(default=True, description="print outgoing mail to the log (development)")

    @model_validator(mode="after")
    def _fill_defaults(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{(self.var_dir / 'openvisit.db').as_posix()}"
        if self.env == "production":
            if not self.secret_key:
                raise ValueError("OPENVISIT_SECRET_KEY is required in production")
            if len(self.secret_key.encode()) < MIN_SECRET_KEY_BYTES:
                raise ValueError(
                    f"OPENVISIT_SECRET_KEY must be at least {MIN_SECRET_KEY_BYTES} bytes in "
                    f"production (it is {len(self.secret_key.encode())}); make one with "
                    "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`"
                )
            if not self.cookie_secure:
                raise ValueError(
                    "OPENVISIT_COOKIE_SECURE may not be false in production: session cookies "
                    "must only travel over HTTPS"
                )
            if not self.staff_totp_required:
                raise ValueError("staff TOTP may not be relaxed in production")
        if self.worker_threads < self.db_pool_size:
            raise ValueError(
                f"OPENVISIT_WORKER_THREADS ({self.worker_threads}) may not be smaller than "
                f"OPENVISIT_DB_POOL_SIZE ({self.db_pool_size}): a request holding a "
                "connection must always find a thread to finish on"
            )
        return self

    @field_validator("trusted_proxies")
    @classmethod
    def _check_trusted_proxies(cls, value: str) -> str:
        for entry in _split(value):
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(
                    f"OPENVISIT_TRUSTED_PROXIES: {entry!r} is not an address or a network"
                ) from None
        return value

    @property
    def trusted_proxy_networks(self) -> list[IPNetwork]:
        return [ipaddress.ip_network(entry, strict=False) for entry in _split(self.trusted_proxies)]

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def upload_dir(self) -> Path:
        return self.var_dir / "private" / "uploads"

    @property
    def recordings_dir(self) -> Path:
        return self.var_dir / "private" / "recordings"

    @property
    def media_address_list(self) -> list[str]:
        return _split(self.media_addresses)

    def ensure_secret_key(self) -> str:
        """The secret key; in development one is generated once and kept under var/."""
        if self.secret_key:
            return self.secret_key
        path = self.var_dir / "secret_key"
        if path.exists():
            self.secret_key = path.read_text().strip()
        else:
            private_dir(self.var_dir)
            self.secret_key = secrets.token_urlsafe(48)
            path.write_text(self.secret_key)
            path.chmod(0o600)
            log.warning(
                "OPENVISIT_SECRET_KEY is not set: generated one in %s (development only)", path
            )
        return self.secret_key
