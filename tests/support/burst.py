"""A burst of bookings against a real `openvisit serve` on loopback (issue 11, item 3).

Seeds families who are signed in (their session rows made directly; password hashing
is not what is measured), starts the real server in a process of its own, and sends
every family's ``POST /api/v1/me/visits`` at the same instant, each on its own
connection from its own thread. Used by tests/scheduling/test_burst.py and
benchmarks/burst.py.

Test support, not part of the installed package (it lives beside the tests).
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

import openvisit
from openvisit.approvals.models import Approval, ApprovalStatus
from openvisit.auth.cookies import CSRF_COOKIE, SESSION_COOKIE, new_csrf_token
from openvisit.auth.service import start_session
from openvisit.billing.ledger import check_invariants
from openvisit.db import make_engine, make_sessionmaker
from openvisit.facilities.models import (
    Facility,
    FacilityKind,
    FacilitySettings,
    HousingUnit,
    Kiosk,
    KioskLocation,
    VisitingHours,
)
from openvisit.people.models import IdentityStatus, Visitor
from openvisit.people.verifications import record_verification
from openvisit.residents.models import Resident
from openvisit.visits.models import Visit
from openvisit.visits.states import ACTIVE_STATES
from tests.billing.helpers import fund

SECRET = "burst-test-secret-key-burst-test-secret-key"
TZ = ZoneInfo("America/New_York")
SLOTS_PER_UNIT = 16  # 08:00-16:00 in half hours, inside visiting hours 08:00-18:00


@dataclass(frozen=True)
class Booking:
    """One family's request: who they are (cookies, CSRF header) and what they ask for."""

    cookie: str
    csrf: str
    body: bytes
    resident_id: int


@dataclass(frozen=True)
class Answer:
    status: int
    seconds: float
    code: str
    retry_after: str | None


def first_start(now: dt.datetime) -> dt.datetime:
    """08:00 in New York two days from ``now``: bookable, whatever the time of day."""
    day = (now.astimezone(TZ) + dt.timedelta(days=2)).date()
    return dt.datetime.combine(day, dt.time(8), tzinfo=TZ).astimezone(dt.UTC)


def seed(url: str, families: int, *, same_slot: bool, tag: str = "") -> list[Booking]:
    """``families`` signed-in families, each approved for a resident of their own and
    funded. ``same_slot``: every resident lives in one unit with one kiosk, and all ask
    for the same half hour (one wins, the rest lose the race). Otherwise each asks for a
    kiosk slot nobody else wants (all can win): units of one kiosk, 16 slots each.
    ``tag`` tells apart the facilities of several bursts in one database."""
    now = dt.datetime.now(dt.UTC)
    start = first_start(now)
    engine = make_engine(url)
    bookings: list[Booking] = []
    with make_sessionmaker(engine)() as s:
        facility = Facility(
            name=f"Burst County Jail {tag}".strip(),
            timezone="America/New_York",
            kind=FacilityKind.JAIL,
            average_daily_population=500,
            created_at=now,
        )
        s.add(facility)
        s.flush()
        s.add(
            FacilitySettings(
                facility_id=facility.id,
                min_notice_minutes=0,
                weekly_remote_visits=50,
                approved_visitors_per_resident=50,
            )
        )
        units = 1 if same_slot else -(-families // SLOTS_PER_UNIT)
        unit_ids = []
        for u in range(units):
            unit = HousingUnit(facility_id=facility.id, name=f"Unit {u}", created_at=now)
            s.add(unit)
            s.flush()
            unit_ids.append(unit.id)
            s.add_all(
                VisitingHours(
                    unit_id=unit.id, weekday=d, start_time=dt.time(8), end_time=dt.time(18)
                )
                for d in range(7)
            )
            s.add(
                Kiosk(
                    facility_id=facility.id,
                    unit_id=unit.id,
                    name=f"Unit {u} kiosk",
                    location=KioskLocation.HOUSING,
                    created_at=now,
                )
            )
        for f in range(families):
            unit_index = 0 if same_slot else f // SLOTS_PER_UNIT
            slot = 0 if same_slot else f % SLOTS_PER_UNIT
            resident = Resident(
                facility_id=facility.id,
                booking_number=f"B{tag}{f:05d}",
                first_name="R",
                last_name=str(f),
                date_of_birth=dt.date(1990, 1, 1),
                unit_id=unit_ids[unit_index],
                created_at=now,
                updated_at=now,
            )
            visitor = Visitor(
                email=f"family{tag}{f}@example.com",
                password_hash="x",
                legal_name=f"Family {f}",
                date_of_birth=dt.date(1980, 1, 1),
                email_verified_at=now,
                identity_status=IdentityStatus.VERIFIED,
                created_at=now,
            )
            s.add_all([resident, visitor])
            s.flush()
            record_verification(s, visitor_id=visitor.id, facility_id=facility.id, at=now)
            fund(s, visitor.id)
            s.add(
                Approval(
                    facility_id=facility.id,
                    visitor_id=visitor.id,
                    resident_id=resident.id,
                    relationship="sister",
                    status=ApprovalStatus.APPROVED,
                    requested_at=now,
                )
            )
            signed_in = start_session(
                s,
                actor_type="visitor",
                actor_id=visitor.id,
                now=now,
                lifetime=dt.timedelta(hours=2),
            )
            csrf = new_csrf_token(SECRET, signed_in.token)
            when = start + dt.timedelta(minutes=30 * slot)
            body = {"resident_id": resident.id, "start": when.isoformat(), "length": 30}
            bookings.append(
                Booking(
                    cookie=f"{SESSION_COOKIE}={signed_in.token}; {CSRF_COOKIE}={csrf}",
                    csrf=csrf,
                    body=json.dumps(body).encode(),
                    resident_id=resident.id,
                )
            )
        s.commit()
    engine.dispose()
    return bookings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_server(url: str, var_dir: Path, **settings: str) -> Iterator[int]:
    """`python -m openvisit serve` on 127.0.0.1 (this checkout's code), its port;
    ``settings`` are extra OPENVISIT_ variables (``db_wait_seconds="2"``)."""
    port = free_port()
    src = str(Path(openvisit.__file__).resolve().parents[1])
    env = {
        **os.environ,
        "PYTHONPATH": src,
        "OPENVISIT_ENV": "test",
        "OPENVISIT_DATABASE_URL": url,
        "OPENVISIT_SECRET_KEY": SECRET,
        "OPENVISIT_VAR_DIR": str(var_dir),
        "OPENVISIT_LOG_MAIL": "false",
        **{f"OPENVISIT_{k.upper()}": v for k, v in settings.items()},
    }
    var_dir.mkdir(parents=True, exist_ok=True)
    log = (var_dir / "server.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "openvisit", "serve", "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the server stopped: {(var_dir / 'server.log').read_text()}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    conn.close()
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not start within 60 s")
            time.sleep(0.2)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def post_booking(port: int, booking: Booking, timeout: float = 60.0) -> Answer:
    """One family's POST, timed from sending to the whole answer."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    conn.connect()
    return _send(conn, booking)


@dataclass(frozen=True)
class PageAnswer:
    status: int
    seconds: float
    html: str
    retry_after: str | None


def post_booking_page(port: int, booking: Booking, timeout: float = 60.0) -> PageAnswer:
    """The same booking through the booking page's form (what a browser sends)."""
    wanted = json.loads(booking.body)
    form = urllib.parse.urlencode(
        {
            "resident_id": wanted["resident_id"],
            "length": wanted["length"],
            "start": wanted["start"],
            "csrf_token": booking.csrf,
        }
    )
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    t0 = time.perf_counter()
    try:
        conn.request(
            "POST",
            "/visits/book",
            body=form,
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Cookie": booking.cookie,
            },
        )
        response = conn.getresponse()
        html = response.read().decode()
    except OSError as exc:
        return PageAnswer(0, time.perf_counter() - t0, type(exc).__name__, None)
    finally:
        conn.close()
    return PageAnswer(
        response.status, time.perf_counter() - t0, html, response.getheader("Retry-After")
    )


def _send(conn: http.client.HTTPConnection, booking: Booking) -> Answer:
    t0 = time.perf_counter()
    try:
        conn.request(
            "POST",
            "/api/v1/me/visits",
            body=booking.body,
            headers={
                "Content-Type": "application/json",
                "Cookie": booking.cookie,
                "X-CSRF-Token": booking.csrf,
            },
        )
        response = conn.getresponse()
        raw = response.read()
        seconds = time.perf_counter() - t0
    except OSError as exc:  # no answer at all (a timeout): worse than any status
        return Answer(0, time.perf_counter() - t0, type(exc).__name__, None)
    finally:
        conn.close()
    try:
        code = json.loads(raw).get("error", {}).get("code", "") if raw else ""
    except ValueError:
        code = "not_json"
    return Answer(response.status, seconds, code, response.getheader("Retry-After"))


def burst(port: int, bookings: list[Booking], timeout: float = 60.0) -> list[Answer]:
    """Every booking at the same instant: each thread connects first, then all send
    together when the barrier opens."""
    answers: list[Answer | None] = [None] * len(bookings)
    barrier = threading.Barrier(len(bookings))

    def one(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        conn.connect()
        barrier.wait()
        answers[i] = _send(conn, bookings[i])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(bookings))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout + 30)
    return [a if a is not None else Answer(0, timeout, "no_answer", None) for a in answers]


@dataclass(frozen=True)
class Invariants:
    booked: int
    overlaps: int
    ledger_problems: list[str]


def invariants(url: str) -> Invariants:
    """Active visits that overlap on a kiosk, a resident or a visitor (must be none), and
    the ledger's own checks (no negative balance, every transaction balanced)."""
    engine = make_engine(url)
    with Session(engine) as session:
        visits = session.scalars(select(Visit).where(Visit.state.in_(ACTIVE_STATES))).all()
        report = check_invariants(session)
    engine.dispose()
    return Invariants(len(visits), count_overlaps(visits), list(report.problems))


def count_overlaps(visits: Sequence[Visit]) -> int:
    """Pairs of active visits at overlapping times on one kiosk, resident or visitor."""
    count = 0
    for i, a in enumerate(visits):
        for b in visits[i + 1 :]:
            if (
                a.starts_at < b.ends_at
                and b.starts_at < a.ends_at
                and (
                    a.resident_kiosk_id == b.resident_kiosk_id
                    or a.resident_id == b.resident_id
                    or a.visitor_id == b.visitor_id
                )
            ):
                count += 1
    return count


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]
