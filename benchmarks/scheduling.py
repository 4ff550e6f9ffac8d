"""Scheduling at facility scale, on PostgreSQL.

A facility of 2,000 residents in 40 units with 120 kiosks, its next 14 days
booked to about 70% of kiosk capacity. Prints:
  * availability search for one resident over the whole horizon (service call,
    p50 and p95 over 200 searches of random residents);
  * bookings per second with 16 concurrent clients (16 processes, each its own
    connection and transactions), first for paid visits (each booking also holds
    length x rate in the ledger), then for free visits (scheduling alone), and the
    overlaps found afterwards (must be 0); with the CPU each booking cost.

Usage: python benchmarks/scheduling.py [--pg URL-of-an-admin-database] [--keep]
The last line is `RESULT key=value ...`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing as mp
import os
import random
import statistics
import sys
import time
import uuid
from zoneinfo import ZoneInfo

from sqlalchemy import create_engine, insert, select, text

from openvisit.approvals.models import Approval, ApprovalStatus
from openvisit.audit.service import AuditActor
from openvisit.billing.models import AccountKind, LedgerAccount, LedgerEntry, LedgerTransaction
from openvisit.clock import FrozenClock
from openvisit.db import make_engine, make_sessionmaker
from openvisit.dbadmin import upgrade
from openvisit.errors import DomainError
from openvisit.facilities.models import (
    Facility,
    FacilityKind,
    FacilitySettings,
    HousingUnit,
    Kiosk,
    KioskLocation,
    VisitingHours,
)
from openvisit.people.models import IdentityStatus, IdentityVerification, Visitor
from openvisit.residents.models import Resident
from openvisit.scheduling import service
from openvisit.visits.models import Visit, VisitType

RESIDENTS, UNITS, KIOSKS_PER_UNIT, DAYS, FILL = 2000, 40, 3, 14, 0.70
TZ = ZoneInfo("America/New_York")
NOW = dt.datetime(2026, 11, 30, 5, 0, tzinfo=dt.UTC)  # Monday 00:00 in New York
LENGTH = dt.timedelta(minutes=30)
OPEN, CLOSE = dt.time(9), dt.time(17)
CLIENTS, BOOKINGS_PER_CLIENT, SEARCHES = 16, 100, 200


def seed(url: str, rng: random.Random) -> dict:
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    with factory() as s:
        facility = Facility(
            name="Metro Detention Center",
            timezone="America/New_York",
            kind=FacilityKind.JAIL,
            average_daily_population=RESIDENTS,
            created_at=NOW,
        )
        s.add(facility)
        s.flush()
        s.add(
            FacilitySettings(
                facility_id=facility.id,
                min_notice_minutes=0,
                booking_horizon_days=DAYS,
                slot_step_minutes=30,
                visit_lengths_minutes=[30],
                weekly_remote_visits=50,
            )
        )
        units, kiosks_by_unit = [], {}
        for u in range(UNITS):
            unit = HousingUnit(facility_id=facility.id, name=f"Unit {u:02d}", created_at=NOW)
            s.add(unit)
            s.flush()
            units.append(unit.id)
            s.add_all(
                VisitingHours(unit_id=unit.id, weekday=d, start_time=OPEN, end_time=CLOSE)
                for d in range(7)
            )
            kiosks = [
                Kiosk(
                    facility_id=facility.id,
                    unit_id=unit.id,
                    name=f"U{u} K{k}",
                    location=KioskLocation.HOUSING,
                    created_at=NOW,
                )
                for k in range(KIOSKS_PER_UNIT)
            ]
            s.add_all(kiosks)
            s.flush()
            kiosks_by_unit[unit.id] = [k.id for k in kiosks]
        rows = [
            dict(
                facility_id=facility.id,
                booking_number=f"M{r:05d}",
                first_name="R",
                last_name=f"{r}",
                date_of_birth=dt.date(1990, 1, 1),
                unit_id=units[r % UNITS],
                custody_status="in_custody",
                restriction_reason="",
                preferred_language="en",
                created_at=NOW,
                updated_at=NOW,
            )
            for r in range(RESIDENTS)
        ]
        s.execute(insert(Resident), rows)
        residents = s.execute(select(Resident.id, Resident.unit_id).order_by(Resident.id)).all()
        s.execute(
            insert(Visitor),
            [
                dict(
                    email=f"family{r}@example.com",
                    password_hash="x",
                    legal_name=f"Family {r}",
                    date_of_birth=dt.date(1980, 1, 1),
                    phone="",
                    email_verified_at=NOW,
                    identity_status=IdentityStatus.VERIFIED.value,
                    created_at=NOW,
                )
                for r in range(RESIDENTS)
            ],
        )
        visitors = s.scalars(select(Visitor.id).order_by(Visitor.id)).all()
        s.execute(
            insert(IdentityVerification),
            [dict(visitor_id=v, facility_id=facility.id, verified_at=NOW) for v in visitors],
        )
        _fund_wallets(s, visitors)
        s.execute(
            insert(Approval),
            [
                dict(
                    facility_id=facility.id,
                    visitor_id=visitors[i],
                    resident_id=residents[i].id,
                    relationship="parent",
                    minors=[],
                    status=ApprovalStatus.APPROVED.value,
                    reason="",
                    requested_at=NOW,
                )
                for i in range(RESIDENTS)
            ],
        )
        # Fill every kiosk's 30-minute slots to FILL, each slot with a different resident
        # of the unit, so nothing overlaps.
        by_unit: dict[int, list[int]] = {}
        pair = {residents[i].id: visitors[i] for i in range(RESIDENTS)}
        for rid, uid in residents:
            by_unit.setdefault(uid, []).append(rid)
        visits, free = [], []
        for day in range(DAYS):
            date = (NOW.astimezone(TZ) + dt.timedelta(days=day)).date()
            start = dt.datetime.combine(date, OPEN, tzinfo=TZ).astimezone(dt.UTC)
            end_of_day = dt.datetime.combine(date, CLOSE, tzinfo=TZ).astimezone(dt.UTC)
            while start + LENGTH <= end_of_day:
                for uid in units:
                    people = rng.sample(by_unit[uid], KIOSKS_PER_UNIT)
                    for kiosk_id, rid in zip(kiosks_by_unit[uid], people, strict=True):
                        if rng.random() < FILL:
                            visits.append(
                                dict(
                                    facility_id=facility.id,
                                    resident_id=rid,
                                    visitor_id=pair[rid],
                                    visit_type="remote",
                                    resident_kiosk_id=kiosk_id,
                                    lobby_kiosk_id=None,
                                    starts_at=start,
                                    ends_at=start + LENGTH,
                                    state="scheduled",
                                    participants=[],
                                    rate_cents_per_minute=15,
                                    recorded=True,
                                    reference=uuid.uuid4().hex[:16],
                                    booked_by_type="visitor",
                                    booked_by_id=pair[rid],
                                    created_at=NOW,
                                    ended_reason="",
                                )
                            )
                        else:
                            free.append((uid, start))
                start += LENGTH
        for i in range(0, len(visits), 5000):
            s.execute(insert(Visit), visits[i : i + 5000])
        s.commit()
        capacity = DAYS * 16 * UNITS * KIOSKS_PER_UNIT
        print(
            f"seeded {RESIDENTS} residents, {UNITS} units, {UNITS * KIOSKS_PER_UNIT} kiosks, "
            f"{len(visits)} visits = {len(visits) / capacity:.0%} of {capacity} kiosk slots"
        )
        world = {
            "residents": [(r.id, r.unit_id) for r in residents],
            "pair": pair,
            "by_unit": by_unit,
            "free": free,
        }
    engine.dispose()
    return world


def _fund_wallets(s, visitors: list[int], cents: int = 200_00) -> None:
    """Every family has paid $200 in, so bookings (which hold length x rate) can go through."""
    received = LedgerAccount(
        kind=AccountKind.PAYMENTS_RECEIVED, owner_key="payments_received", created_at=NOW
    )
    s.add(received)
    s.flush()
    s.execute(
        insert(LedgerAccount),
        [
            dict(kind=kind.value, owner_key=f"{kind.value}:{v}", visitor_id=v, created_at=NOW)
            for v in visitors
            for kind in (AccountKind.VISITOR_WALLET, AccountKind.VISITOR_HOLD)
        ],
    )
    wallets = dict(
        s.execute(
            select(LedgerAccount.visitor_id, LedgerAccount.id).where(
                LedgerAccount.kind == AccountKind.VISITOR_WALLET
            )
        ).all()
    )
    s.execute(
        insert(LedgerTransaction),
        [
            dict(
                idempotency_key=f"bench-fund:{v}",
                kind="deposit",
                digest="bench",
                created_at=NOW,
                memo="Added $200.00 (benchmark)",
                actor_type="system",
            )
            for v in visitors
        ],
    )
    txns = dict(s.execute(select(LedgerTransaction.idempotency_key, LedgerTransaction.id)).all())
    entries = []
    for v in visitors:
        t = txns[f"bench-fund:{v}"]
        entries += [
            dict(transaction_id=t, account_id=received.id, amount_cents=-cents),
            dict(transaction_id=t, account_id=wallets[v], amount_cents=cents),
        ]
    s.execute(insert(LedgerEntry), entries)


def searches(url: str, world: dict, rng: random.Random) -> tuple[float, float, float]:
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    clock = FrozenClock(NOW)
    timings, slots = [], []
    for n in range(SEARCHES + 10):
        rid, _uid = rng.choice(world["residents"])
        with factory() as s:
            t0 = time.perf_counter()
            result = service.availability(
                s,
                clock,
                resident_id=rid,
                visitor_id=world["pair"][rid],
                visit_type=VisitType.REMOTE,
                length_minutes=30,
            )
            elapsed = (time.perf_counter() - t0) * 1000
            s.rollback()
        if n >= 10:  # the first few warm the connection pool and caches
            timings.append(elapsed)
            slots.append(len(result.slots))
    engine.dispose()
    timings.sort()
    p95 = timings[int(len(timings) * 0.95) - 1]
    return statistics.median(timings), p95, statistics.mean(slots)


def _postgres_cpu() -> dict[int, float]:
    """CPU seconds used so far by each PostgreSQL process of this machine (from /proc)."""
    tick, found = os.sysconf("SC_CLK_TCK"), {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/comm") as f:
                if not f.read().startswith("postgres"):
                    continue
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[int(pid)] = (int(fields[11]) + int(fields[12])) / tick
    return found


def _postgres_cpu_since(before: dict[int, float]) -> float:
    """CPU used since ``before`` by the PostgreSQL processes alive at both moments."""
    now = _postgres_cpu()
    return sum(now[pid] - before.get(pid, 0.0) for pid in now if pid in before)


def _machine_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + fields[4]
    return (sum(fields) - idle) / tick, sum(fields) / tick


def _client(args: tuple) -> tuple[int, int, int, float]:
    url, intents, start_line, finish_line = args
    engine = make_engine(url, pool_size=1, max_overflow=0)
    factory = make_sessionmaker(engine)
    clock = FrozenClock(NOW)
    booked = taken = other = 0
    # Warm up outside the measurement: connect, and compile the statements once.
    rid, vid, _start = intents[0]
    with factory() as s:
        service.availability(
            s,
            clock,
            resident_id=rid,
            visitor_id=vid,
            visit_type=VisitType.REMOTE,
            length_minutes=30,
        )
        s.rollback()
    start_line.wait()
    cpu0 = time.process_time()
    for rid, vid, start in intents:
        with factory() as s:
            try:
                service.book(
                    s,
                    clock,
                    AuditActor("visitor", vid, "bench"),
                    resident_id=rid,
                    visitor_id=vid,
                    visit_type=VisitType.REMOTE,
                    start=start,
                    length_minutes=30,
                )
                s.commit()
                booked += 1
            except DomainError as exc:
                s.rollback()
                if exc.code == "slot_taken":
                    taken += 1
                else:
                    other += 1
    cpu = time.process_time() - cpu0
    finish_line.wait()  # keep the connection (and its server process) until it is counted
    engine.dispose()
    return booked, taken, other, cpu


def intents_for(world: dict, rng: random.Random, rounds: int) -> list[list[tuple]]:
    """Disjoint lists of booking intents, one per round. Each intent is a free kiosk slot
    of a unit, asked for by a resident of that unit who may or may not be free then: a
    realistic mix of wins and lost races."""
    free = rng.sample(world["free"], rounds * CLIENTS * BOOKINGS_PER_CLIENT)
    intents = []
    for uid, start in free:
        rid = rng.choice(world["by_unit"][uid])
        intents.append((rid, world["pair"][rid], start))
    size = CLIENTS * BOOKINGS_PER_CLIENT
    return [intents[i * size : (i + 1) * size] for i in range(rounds)]


def bookings(url: str, intents: list[tuple]) -> tuple[float, int, int, int, float, float, float]:
    chunks = [intents[i::CLIENTS] for i in range(CLIENTS)]
    with mp.Manager() as manager:
        start_line, finish_line = manager.Barrier(CLIENTS + 1), manager.Barrier(CLIENTS + 1)
        with mp.Pool(CLIENTS) as pool:
            pending = pool.map_async(_client, [(url, c, start_line, finish_line) for c in chunks])
            start_line.wait()
            t0, db0, m0 = time.perf_counter(), _postgres_cpu(), _machine_busy_seconds()
            finish_line.wait()
            elapsed, db_cpu = time.perf_counter() - t0, _postgres_cpu_since(db0)
            m1 = _machine_busy_seconds()
            busy = (m1[0] - m0[0]) / (m1[1] - m0[1]) if m1[1] > m0[1] else 0.0
            results = pending.get()
    booked = sum(r[0] for r in results)
    attempts = len(intents)
    app_ms = sum(r[3] for r in results) / attempts * 1000
    return (
        booked / elapsed,
        booked,
        sum(r[1] for r in results),
        sum(r[2] for r in results),
        app_ms,
        db_cpu / attempts * 1000,
        busy,
    )


def overlaps(url: str) -> int:
    engine = create_engine(url)
    active = "('requested','scheduled','open','live')"
    query = f"""
        SELECT count(*) FROM visits a JOIN visits b ON a.id < b.id
         AND a.state IN {active} AND b.state IN {active}
         AND tstzrange(a.starts_at, a.ends_at) && tstzrange(b.starts_at, b.ends_at)
         AND (a.resident_kiosk_id = b.resident_kiosk_id OR a.resident_id = b.resident_id
              OR a.visitor_id = b.visitor_id)"""
    with engine.connect() as conn:
        count = conn.execute(text(query)).scalar_one()
    engine.dispose()
    return int(count)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--pg",
        default=os.environ.get(
            "OPENVISIT_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
        ),
    )
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    args = parser.parse_args()
    rng = random.Random(20261126)
    name = f"openvisit_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(args.pg, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = args.pg.rsplit("/", 1)[0] + f"/{name}"
    try:
        upgrade(url)
        t0 = time.perf_counter()
        world = seed(url, rng)
        print(f"seeding took {time.perf_counter() - t0:.1f} s")
        p50, p95, mean_slots = searches(url, world, rng)
        print(
            f"availability search, whole {DAYS}-day horizon, one resident: "
            f"p50 {p50:.1f} ms, p95 {p95:.1f} ms over {SEARCHES} searches "
            f"({mean_slots:.0f} bookable starts on average)"
        )
        paid_round, free_round = intents_for(world, rng, 2)
        rate, booked, taken, other, app_ms, db_ms, busy = bookings(url, paid_round)
        print(
            f"paid visits (each booking also holds length x rate in the ledger), "
            f"{CLIENTS} concurrent clients: {rate:.0f} bookings/s ({booked} booked, {taken} "
            f"lost a race or found the time taken, {other} refused by another rule)"
        )
        print(
            f"  CPU per booking attempt: {app_ms:.1f} ms in the app's Python, "
            f"{db_ms:.1f} ms in PostgreSQL; the machine's cores were {busy:.0%} busy"
        )
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("UPDATE facility_settings SET remote_rate_cents_per_minute = 0"))
        engine.dispose()
        free_rate, free_booked, *_rest, free_app_ms, free_db_ms, _busy = bookings(url, free_round)
        print(
            f"free visits (no money moves), {CLIENTS} concurrent clients: {free_rate:.0f} "
            f"bookings/s ({free_booked} booked); CPU per attempt {free_app_ms:.1f} ms app, "
            f"{free_db_ms:.1f} ms PostgreSQL"
        )
        found = overlaps(url)
        print(f"overlapping active visits afterwards: {found}")
        print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}")
        print(
            f"RESULT search_p50_ms={p50:.1f} search_p95_ms={p95:.1f} bookings_per_s={rate:.0f} "
            f"free_bookings_per_s={free_rate:.0f} overlaps={found} booked={booked + free_booked} "
            f"clients={CLIENTS} app_cpu_ms={app_ms:.1f} db_cpu_ms={db_ms:.1f}"
        )
    finally:
        if not args.keep:
            with admin.connect() as conn:
                conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :n AND pid <> pg_backend_pid()"
                    ),
                    {"n": name},
                )
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


if __name__ == "__main__":
    main()
