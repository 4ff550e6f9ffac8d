"""Media capacity of the embedded backend, through the real server, on loopback only.

Everything runs inside a network namespace this script makes (loopback only,
deleted at the end, also on failure): `openvisit serve` as its own process
(SQLite in a temporary directory, the embedded aiortc backend announcing
127.0.0.1), the load generators (synthetic aiortc clients, up to six visits per
process, niced so that the server gets the CPU first), an HTTP prober, and
Chromium. This process seeds the database (it writes the same SQLite file) and
reads every process's CPU and memory from /proc, so the server's cost is
measured apart from the load's and from the rest of the machine's.

  * capacity: for growing N (2, 4, 8, 12, 14, 16, 18, 20), N concurrent remote
    visits, recorded (as every non-privileged visit is), both parties synthetic
    (`tests/support/synthetic.py`: a 640x480@30 VP8 + Opus clip made here with PyAV, sent
    without encoding, received without decoding), one silent monitor per five
    visits, on a fresh server per N. After a warm-up, over a 10 s window: the
    server's CPU (cores, user + system over the window) and RSS; the video frame
    rate delivered on every subscribed video track (each party's view of the
    other, each monitor's view of both: min, p10, mean); each received video
    frame's delay since its sender's clip track handed it over (p50, p95: frames
    queued in the server show here first); the load generators' CPU and the
    frame rate they sent; the latency of GET /healthz probed 20 times a second
    (does media starve the app's HTTP handling in the same process?). Stops once
    the slowest track falls well below 28 fps, or when time runs out.
  * joins: 20 browser joins (Playwright + Debian's Chromium, a 30 fps Y4M fake
    camera), on a fresh server: a fresh visit whose resident is already in at a
    kiosk page (the server sees its media), then the visitor's page opens; the
    time from the visitor page's navigation start to its first remote video
    frame, measured in the page with requestVideoFrameCallback on #remote-video.
    One uncounted join first warms Chromium up.

Usage: python benchmarks/media_capacity.py [--quick] [--steps 2,4,8] [--joins 20] [--keep]
Needs root (ip netns), iproute2 and /usr/bin/chromium; takes about 5 minutes (--quick:
about 1). The last line is `RESULT key=value ...`. max_recorded_visits_28fps is the
largest N (before the first that failed) whose every subscribed video track, the
minimum and not a percentile, delivered 28 fps or more; ..._p10 uses the 10th
percentile; ..._delay250 also asks the frames' p95 delay to stay under 250 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import math
import os
import queue
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = Path(__file__).resolve()
# The synthetic participants are test support (tests/support), not part of the package.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
IP = shutil.which("ip") or "/usr/sbin/ip"
CHROMIUM = "/usr/bin/chromium"
# As tests/browser/conftest.py and DESIGN §5 ("Testing media on one machine").
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
PORT = 8000
STEPS, QUICK_STEPS = (2, 4, 8, 12, 14, 16, 18, 20), (2, 4)
JOINS, QUICK_JOINS = 20, 5
WARMUP_SECONDS, WINDOW_SECONDS, QUICK_WINDOW_SECONDS = 6.0, 10.0, 5.0
PROBE_PER_SECOND = 20
OTHER_CORES_WARNING = 0.15  # the rest of the machine busier than this: say so
MONITOR_EVERY = 5  # one monitor per five visits
VISITS_PER_LOADGEN = 6  # synthetic visits one load-generator process drives
# The load generators yield the CPU to the server when both want it: the server is
# measured as if it had the machine to itself, as far as two cores allow. A load
# generator that can't keep up shows in the frame rate it sent (sent_fps_min).
LOADGEN_NICE = 10
TARGET_FPS = 28.0
# Frames queued in the server show as delay long before they cost frame rate: a
# stricter capacity also asks the frames' p95 delay (sender -> subscriber) to stay under this.
PROMPT_DELAY_MS = 250
STOP_BELOW_FPS = 24.0  # "well below 28": no larger N is tried
CAPACITY_BUDGET_SECONDS = 330  # no new N starts after this; the joins follow
VISIT_SECONDS = 20 * 60


# --- processes and their costs, from /proc ---------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far, all its threads."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def cpu_by_command(prefixes: tuple[str, ...]) -> dict[int, float]:
    """CPU seconds so far of every process whose command name starts with a prefix."""
    found = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/comm") as f:
                if not f.read().startswith(prefixes):
                    continue
            found[int(pid)] = cpu_seconds(int(pid))
        except OSError:
            continue
    return found


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU time of the whole machine so far, in ticks, from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


@contextlib.contextmanager
def network_namespace() -> Iterator[str]:
    """A network namespace with loopback up and nothing else; deleted afterwards."""
    name = f"ovbench-{os.getpid()}-{secrets.token_hex(2)}"
    subprocess.run([IP, "netns", "add", name], check=True)
    try:
        subprocess.run([IP, "netns", "exec", name, IP, "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run([IP, "netns", "del", name], check=False)


def in_namespace(ns: str, *command: str) -> list[str]:
    # `ip netns exec` execs the command (no fork): the child's pid is the command's.
    return [IP, "netns", "exec", ns, *command]


def child_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, **extra}
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT / "src"), str(ROOT), os.environ.get("PYTHONPATH", "")) if p
    )
    return env


def stop_process(process: subprocess.Popen[Any], wait: float = 15) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(wait)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


class Child:
    """A helper process of this script inside the namespace, speaking JSON lines."""

    def __init__(self, ns: str, mode: list[str], log: Path, nice: int = 0) -> None:
        self.log = log
        self._log_file = log.open("w")
        niced = ["nice", "-n", str(nice)] if nice else []
        self.process = subprocess.Popen(
            in_namespace(ns, *niced, sys.executable, str(SCRIPT), *mode),
            env=child_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log_file,
            text=True,
            bufsize=1,
        )
        self.pid = self.process.pid
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def send(self, message: Any) -> None:
        """A command word as is, anything else as JSON; one line."""
        assert self.process.stdin is not None
        text = message if isinstance(message, str) else json.dumps(message)
        self.process.stdin.write(text + "\n")
        self.process.stdin.flush()

    def receive(self, timeout: float) -> Any:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            line = None
        if line is None:
            tail = self.log.read_text()[-3000:]
            raise RuntimeError(f"{self.log.name}: no answer in {timeout:.0f} s\n{tail}")
        return json.loads(line)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            assert self.process.stdin is not None
            self.process.stdin.close()
        stop_process(self.process, 10)
        self._log_file.close()


@dataclass
class Server:
    process: subprocess.Popen[Any]
    url: str
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid


def start_server(ns: str, folder: Path, db_url: str, label: str) -> Server:
    url = f"http://127.0.0.1:{PORT}"
    env = child_env(
        OPENVISIT_ENV="test",
        OPENVISIT_VAR_DIR=str(folder / "var"),
        OPENVISIT_DATABASE_URL=db_url,
        OPENVISIT_SECRET_KEY="media-bench-" + secrets.token_hex(16),
        OPENVISIT_BASE_URL=url,
        OPENVISIT_PORT=str(PORT),
        OPENVISIT_MEDIA_ADDRESSES="127.0.0.1",
        OPENVISIT_STAFF_TOTP_REQUIRED="false",
    )
    log = folder / f"server-{label}.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            in_namespace(ns, sys.executable, "-m", "openvisit", "serve"),
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server(process, url, log)
    deadline = time.monotonic() + 60
    while "Application startup complete" not in log.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            stop_process(process)
            raise RuntimeError("the server did not start:\n" + log.read_text()[-3000:])
        time.sleep(0.1)
    return server


@contextlib.contextmanager
def serving(ns: str, folder: Path, db_url: str, label: str) -> Iterator[Server]:
    """`openvisit serve` in the namespace for the ``with`` block; its log's tail on failure."""
    server = start_server(ns, folder, db_url, label)
    try:
        yield server
    except BaseException:
        lines = [x for x in server.log.read_text().splitlines() if "/healthz" not in x]
        print(f"server log ({label}, tail):", *lines[-30:], sep="\n", file=sys.stderr)
        raise
    finally:
        stop_process(server.process)


# --- the database: a facility where every visit has its own unit, kiosk and people ------


class Stager:
    """Seeds the server's SQLite file: visits that can be joined now, with sessions."""

    def __init__(self, db_url: str) -> None:
        from openvisit.auth import service as auth
        from openvisit.clock import SystemClock
        from openvisit.db import make_engine, make_sessionmaker
        from openvisit.facilities.models import Facility, FacilityKind, FacilitySettings
        from openvisit.people.models import StaffMember, StaffRole, StaffRoleName

        self.engine = make_engine(db_url)
        self.sessions = make_sessionmaker(self.engine)
        self.clock = SystemClock()
        self.count = 0
        now = self.clock.now()
        with self.sessions() as s:
            facility = Facility(
                name="Media Bench Detention Center",
                timezone="UTC",
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
                    weekly_remote_visits=100,
                    remote_rate_cents_per_minute=0,
                )
            )
            officer = StaffMember(
                email="officer@bench.example",
                name="Bench Officer",
                password_hash="x",
                totp_secret="A" * 32,
                totp_confirmed_at=now,
                created_at=now,
            )
            s.add(officer)
            s.flush()
            s.add(
                StaffRole(staff_id=officer.id, facility_id=facility.id, role=StaffRoleName.OFFICER)
            )
            staff = auth.start_session(
                s, actor_type="staff", actor_id=officer.id, now=now, lifetime=dt.timedelta(hours=4)
            )
            s.commit()
            self.facility_id = facility.id
            self.staff_token = staff.token

    def visits(self, n: int) -> list[dict[str, Any]]:
        """``n`` remote visits, live-joinable now, each with its own unit, kiosk, resident
        and visitor (one visit per kiosk at a time), booked through begin_visit_now."""
        from openvisit.approvals.models import Approval, ApprovalStatus
        from openvisit.audit.service import AuditActor
        from openvisit.auth import service as auth
        from openvisit.demo import begin_visit_now
        from openvisit.facilities.models import HousingUnit, Kiosk, KioskLocation, VisitingHours
        from openvisit.people.models import IdentityStatus, Visitor
        from openvisit.people.verifications import record_verification
        from openvisit.residents.models import Resident

        staged = []
        now = self.clock.now()
        lifetime = dt.timedelta(hours=4)
        with self.sessions() as s:
            for _ in range(n):
                self.count += 1
                k = self.count
                unit = HousingUnit(facility_id=self.facility_id, name=f"Unit {k}", created_at=now)
                s.add(unit)
                s.flush()
                s.add_all(
                    VisitingHours(
                        unit_id=unit.id, weekday=d, start_time=dt.time(0), end_time=dt.time(23, 59)
                    )
                    for d in range(7)
                )
                kiosk = Kiosk(
                    facility_id=self.facility_id,
                    unit_id=unit.id,
                    name=f"Unit {k} kiosk",
                    location=KioskLocation.HOUSING,
                    credential_hash=auth.token_digest(secrets.token_hex(16)),  # activated
                    credential_issued_at=now,
                    created_at=now,
                )
                resident = Resident(
                    facility_id=self.facility_id,
                    unit_id=unit.id,
                    booking_number=f"MB-{k:05d}",
                    first_name="Resident",
                    last_name=str(k),
                    date_of_birth=dt.date(1990, 1, 2),
                    pin_hash="x",
                    created_at=now,
                    updated_at=now,
                )
                visitor = Visitor(
                    email=f"family{k}@bench.example",
                    password_hash="x",
                    legal_name=f"Family {k}",
                    date_of_birth=dt.date(1980, 1, 1),
                    email_verified_at=now,
                    identity_status=IdentityStatus.VERIFIED,
                    created_at=now,
                )
                s.add_all([kiosk, resident, visitor])
                s.flush()
                record_verification(s, visitor_id=visitor.id, facility_id=self.facility_id, at=now)
                s.add(
                    Approval(
                        facility_id=self.facility_id,
                        visitor_id=visitor.id,
                        resident_id=resident.id,
                        relationship="parent",
                        status=ApprovalStatus.APPROVED,
                        requested_at=now,
                        decided_at=now,
                    )
                )
                s.flush()
                visit = begin_visit_now(
                    s,
                    self.clock,
                    AuditActor("visitor", visitor.id, "bench"),
                    resident_id=resident.id,
                    visitor_id=visitor.id,
                    seconds=VISIT_SECONDS,
                )
                assert visit.resident_kiosk_id == kiosk.id and visit.recorded
                family = auth.start_session(
                    s, actor_type="visitor", actor_id=visitor.id, now=now, lifetime=lifetime
                )
                at_kiosk = auth.start_session(
                    s, actor_type="kiosk", actor_id=kiosk.id, now=now, lifetime=lifetime
                )
                at_kiosk.row.resident_id = resident.id
                staged.append({"id": visit.id, "visitor": family.token, "kiosk": at_kiosk.token})
            s.commit()
        return staged

    def recordings(self, visit_ids: list[int]) -> int:
        from sqlalchemy import func, select

        from openvisit.visits.models import VisitRecording

        with self.sessions() as s:
            return int(
                s.scalar(
                    select(func.count())
                    .select_from(VisitRecording)
                    .where(VisitRecording.visit_id.in_(visit_ids))
                )
                or 0
            )

    def media_up(self, visit_id: int, party: str) -> bool:
        from sqlalchemy import select

        from openvisit.visits.models import VisitEvent

        with self.sessions() as s:
            found = s.scalar(
                select(VisitEvent.id).where(
                    VisitEvent.visit_id == visit_id,
                    VisitEvent.kind == "media_up",
                    VisitEvent.party == party,
                )
            )
            return found is not None


# --- the load generator (a child process in the namespace) ------------------------------


async def loadgen(base_url: str, clip_path: str) -> None:
    """Join the visits read from stdin as synthetic parties and monitors; answer "mark"
    with what every video track received and every clip track sent so far, and the
    delays of the frames received since the last mark; "stop": hang up."""
    import logging

    from aiortc.mediastreams import MediaStreamError
    from tests.support import synthetic

    from openvisit.auth.cookies import KIOSK_COOKIE, SESSION_COOKIE
    from openvisit.media import forwarding

    logging.basicConfig(level=logging.WARNING)
    # aioice never offers 127.0.0.1 by itself, and loopback is all the namespace has.
    forwarding.use_addresses(["127.0.0.1"])
    sent_tracks: list[Any] = []
    delays: list[float] = []

    class TimedClipTrack(synthetic.ClipTrack):
        """Counts what it sends, and remembers when it sent each video frame."""

        def __init__(self, kind: str, clip: Any) -> None:
            super().__init__(kind, clip)
            self.sent = 0
            self.sent_at: dict[bytes, float] = {}
            sent_tracks.append(self)

        async def recv(self) -> Any:
            packet = await super().recv()
            self.sent += 1
            if self.kind == "video":
                # The clip loops every few seconds: a frame's last sending is the one.
                self.sent_at[bytes(packet)] = time.monotonic()
            return packet

    class TimedParty(synthetic.SyntheticParty):
        """Also times each received video frame from its sending by the other party's
        clip track in this same process (``sources``, per received track)."""

        sources: dict[str, Any]

        async def _count(self, key: str, track: Any) -> None:
            counter = self.received.setdefault(key, synthetic.Received())
            while True:
                try:
                    frame = await track.recv()
                except MediaStreamError:
                    return
                now = time.monotonic()
                if counter.first_at is None:
                    counter.first_at = now
                counter.frames += 1
                source = getattr(self, "sources", {}).get(key)
                sent = source.sent_at.get(frame.data) if source is not None else None
                if sent is not None:
                    delays.append(now - sent)

    synthetic.ClipTrack = TimedClipTrack  # type: ignore[misc]
    clip = synthetic.Clip.load(Path(clip_path))
    loop = asyncio.get_running_loop()

    async def read() -> str:
        return await loop.run_in_executor(None, sys.stdin.readline)

    def emit(message: dict[str, Any]) -> None:
        print(json.dumps(message), flush=True)

    spec = json.loads(await read())
    ws_base = "ws" + base_url.removeprefix("http")
    parties: dict[str, TimedParty] = {}
    for visit in spec["visits"]:
        url = f"{ws_base}/ws/visits/{visit['id']}"
        cookies = {
            "visitor": {SESSION_COOKIE: visit["visitor"]},
            "resident": {KIOSK_COOKIE: visit["kiosk"]},
        }
        for party, cookie in cookies.items():
            parties[f"{visit['id']}:{party}"] = TimedParty(url, base_url, cookie, clip)
        if visit.get("monitor"):
            parties[f"{visit['id']}:monitor"] = TimedParty(
                url, base_url, {SESSION_COOKIE: visit["monitor"]}, None
            )
    expected = {label: 2 if label.endswith(":monitor") else 1 for label in parties}
    gate = asyncio.Semaphore(4)

    async def join(party: TimedParty) -> None:
        async with gate:
            await party.join()

    results = await asyncio.gather(*(join(p) for p in parties.values()), return_exceptions=True)
    failed = [f"{label}: {r!r}" for label, r in zip(parties, results, strict=True) if r is not None]
    for label, party in parties.items():
        visit_id = label.split(":")[0]
        party.sources = {}
        for source in ("visitor", "resident"):
            publisher = parties[f"{visit_id}:{source}"]
            for pc in publisher._pcs[:1]:  # its publish connection
                for sender in pc.getSenders():
                    if sender.track is not None and sender.track.kind == "video":
                        party.sources[f"{source}:video"] = sender.track

    def flowing() -> int:
        return sum(
            1
            for p in parties.values()
            for key, r in p.received.items()
            if key.endswith(":video") and r.frames > 0
        )

    deadline = time.monotonic() + 30
    while flowing() < sum(expected.values()) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    emit(
        {"event": "ready", "failed": failed, "flowing": flowing(), "tracks": sum(expected.values())}
    )
    while (await read()).strip() == "mark":
        emit(
            {
                "event": "mark",
                "t": time.monotonic(),
                "received": {
                    label: [
                        r.frames for key, r in sorted(p.received.items()) if key.endswith(":video")
                    ]
                    + [0] * (expected[label] - sum(1 for k in p.received if k.endswith(":video")))
                    for label, p in parties.items()
                },
                "sent": [t.sent for t in sent_tracks if t.kind == "video"],
                "delays_ms": [round(d * 1000, 1) for d in delays],
            }
        )
        delays.clear()
    # Each party hangs up (a "leave"), as people do: the visit completes, its room closes.
    for label, party in parties.items():
        if not label.endswith(":monitor") and party._ws is not None:
            with contextlib.suppress(Exception):
                await party._ws.send(json.dumps({"type": "leave"}))
    await asyncio.sleep(0.5)
    await asyncio.gather(*(p.close() for p in parties.values()), return_exceptions=True)
    emit({"event": "stopped"})


def probe(base_url: str, seconds: float) -> None:
    """On "go" from stdin: GET /healthz PROBE_PER_SECOND times a second for ``seconds``
    over one keep-alive connection, as a browser would; print the latencies (ms)."""
    import http.client
    from urllib.parse import urlsplit

    where = urlsplit(base_url)
    sys.stdin.readline()

    def connect() -> http.client.HTTPConnection:
        return http.client.HTTPConnection(where.hostname or "127.0.0.1", where.port, timeout=10)

    conn, latencies, errors = connect(), [], 0
    start, n = time.monotonic(), 0
    while n / PROBE_PER_SECOND < seconds:
        wait = start + n / PROBE_PER_SECOND - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        n += 1
        t0 = time.perf_counter()
        try:
            conn.request("GET", "/healthz")
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(response.status)
        except Exception:
            errors += 1
            conn.close()
            conn = connect()
            continue
        latencies.append((time.perf_counter() - t0) * 1000)
    print(json.dumps({"ms": latencies, "errors": errors}), flush=True)


# --- capacity -----------------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


@dataclass
class Step:
    visits: int
    monitors: int
    tracks: int
    server_cores: float
    rss_mb: float
    fps_min: float
    fps_p10: float
    fps_mean: float
    delay_p50: float
    delay_p95: float
    http_p50: float
    http_p95: float
    http_errors: int
    loadgen_cores: float
    loadgens: int
    sent_fps_min: float
    other_cores: float
    recordings: int
    failed: list[str]


def run_probe(ns: str, server: Server, folder: Path, seconds: float) -> Child:
    return Child(
        ns, ["--probe", "--url", server.url, "--seconds", str(seconds)], folder / "probe.log"
    )


def idle_http(ns: str, server: Server, folder: Path) -> tuple[float, float]:
    """GET /healthz latency with no media at all: the baseline."""
    prober = run_probe(ns, server, folder, 5)
    try:
        time.sleep(1.0)  # let it start
        prober.send("go")
        found = prober.receive(20)
    finally:
        prober.close()
    return percentile(found["ms"], 0.5), percentile(found["ms"], 0.95)


def capacity_step(
    ns: str,
    server: Server,
    stager: Stager,
    folder: Path,
    n: int,
    clip: Path,
    warmup: float,
    window: float,
) -> Step:
    visits = stager.visits(n)
    for i, visit in enumerate(visits):
        visit["monitor"] = stager.staff_token if i % MONITOR_EVERY == 0 else None
    monitors = sum(1 for v in visits if v["monitor"])
    count = math.ceil(n / VISITS_PER_LOADGEN)
    groups = [visits[j::count] for j in range(count)]
    loadgens = [
        Child(
            ns,
            ["--loadgen", "--url", server.url, "--clip", str(clip)],
            folder / f"loadgen-{n}-{j}.log",
            nice=LOADGEN_NICE,
        )
        for j in range(count)
    ]
    prober: Child | None = None
    try:
        for child, group in zip(loadgens, groups, strict=True):
            child.send({"visits": group})
        ready = [child.receive(120) for child in loadgens]
        failed = [f for r in ready for f in r["failed"]]
        flowing, tracks = sum(r["flowing"] for r in ready), sum(r["tracks"] for r in ready)
        if flowing < tracks:
            failed.append(f"video flowing on only {flowing} of {tracks} tracks before warm-up")
        prober = run_probe(ns, server, folder, window)
        time.sleep(warmup)

        def mark() -> tuple[list[dict[str, Any]], float, list[float], tuple[float, float]]:
            for child in loadgens:
                child.send("mark")
            marks = [child.receive(30) for child in loadgens]
            return (
                marks,
                cpu_seconds(server.pid),
                [cpu_seconds(c.pid) for c in loadgens],
                (machine_busy()),
            )

        wall0 = time.monotonic()
        marks0, server0, gens0, busy0 = mark()
        prober.send("go")
        time.sleep(window)
        marks1, server1, gens1, busy1 = mark()
        wall = time.monotonic() - wall0
        rss = rss_mb(server.pid)
        http = prober.receive(window + 30)
    finally:
        if prober is not None:
            prober.close()
        for child in loadgens:
            with contextlib.suppress(Exception):
                child.send("stop")
        for child in loadgens:
            with contextlib.suppress(Exception):
                child.receive(30)
            child.close()
    fps, sent = [], []
    delays = [d for m in marks1 for d in m["delays_ms"]] or [float("nan")]
    for before, after in zip(marks0, marks1, strict=True):
        seconds = after["t"] - before["t"]
        for label, frames in after["received"].items():
            fps += [
                (b - a) / seconds for a, b in zip(before["received"][label], frames, strict=True)
            ]
        sent += [(b - a) / seconds for a, b in zip(before["sent"], after["sent"], strict=True)]
    # The server finishes the recordings once the parties leave: check that every party
    # was recorded, before this server stops.
    ids = [v["id"] for v in visits]
    deadline = time.monotonic() + 30
    while (recorded := stager.recordings(ids)) < 2 * n and time.monotonic() < deadline:
        time.sleep(0.5)
    latencies = http["ms"] or [float("nan")]
    server_cores = (server1 - server0) / wall
    loadgen_cores = sum(b - a for a, b in zip(gens0, gens1, strict=True)) / wall
    busy_cores = (busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1]) * (os.cpu_count() or 1)
    return Step(
        visits=n,
        monitors=monitors,
        tracks=len(fps),
        server_cores=server_cores,
        rss_mb=rss,
        fps_min=min(fps),
        fps_p10=percentile(fps, 0.10),
        fps_mean=statistics.fmean(fps),
        delay_p50=percentile(delays, 0.5),
        delay_p95=percentile(delays, 0.95),
        http_p50=percentile(latencies, 0.5),
        http_p95=percentile(latencies, 0.95),
        http_errors=http["errors"],
        loadgen_cores=loadgen_cores,
        loadgens=count,
        sent_fps_min=min(sent) if sent else 0.0,
        other_cores=busy_cores - server_cores - loadgen_cores,
        recordings=recorded,
        failed=failed,
    )


HEADER = (
    f"{'N':>3} {'rec':>4} {'mon':>3} {'tracks':>6} {'srv_cores':>9} {'rss_mb':>6} "
    f"{'fps_min':>7} {'fps_p10':>7} {'fps_mean':>8} {'delay_p50':>9} {'delay_p95':>9} "
    f"{'http_p50':>8} {'http_p95':>8} "
    f"{'loadgen_cores':>13} {'sent_fps_min':>12} {'other':>5} {'recorded':>8}"
)


def row(step: Step) -> str:
    return (
        f"{step.visits:>3} {2 * step.visits:>4} {step.monitors:>3} {step.tracks:>6} "
        f"{step.server_cores:>9.2f} {step.rss_mb:>6.0f} {step.fps_min:>7.1f} {step.fps_p10:>7.1f} "
        f"{step.fps_mean:>8.1f} {step.delay_p50:>9.0f} {step.delay_p95:>9.0f} "
        f"{step.http_p50:>8.1f} {step.http_p95:>8.1f} "
        f"{step.loadgen_cores:>9.2f} ({step.loadgens}) {step.sent_fps_min:>12.1f} "
        f"{step.other_cores:>5.2f} {step.recordings:>4}/{2 * step.visits:<3}"
    )


# --- browser joins ------------------------------------------------------------------

# In the visitor's page, before its own scripts: the time (ms from navigation start, the
# page's performance.now()) of the first remote video frame handed to the compositor
# (requestVideoFrameCallback); also when getVideoPlaybackQuality first counts a frame,
# polled every few ms, as a cross-check.
FIRST_FRAME_JS = """
(() => {
  const seen = window.__ovFirstFrame = {rvfc: null, polled: null};
  document.addEventListener('DOMContentLoaded', () => {
    const video = document.getElementById('remote-video');
    if (!video) return;
    video.requestVideoFrameCallback((now) => { seen.rvfc = now; });
    const poll = () => {
      if (video.getVideoPlaybackQuality().totalVideoFrames > 0) seen.polled = performance.now();
      else setTimeout(poll, 2);
    };
    poll();
  });
})();
"""


def wait_until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


def browser_joins(
    ns: str, server: Server, stager: Stager, folder: Path, count: int
) -> tuple[list[tuple[float, float | None]], float]:
    """(rvfc ms, polled ms) per counted join; the cores Chromium and Playwright used."""
    from playwright.sync_api import sync_playwright
    from tests.support.synthetic import make_clip, make_y4m

    from openvisit.auth.cookies import KIOSK_COOKIE, SESSION_COOKIE

    wrapper = folder / "chromium-in-netns"
    wrapper.write_text(f'#!/bin/sh\nexec {IP} netns exec {ns} {CHROMIUM} "$@"\n')
    wrapper.chmod(0o755)
    y4m = folder / "camera.y4m"
    make_y4m(make_clip(folder / "camera.webm", seconds=2.0), y4m)
    found: list[tuple[float, float | None]] = []
    browsers = ("chromium", "chrome", "node")  # node: Playwright's driver
    browser_cpu, wall0 = 0.0, time.monotonic()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(wrapper),
            headless=True,
            args=[*CHROMIUM_FLAGS, f"--use-file-for-fake-video-capture={y4m}"],
        )
        try:
            for i in range(count + 1):  # the first warms Chromium up and is not counted
                visit = stager.visits(1)[0]
                cpu0 = cpu_by_command(browsers)
                contexts = []
                try:
                    kiosk_context = browser.new_context(viewport={"width": 800, "height": 700})
                    contexts.append(kiosk_context)
                    kiosk_context.add_cookies(
                        [{"name": KIOSK_COOKIE, "value": visit["kiosk"], "url": server.url}]
                    )
                    kiosk = kiosk_context.new_page()
                    kiosk.goto(f"{server.url}/kiosk/visits/{visit['id']}")
                    # The resident is in: the server sees the kiosk's media flowing.
                    wait_until(lambda v=visit: stager.media_up(v["id"], "resident"), 20, "kiosk")
                    visitor_context = browser.new_context(viewport={"width": 800, "height": 700})
                    contexts.append(visitor_context)
                    visitor_context.add_cookies(
                        [{"name": SESSION_COOKIE, "value": visit["visitor"], "url": server.url}]
                    )
                    visitor_context.add_init_script(FIRST_FRAME_JS)
                    page = visitor_context.new_page()
                    page.goto(f"{server.url}/visits/{visit['id']}/live", wait_until="commit")
                    page.wait_for_function(
                        "() => window.__ovFirstFrame && window.__ovFirstFrame.rvfc !== null",
                        timeout=20000,
                    )
                    time.sleep(0.1)  # the polled cross-check may come a moment later
                    seen = page.evaluate("() => window.__ovFirstFrame")
                    if i > 0:
                        found.append((float(seen["rvfc"]), seen["polled"]))
                        print(
                            f"  join {i:>2}: first remote frame {seen['rvfc']:.0f} ms after "
                            "navigation start"
                        )
                    # Hang up once the visit is live (both parties' media up): it completes.
                    wait_until(lambda v=visit: stager.media_up(v["id"], "visitor"), 20, "visitor")
                    time.sleep(0.5)
                    kiosk.locator("#leave").click()
                    page.locator("#visit-ended").wait_for(state="visible", timeout=10000)
                    # Renderers end with their contexts: count them (new ones whole) before.
                    browser_cpu += sum(
                        t - cpu0.get(pid, 0.0) for pid, t in cpu_by_command(browsers).items()
                    )
                finally:
                    for context in contexts:
                        context.close()
        finally:
            browser.close()
    return found, browser_cpu / (time.monotonic() - wall0)


# --- main -----------------------------------------------------------------------------


def preflight() -> str | None:
    if os.geteuid() != 0:
        return "network namespaces need root"
    if not os.path.exists(IP):
        return "iproute2 (ip) is not installed"
    if not os.path.exists(CHROMIUM):
        return f"{CHROMIUM} is not installed"
    return None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="a short smoke: N in 2, 4; 5 joins")
    parser.add_argument("--steps", help="comma-separated N to try (default 2,4,8,12,16,20)")
    parser.add_argument("--joins", type=int, help=f"browser joins (default {JOINS})")
    parser.add_argument("--warmup", type=float, default=WARMUP_SECONDS, help="seconds")
    parser.add_argument("--window", type=float, help="measuring seconds (default 10; 5 --quick)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--loadgen", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--clip", help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.loadgen:
        asyncio.run(loadgen(args.url, args.clip))
        return
    if args.probe:
        probe(args.url, args.seconds)
        return
    problem = preflight()
    if problem:
        sys.exit(f"media_capacity: {problem}")
    # A plain `kill` still cleans up: the namespace and the child processes go.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    steps = (
        [int(n) for n in args.steps.split(",")]
        if args.steps
        else QUICK_STEPS
        if args.quick
        else STEPS
    )
    joins = args.joins if args.joins is not None else QUICK_JOINS if args.quick else JOINS
    window = args.window or (QUICK_WINDOW_SECONDS if args.quick else WINDOW_SECONDS)
    started = time.monotonic()
    folder = Path(tempfile.mkdtemp(prefix="ov-media-bench-"))
    try:
        measured = run(folder, steps, joins, args.warmup, window, started)
    finally:
        if args.keep:
            print(f"kept {folder} (database, server and load-generator logs)")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    report(*measured, started)


def run(
    folder: Path, steps: list[int], joins: int, warmup: float, window: float, started: float
) -> tuple[list[Step], list[tuple[float, float | None]], float]:
    from tests.support.synthetic import make_clip

    from openvisit.dbadmin import upgrade

    with network_namespace() as ns:
        db_url = f"sqlite:///{folder / 'media.db'}"
        upgrade(db_url)
        clip = make_clip(folder / "clip.webm")
        stager = Stager(db_url)
        with serving(ns, folder, db_url, "idle") as server:
            idle_p50, idle_p95 = idle_http(ns, server, folder)
            print(
                f"GET /healthz on a server with no media: p50 {idle_p50:.1f} ms, p95 "
                f"{idle_p95:.1f} ms; server RSS {rss_mb(server.pid):.0f} MB"
            )
        print(
            f"capacity: N recorded remote visits (2N recorded streams) of 640x480@30 VP8 + "
            f"Opus, one monitor per {MONITOR_EVERY} visits, a fresh server per N; "
            f"{warmup:.0f} s warm-up, {window:.0f} s window; fps over every subscribed "
            f"video track; http = GET /healthz {PROBE_PER_SECOND}/s (ms); loadgen = the "
            "synthetic clients (processes); other = the rest of the machine's busy cores"
        )
        print(HEADER)
        results: list[Step] = []
        for n in steps:
            if time.monotonic() - started > CAPACITY_BUDGET_SECONDS:
                print(f"(out of time: N={n} and above not tried)")
                break
            with serving(ns, folder, db_url, f"n{n}") as server:
                step = capacity_step(ns, server, stager, folder, n, clip, warmup, window)
            results.append(step)
            print(row(step), flush=True)
            if step.other_cores > OTHER_CORES_WARNING:
                print(f"    (other processes used {step.other_cores:.2f} cores: figures disturbed)")
            for failure in step.failed:
                print(f"    join failed: {failure}")
            if step.fps_min < STOP_BELOW_FPS:
                print(f"(the slowest track fell to {step.fps_min:.1f} fps: no larger N tried)")
                break
        print(
            f"browser joins: {joins} (+1 uncounted warm-up), each a fresh visit whose resident "
            "is in at a kiosk page; visitor page navigation start -> first remote frame "
            "(requestVideoFrameCallback)"
        )
        with serving(ns, folder, db_url, "joins") as server:
            busy0, wall0 = machine_busy(), time.monotonic()
            server0, me0 = cpu_seconds(server.pid), time.process_time()
            joined, browser_cores = browser_joins(ns, server, stager, folder, joins)
            busy1, wall = machine_busy(), time.monotonic() - wall0
            server_cores = (cpu_seconds(server.pid) - server0) / wall
        busy = (busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1]) * (os.cpu_count() or 1)
        me = (time.process_time() - me0) / wall
        print(
            f"  during the joins: server {server_cores:.2f} cores, Chromium and Playwright "
            f"{browser_cores:.2f}, this script {me:.2f}, other "
            f"{busy - server_cores - browser_cores - me:.2f}"
        )
    return results, joined, idle_p95


def largest_holding(results: list[Step], holds: Any) -> Step | None:
    """The largest N tried before the first N that did not hold."""
    best = None
    for step in sorted(results, key=lambda s: s.visits):
        if not holds(step):
            break
        best = step
    return best


def report(
    results: list[Step], joined: list[tuple[float, float | None]], idle_p95: float, started: float
) -> None:
    best = largest_holding(results, lambda s: s.fps_min >= TARGET_FPS)
    best_p10 = largest_holding(results, lambda s: s.fps_p10 >= TARGET_FPS)
    best_prompt = largest_holding(
        results, lambda s: s.fps_min >= TARGET_FPS and s.delay_p95 <= PROMPT_DELAY_MS
    )
    rvfc = [j[0] for j in joined]
    polled = [j[1] for j in joined if j[1] is not None]
    nan = float("nan")
    join_p50 = percentile(rvfc, 0.5) if rvfc else nan
    join_p95 = percentile(rvfc, 0.95) if rvfc else nan
    print(
        f"join -> first remote frame over {len(rvfc)} joins: p50 {join_p50:.0f} ms, p95 "
        f"{join_p95:.0f} ms, min {min(rvfc, default=nan):.0f}, max {max(rvfc, default=nan):.0f} "
        f"(getVideoPlaybackQuality polled: p50 {percentile(polled, 0.5) if polled else nan:.0f})"
    )
    if best is not None:
        print(
            f"largest N with every video track >= {TARGET_FPS:.0f} fps: {best.visits} recorded "
            f"visits, server {best.server_cores:.2f} cores ({best.server_cores / best.visits:.3f} "
            f"per visit), {best.rss_mb:.0f} MB; GET /healthz p95 {best.http_p95:.1f} ms "
            f"(idle {idle_p95:.1f} ms)"
        )
    print(
        f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}; took "
        f"{time.monotonic() - started:.0f} s"
    )
    at = best or Step(0, 0, 0, *[0.0] * 7, 0.0, 0.0, 0, 0.0, 0, 0.0, 0.0, 0, [])
    print(
        f"RESULT max_recorded_visits_28fps={at.visits} cores_at_max={at.server_cores:.2f} "
        f"join_p50_ms={join_p50:.0f} join_p95_ms={join_p95:.0f} "
        f"http_p95_ms_at_max={at.http_p95:.1f} loadgen_cores_at_max={at.loadgen_cores:.2f} "
        f"rss_mb_at_max={at.rss_mb:.0f} fps_min_at_max={at.fps_min:.1f} "
        f"frame_delay_p95_ms_at_max={at.delay_p95:.0f} "
        f"max_recorded_visits_28fps_p10={best_p10.visits if best_p10 else 0} "
        f"max_recorded_visits_28fps_delay{PROMPT_DELAY_MS}="
        f"{best_prompt.visits if best_prompt else 0} "
        f"http_p95_ms_idle={idle_p95:.1f} "
        f"largest_n_tried={max((s.visits for s in results), default=0)}"
    )


if __name__ == "__main__":
    main()
