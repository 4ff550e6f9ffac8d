"""Live visits with real media: `openvisit serve` and Debian's Chromium, both inside a
network namespace that the test makes, with loopback only (DESIGN §5).

The server runs as a subprocess (`ip netns exec NS python -m openvisit serve`), with
SQLite in a temporary directory and the embedded media backend announcing
127.0.0.1. Chromium runs in the same namespace through a small wrapper given to
Playwright as its executable; Playwright talks to it over pipes, so the test
process itself needs no network. The test reads the same SQLite file and the
recordings directory.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from openvisit.audit.service import AuditActor
from openvisit.auth import service as auth
from openvisit.auth.cookies import KIOSK_COOKIE, SESSION_COOKIE
from openvisit.clock import SystemClock
from openvisit.config import Settings
from openvisit.db import make_engine, make_sessionmaker
from openvisit.dbadmin import upgrade
from openvisit.demo import begin_visit_now
from openvisit.people.models import StaffRoleName
from openvisit.visits.models import Visit, VisitType
from tests.browser.conftest import CHROMIUM, CHROMIUM_FLAGS
from tests.factories import Personas
from tests.support.synthetic import make_clip, make_y4m

from ..scheduling.conftest import approve

pytestmark = pytest.mark.browser

IP = shutil.which("ip") or "/usr/sbin/ip"


def _can_make_namespaces() -> str | None:
    if os.geteuid() != 0:
        return "network namespaces need root"
    if not os.path.exists(IP):
        return "iproute2 (ip) is not installed"
    return None


@pytest.fixture(scope="module")
def netns() -> Iterator[str]:
    problem = _can_make_namespaces()
    if problem:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {problem}")
        pytest.skip(f"{problem}: media suite skipped")
    name = f"ovtest-{os.getpid()}-{secrets.token_hex(3)}"
    subprocess.run([IP, "netns", "add", name], check=True)
    try:
        subprocess.run([IP, "netns", "exec", name, IP, "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run([IP, "netns", "del", name], check=False)


@pytest.fixture(scope="module")
def chromium_in_netns(  # type: ignore[no-untyped-def]
    netns: str, tmp_path_factory: pytest.TempPathFactory, playwright_driver
):
    folder = tmp_path_factory.mktemp("chromium")
    wrapper = folder / "chromium-in-netns"
    wrapper.write_text(f'#!/bin/sh\nexec {IP} netns exec {netns} {CHROMIUM} "$@"\n')
    wrapper.chmod(0o755)
    # A 30 fps camera: Chromium's built-in fake device runs at a lower rate.
    y4m = make_y4m(make_clip(folder / "camera.webm", seconds=2.0), folder / "camera.y4m")
    args = [*CHROMIUM_FLAGS, f"--use-file-for-fake-video-capture={y4m}"]
    browser = playwright_driver.chromium.launch(
        executable_path=str(wrapper), headless=True, args=args
    )
    yield browser
    browser.close()


@dataclass
class MediaServer:
    url: str
    settings: Settings
    sessions: sessionmaker[Session]
    process: subprocess.Popen[str]
    log: list[str]

    def db(self) -> Session:
        return self.sessions()


def _free_port() -> int:
    return 20000 + secrets.randbelow(20000)


def _serve(
    netns: str,
    tmp_path: Path,
    port: int,
    *,
    host: str = "127.0.0.1",
    media_addresses: str = "127.0.0.1",
) -> Iterator[MediaServer]:
    db_url = f"sqlite:///{tmp_path / 'media.db'}"
    upgrade(db_url)
    env = {
        **os.environ,
        "OPENVISIT_ENV": "test",
        "OPENVISIT_VAR_DIR": str(tmp_path / "var"),
        "OPENVISIT_DATABASE_URL": db_url,
        "OPENVISIT_SECRET_KEY": "media-test-key-" + "x" * 20,
        "OPENVISIT_BASE_URL": f"http://127.0.0.1:{port}",
        "OPENVISIT_HOST": host,
        "OPENVISIT_MEDIA_ADDRESSES": media_addresses,
        "OPENVISIT_WORKER_INTERVAL_SECONDS": "1",
        "OPENVISIT_STAFF_TOTP_REQUIRED": "false",
    }
    settings = Settings(
        env="test",
        var_dir=tmp_path / "var",
        database_url=db_url,
        secret_key=env["OPENVISIT_SECRET_KEY"],
        base_url=env["OPENVISIT_BASE_URL"],
    )
    process = subprocess.Popen(
        [IP, "netns", "exec", netns, sys.executable, "-m", "openvisit", "serve"],
        env={**env, "OPENVISIT_PORT": str(port)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    log: list[str] = []
    started = threading.Event()

    def _read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            log.append(line.rstrip())
            if "Application startup complete" in line:
                started.set()

    threading.Thread(target=_read, daemon=True).start()
    if not started.wait(30):
        process.kill()
        raise RuntimeError("the media server did not start:\n" + "\n".join(log[-30:]))
    engine = make_engine(db_url)
    server = MediaServer(
        f"http://127.0.0.1:{port}", settings, make_sessionmaker(engine), process, log
    )
    yield server
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
    engine.dispose()


@pytest.fixture
def media_server(netns: str, tmp_path: Path) -> Iterator[MediaServer]:
    yield from _serve(netns, tmp_path, _free_port())


@dataclass
class LossyLink:
    """A second namespace whose media to and from the server loses ``drop`` of its packets."""

    namespace: str
    drop: float
    server: MediaServer
    relay: subprocess.Popen[str]


LOSSY_DROP = 0.15


@pytest.fixture
def lossy_link(netns: str, tmp_path: Path) -> Iterator[LossyLink]:
    """The server in ``netns`` (announcing 10.77.0.1 for media) and a namespace joined to
    it by tests/support/lossy_link.py, dropping 15 % of the RTP packets both ways; in that
    namespace the server is http://127.0.0.1:<port> too (forwarded across the link)."""
    port = _free_port()
    far = f"ovloss-{os.getpid()}-{secrets.token_hex(3)}"
    subprocess.run([IP, "netns", "add", far], check=True)
    relay = None
    try:
        subprocess.run([IP, "netns", "exec", far, IP, "link", "set", "lo", "up"], check=True)
        command = [sys.executable, "-m", "tests.support.lossy_link", netns, far]
        command += ["--drop", str(LOSSY_DROP), "--port", str(port)]
        relay = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parents[2],
        )
        assert relay.stdout is not None
        assert relay.stdout.readline().strip() == "ready", "the lossy link did not start"
        for server in _serve(netns, tmp_path, port, host="0.0.0.0", media_addresses="10.77.0.1"):
            yield LossyLink(far, LOSSY_DROP, server, relay)
    finally:
        if relay is not None:
            relay.terminate()
            relay.wait(10)
        subprocess.run([IP, "netns", "del", far], check=False)


@pytest.fixture
def chromium_far(  # type: ignore[no-untyped-def]
    lossy_link: LossyLink, tmp_path_factory: pytest.TempPathFactory, playwright_driver
):
    """Chromium in the lossy link's far namespace."""
    folder = tmp_path_factory.mktemp("chromium-far")
    wrapper = folder / "chromium-in-netns"
    wrapper.write_text(f'#!/bin/sh\nexec {IP} netns exec {lossy_link.namespace} {CHROMIUM} "$@"\n')
    wrapper.chmod(0o755)
    y4m = make_y4m(make_clip(folder / "camera.webm", seconds=2.0), folder / "camera.y4m")
    args = [*CHROMIUM_FLAGS, f"--use-file-for-fake-video-capture={y4m}"]
    browser = playwright_driver.chromium.launch(
        executable_path=str(wrapper), headless=True, args=args
    )
    yield browser
    browser.close()


@dataclass
class Stage:
    """A visit that can be joined now, with browser sessions for its people."""

    visit_id: int
    facility_id: int
    visitor_token: str
    kiosk_token: str
    officer_token: str
    ends_at: dt.datetime


def stage_visit(
    server: MediaServer,
    *,
    visit_type: VisitType = VisitType.REMOTE,
    seconds: int = 20 * 60,
    rate: str | None = None,
) -> Stage:
    """The visitor is approved (and funded: scheduling's ``approve``) and the visit begins now."""
    clock = SystemClock()
    with server.db() as db:
        personas = Personas(db, clock, server.settings)  # type: ignore[arg-type]
        if rate is not None:
            from decimal import Decimal

            from openvisit.facilities.models import FacilitySettings

            row = db.get(FacilitySettings, personas.facility.id)
            assert row is not None
            row.remote_rate_cents_per_minute = Decimal(rate)
        personas.kiosk  # noqa: B018 - build it
        relationship = "attorney" if visit_type == VisitType.PRIVILEGED else "sibling"
        approve(db, personas.visitor, personas.resident, relationship=relationship)
        if visit_type == VisitType.PRIVILEGED:
            from openvisit.people.models import ProfessionalCredential, ProfessionKind, ReviewStatus

            db.add(
                ProfessionalCredential(
                    visitor_id=personas.visitor.id,
                    facility_id=personas.facility.id,
                    kind=ProfessionKind.ATTORNEY,
                    number="OH-12345",
                    issuer="Supreme Court of Ohio",
                    status=ReviewStatus.VERIFIED,
                    submitted_at=clock.now(),
                )
            )
        visit = begin_visit_now(
            db,
            clock,
            AuditActor("visitor", personas.visitor.id, "Maria"),
            resident_id=personas.resident.id,
            visitor_id=personas.visitor.id,
            visit_type=visit_type,
            seconds=seconds,
        )
        lifetime = dt.timedelta(hours=2)
        now = clock.now()
        visitor = auth.start_session(
            db, actor_type="visitor", actor_id=personas.visitor.id, now=now, lifetime=lifetime
        )
        kiosk = auth.start_session(
            db, actor_type="kiosk", actor_id=visit.resident_kiosk_id, now=now, lifetime=lifetime
        )
        kiosk.row.resident_id = personas.resident.id
        # An activated kiosk: it holds a device credential.
        personas.kiosk.credential_hash = auth.token_digest(secrets.token_hex(16))
        officer = personas.staff(StaffRoleName.OFFICER)
        staff = auth.start_session(
            db, actor_type="staff", actor_id=officer.member.id, now=now, lifetime=lifetime
        )
        db.commit()
        return Stage(
            visit.id,
            visit.facility_id,
            visitor.token,
            kiosk.token,
            staff.token,
            visit.ends_at,
        )


def open_page(
    browser: Any, server: MediaServer, cookie: str, token: str, path: str, script: str = ""
) -> Any:
    """A new browser context signed in with ``cookie``, on ``path``; ``script`` runs in the
    page before its own scripts."""
    context = browser.new_context(viewport={"width": 800, "height": 700})
    context.add_cookies([{"name": cookie, "value": token, "url": server.url}])
    if script:
        context.add_init_script(script)
    page = context.new_page()
    page.goto(server.url + path)
    return page


def visitor_page(browser: Any, server: MediaServer, stage: Stage, script: str = "") -> Any:
    return open_page(
        browser,
        server,
        SESSION_COOKIE,
        stage.visitor_token,
        f"/visits/{stage.visit_id}/live",
        script,
    )


def kiosk_page(browser: Any, server: MediaServer, stage: Stage, script: str = "") -> Any:
    return open_page(
        browser, server, KIOSK_COOKIE, stage.kiosk_token, f"/kiosk/visits/{stage.visit_id}", script
    )


def wall_page(browser: Any, server: MediaServer, stage: Stage) -> Any:
    return open_page(
        browser,
        server,
        SESSION_COOKIE,
        stage.officer_token,
        f"/staff/facilities/{stage.facility_id}/monitoring",
    )


def frames_decoded(page: Any) -> int:
    """Frames of the other side's video this page decoded so far."""
    return int(
        page.evaluate(
            "() => { const v = document.getElementById('remote-video');"
            " return v ? v.getVideoPlaybackQuality().totalVideoFrames : 0; }"
        )
    )


def wait_for(
    predicate: Any, timeout: float = 20.0, what: str = "condition", every: float = 0.1
) -> float:
    """Poll ``predicate`` every ``every`` seconds until it is true; the seconds it took.
    Fails after ``timeout``."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def holds_for(predicate: Any, seconds: float, what: str = "condition") -> None:
    """``predicate`` stays true for ``seconds`` (a negative check needs a deadline too)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert predicate(), f"{what} stopped holding"
        time.sleep(0.1)


def video_rising(page: Any, within: float = 3.0) -> bool:
    """The other side's video keeps playing: frames decoded rise over a second."""
    first = frames_decoded(page)
    try:
        wait_for(lambda: frames_decoded(page) > first + 5, within, "frames", every=0.25)
    except AssertionError:
        return False
    return True


def more_video(page: Any, seconds: float) -> None:
    """Let ``seconds`` of the other side's video play on ``page`` (30 fps: the frames
    it decodes are the clock), within three times as long."""
    target = frames_decoded(page) + int(30 * seconds)
    wait_for(lambda: frames_decoded(page) >= target, 3 * seconds + 5, f"{seconds}s of video")


def visit_row(server: MediaServer, visit_id: int) -> Visit:
    with server.db() as db:
        visit = db.scalar(select(Visit).where(Visit.id == visit_id))
        assert visit is not None
        db.expunge(visit)
        return visit
