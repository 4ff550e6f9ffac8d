"""Shared fixtures: both databases, a frozen clock, the app, and named personas.

Every test that takes ``db`` runs twice, on SQLite and on PostgreSQL, inside
a transaction that is rolled back afterwards. Without a reachable PostgreSQL
(or Chromium) the affected tests are skipped with the reason; with CI=true
nothing may be skipped.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from email import message_from_bytes
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from openvisit.app import create_app
from openvisit.clock import FrozenClock
from openvisit.config import Settings
from openvisit.db import make_engine
from openvisit.dbadmin import upgrade

from .factories import Personas
from .pg import ADMIN_URL as PG_ADMIN_URL
from .pg import throwaway_database
from .times import NOON

IN_CI = os.environ.get("CI", "").lower() == "true"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "browser" in item.keywords and not Path("/usr/bin/chromium").exists():
            reason = "Chromium is not installed (/usr/bin/chromium): browser suite skipped"
            if IN_CI:
                raise pytest.UsageError(f"CI=true but {reason}")
            item.add_marker(pytest.mark.skip(reason=reason))


def _pg_available() -> str | None:
    try:
        engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:
        return f"PostgreSQL is not reachable at {PG_ADMIN_URL}: {type(exc).__name__}"


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test run."""
    problem = _pg_available()
    if problem:
        if IN_CI:
            pytest.fail(f"CI=true but {problem}")
        pytest.skip(f"{problem}: PostgreSQL suite skipped")
    with throwaway_database(PG_ADMIN_URL) as url:
        yield url


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
    upgrade(url)
    return url


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")
    eng = make_engine(url)
    yield eng
    eng.dispose()


@pytest.fixture
def db(engine: Engine) -> Iterator[Session]:
    """A session inside a transaction that is rolled back after the test.

    The app under test shares the connection; its commits become savepoints.
    """
    conn = engine.connect()
    outer = conn.begin()
    factory = sessionmaker(
        bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    session = factory()
    session.info["factory"] = factory
    yield session
    session.close()
    outer.rollback()
    conn.close()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOON)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        env="test",
        var_dir=tmp_path / "var",
        database_url="sqlite://",
        secret_key="test-secret-key",
        staff_totp_required=True,
    )


@pytest.fixture
def app(settings: Settings, clock: FrozenClock, db: Session):  # type: ignore[no-untyped-def]
    return create_app(settings, clock=clock, sessionmaker=db.info["factory"])


@pytest.fixture
def client(app):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    with TestClient(app, base_url="https://testserver") as c:
        yield c


@pytest.fixture
def other_client(app):  # type: ignore[no-untyped-def]
    """A second browser, for a second person at the same time."""
    from fastapi.testclient import TestClient

    with TestClient(app, base_url="https://testserver") as c:
        yield c


@pytest.fixture
def personas(db: Session, clock: FrozenClock, settings: Settings) -> Personas:
    return Personas(db, clock, settings)


# --- a real SMTP server on loopback -----------------------------------------------------


class Inbox:
    def __init__(self) -> None:
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content)))
        return "250 Message accepted for delivery"


def _free_smtp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_server():  # type: ignore[no-untyped-def]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_smtp_port())
    controller.start()
    yield controller, inbox
    controller.stop()


@pytest.fixture(scope="session")
def playwright_driver():  # type: ignore[no-untyped-def]
    """One Playwright per test process (a second sync instance can't start beside it)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p
