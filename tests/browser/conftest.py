"""A real server on loopback and Debian's Chromium driven by Playwright.

The server runs uvicorn in a thread on 127.0.0.1 with its own migrated
database; Chromium is /usr/bin/chromium (no browser is ever downloaded).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from sqlalchemy.orm import Session, sessionmaker

from openvisit.app import create_app
from openvisit.clock import SystemClock
from openvisit.config import Settings
from openvisit.db import make_engine, make_sessionmaker
from openvisit.dbadmin import upgrade

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--allow-loopback-in-peer-connection",
]

pytestmark = pytest.mark.browser


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    settings: Settings
    sessions: sessionmaker[Session]


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    port = _free_port()
    db_url = f"sqlite:///{tmp_path / 'live.db'}"
    upgrade(db_url)
    settings = Settings(
        env="test",
        var_dir=tmp_path / "var",
        database_url=db_url,
        secret_key="browser-test-key",
        base_url=f"http://127.0.0.1:{port}",
    )
    engine = make_engine(db_url)
    factory = make_sessionmaker(engine)
    app = create_app(settings, clock=SystemClock(), sessionmaker=factory)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    yield LiveServer(f"http://127.0.0.1:{port}", settings, factory)
    server.should_exit = True
    thread.join(timeout=10)
    engine.dispose()


@pytest.fixture(scope="session")
def chromium(playwright_driver):  # type: ignore[no-untyped-def]
    browser = playwright_driver.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS
    )
    yield browser
    browser.close()


@pytest.fixture
def browser_context(chromium):  # type: ignore[no-untyped-def]
    context = chromium.new_context(viewport={"width": 390, "height": 844})  # a phone
    yield context
    context.close()


@pytest.fixture
def staff_context(chromium):  # type: ignore[no-untyped-def]
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    yield context
    context.close()
