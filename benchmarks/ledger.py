"""The ledger on PostgreSQL: settlement throughput, and the invariant check at scale.

Prints, as it goes:
  * settlements per second with 8 concurrent workers (8 processes, each with its own
    connection), each settling its share of N completed visits through the real path,
    ``billing.service.settle_visit``, one transaction per visit: the resident's lock, the
    meter, fair-quality credits from the media server's measurements (one row per party
    and connected minute, as signaling stores them), the weekly free minutes, one balanced
    ledger transaction and the settlement row; with the CPU each settlement cost in the app
    and in PostgreSQL;
  * the invariant check (``billing.ledger.check_invariants``: all entries and each
    transaction sum to zero, no wallet or hold below zero, every settled visit holds
    nothing) over 1,000,000 ledger entries: the settled visits above plus a year of
    history bulk-loaded with COPY (balanced deposits, holds and captures of settled visits).

It creates its own database and drops it at the end (unless --keep).
Usage: python benchmarks/ledger.py [--pg URL-of-an-admin-database] [--visits N]
                                   [--workers 8] [--entries 1000000] [--keep]
The last line is `RESULT key=value ...`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing as mp
import os
import random
import statistics
import sys
import time
import uuid
from decimal import Decimal

from sqlalchemy import create_engine, func, insert, select, text

from openvisit.billing import ledger, settlement
from openvisit.billing.models import AccountKind, BillingSettlement, LedgerAccount, LedgerEntry
from openvisit.clock import FrozenClock
from openvisit.db import make_engine, make_sessionmaker
from openvisit.dbadmin import upgrade
from openvisit.facilities.models import (
    Facility,
    FacilityKind,
    FacilitySettings,
    HousingUnit,
    Kiosk,
    KioskLocation,
)
from openvisit.people.models import IdentityStatus, Visitor
from openvisit.residents.models import Resident
from openvisit.visits.models import Visit

RATE = 15  # cents a minute
LENGTH_S = 30 * 60
HOLD = RATE * LENGTH_S // 60  # 450 cents set aside per 30-minute visit
WEEK = dt.datetime(2026, 11, 16, 14, 0, tzinfo=dt.UTC)  # Monday 9:00 in New York
NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)  # when the workers settle
FUNDS = 2_000_00  # what each family has paid in


# --- seeding ---------------------------------------------------------------------------


def _copy(raw, table: str, columns: list[str], rows) -> int:  # type: ignore[no-untyped-def]
    """COPY rows (tuples) into a table; returns how many."""
    n = 0
    with raw.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
            n += 1
    return n


def _set_sequence(raw, table: str) -> None:  # type: ignore[no-untyped-def]
    with raw.cursor() as cur:
        cur.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
            f"(SELECT COALESCE(max(id), 1) FROM {table}))"
        )


def _next_id(raw, table: str) -> int:  # type: ignore[no-untyped-def]
    with raw.cursor() as cur:
        cur.execute(f"SELECT COALESCE(max(id), 0) + 1 FROM {table}")
        return int(cur.fetchone()[0])


VISIT_COLUMNS = [
    "id",
    "facility_id",
    "resident_id",
    "visitor_id",
    "visit_type",
    "resident_kiosk_id",
    "starts_at",
    "ends_at",
    "state",
    "participants",
    "rate_cents_per_minute",
    "recorded",
    "reference",
    "booked_by_type",
    "booked_by_id",
    "created_at",
    "ended_reason",
]
TXN_COLUMNS = [
    "id",
    "idempotency_key",
    "kind",
    "digest",
    "created_at",
    "memo",
    "visit_id",
    "facility_id",
    "actor_type",
]
ENTRY_COLUMNS = ["transaction_id", "account_id", "amount_cents"]


def _visit(world: dict, vid: int, family: int, start: dt.datetime, ref: str) -> tuple:
    resident, visitor = world["residents"][family], world["visitors"][family]
    end = start + dt.timedelta(seconds=LENGTH_S)
    booked = start - dt.timedelta(days=2)
    kiosk, facility = world["kiosk"], world["facility"]
    return (vid, facility, resident, visitor, "remote", kiosk, start, end, "completed", "[]",
            Decimal(RATE), True, ref, "visitor", visitor, booked, "")  # fmt: skip


def _txn(
    txn: int, key: str, kind: str, at: dt.datetime, visit_id: int | None, world: dict
) -> tuple:
    facility = world["facility"] if visit_id is not None else None
    return (txn, key, kind, "bench", at, f"{kind} (benchmark)", visit_id, facility, "system")


def seed_world(url: str, families: int) -> dict:
    """A jail with one unit and kiosk, ``families`` residents each with one visitor, and
    the ledger accounts they use (a wallet and a hold each)."""
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    with factory() as s:
        facility = Facility(
            name="Benchmark County Jail",
            timezone="America/New_York",
            kind=FacilityKind.JAIL,
            average_daily_population=800,
            created_at=WEEK,
        )
        s.add(facility)
        s.flush()
        s.add(FacilitySettings(facility_id=facility.id, free_minutes_per_week=20))
        unit = HousingUnit(facility_id=facility.id, name="Unit A", created_at=WEEK)
        s.add(unit)
        s.flush()
        kiosk = Kiosk(
            facility_id=facility.id,
            unit_id=unit.id,
            name="A1",
            location=KioskLocation.HOUSING,
            created_at=WEEK,
        )
        s.add(kiosk)
        s.flush()
        s.execute(
            insert(Resident),
            [
                dict(
                    facility_id=facility.id,
                    booking_number=f"B{r:06d}",
                    first_name="R",
                    last_name=str(r),
                    date_of_birth=dt.date(1990, 1, 1),
                    unit_id=unit.id,
                    custody_status="in_custody",
                    restriction_reason="",
                    preferred_language="en",
                    created_at=WEEK,
                    updated_at=WEEK,
                )
                for r in range(families)
            ],
        )
        s.execute(
            insert(Visitor),
            [
                dict(
                    email=f"family{r}@example.com",
                    password_hash="x",
                    legal_name=f"Family {r}",
                    date_of_birth=dt.date(1980, 1, 1),
                    phone="",
                    email_verified_at=WEEK,
                    identity_status=IdentityStatus.VERIFIED.value,
                    created_at=WEEK,
                )
                for r in range(families)
            ],
        )
        residents = s.scalars(select(Resident.id).order_by(Resident.id)).all()
        visitors = s.scalars(select(Visitor.id).order_by(Visitor.id)).all()
        rows = [
            dict(
                kind=AccountKind.PAYMENTS_RECEIVED.value,
                owner_key="payments_received",
                visitor_id=None,
                facility_id=None,
                created_at=WEEK,
            ),
            dict(
                kind=AccountKind.FACILITY_REVENUE.value,
                owner_key=f"facility_revenue:{facility.id}",
                visitor_id=None,
                facility_id=facility.id,
                created_at=WEEK,
            ),
        ]
        rows += [
            dict(
                kind=kind.value,
                owner_key=f"{kind.value}:{v}",
                visitor_id=v,
                facility_id=None,
                created_at=WEEK,
            )
            for v in visitors
            for kind in (AccountKind.VISITOR_WALLET, AccountKind.VISITOR_HOLD)
        ]
        s.execute(insert(LedgerAccount), rows)
        accounts = dict(s.execute(select(LedgerAccount.owner_key, LedgerAccount.id)).all())
        world = {
            "facility": facility.id,
            "kiosk": kiosk.id,
            "residents": list(residents),
            "visitors": list(visitors),
            "received": accounts["payments_received"],
            "revenue": accounts[f"facility_revenue:{facility.id}"],
            "wallet": {v: accounts[f"visitor_wallet:{v}"] for v in visitors},
            "hold": {v: accounts[f"visitor_hold:{v}"] for v in visitors},
        }
        s.commit()
    engine.dispose()
    return world


MEASURE_COLUMNS = [
    "visit_id",
    "party",
    "minute",
    "video_frames",
    "frozen_ms",
    "packets_expected",
    "packets_lost",
    "viewer_packets_expected",
    "viewer_packets_lost",
    "viewer_jitter_ms",
    "measured_at",
]


def _measure_rows(visit_id: int, start: dt.datetime, late_s: int, rng, freeze: bool):  # type: ignore[no-untyped-def]
    """What the media server measured of each party, one row per minute it was connected:
    the visitor from the start, the resident from ``late_s`` (its first minute partial).
    About 0.5 % loss both ways; in one visit in ten the resident's video froze for 6 s in
    minute 25 (a credit, on the visitor's screen)."""
    for party, joined in (("visitor", 0), ("resident", late_s)):
        for minute in range(joined // 60, LENGTH_S // 60):
            seconds = 60 - max(0, joined - minute * 60)
            frozen = 6000 if freeze and party == "resident" and minute == 25 else 0
            expected, viewer_expected = 110 * seconds, 105 * seconds
            yield (
                visit_id,
                party,
                minute,
                30 * seconds - frozen * 30 // 1000,
                frozen,
                expected,
                rng.randint(0, expected // 100),
                viewer_expected,
                rng.randint(0, viewer_expected // 100),
                rng.randint(2, 30),
                start + dt.timedelta(minutes=minute + 1),
            )


def seed_completed_visits(url: str, world: dict, n: int, rng) -> list[int]:  # type: ignore[no-untyped-def]
    """``n`` visits that went live and completed, not yet settled, two for each of the first
    n/2 families (who paid $2,000 in): each with its hold, its meter, its transition to
    completed (the outbox) and the media server's per-party, per-minute measurements."""
    engine = create_engine(url)
    raw = engine.raw_connection()
    try:
        families = max(n // 2, 1)  # two visits each, in the same week (free minutes shared)
        first_visit, first_txn = _next_id(raw, "visits"), _next_id(raw, "ledger_transactions")
        visits, holds, entries, meters, transitions, plan = [], [], [], [], [], []
        # Every family paid in first.
        for i, v in enumerate(world["visitors"][:families]):
            txn = first_txn + i
            holds.append(_txn(txn, f"bench-fund:{v}", "deposit", WEEK, None, world))
            entries += [(txn, world["received"], -FUNDS), (txn, world["wallet"][v], FUNDS)]
        first_txn += families
        for i in range(n):
            family = i % families
            visitor = world["visitors"][family]
            vid, txn = first_visit + i, first_txn + i
            start = WEEK + dt.timedelta(days=i // families, minutes=(family % 16) * 30)
            end = start + dt.timedelta(seconds=LENGTH_S)
            late = rng.randint(0, 20 * 60)  # the resident joined up to 20 minutes late
            visits.append(_visit(world, vid, family, start, f"S{vid:09d}"))
            booked = start - dt.timedelta(days=2)
            holds.append(_txn(txn, f"visit:{vid}:hold", "hold", booked, vid, world))
            entries += [(txn, world["wallet"][visitor], -HOLD), (txn, world["hold"][visitor], HOLD)]
            connected = [[(start + dt.timedelta(seconds=late)).isoformat(), end.isoformat()]]
            meters.append((vid, LENGTH_S - late, json.dumps(connected), end))
            transitions.append((vid, "live", "completed", end, "system", "", "deadline"))
            plan.append((vid, start, late, rng.random() < 0.1))
        _copy(raw, "visits", VISIT_COLUMNS, visits)
        _set_sequence(raw, "visits")
        _copy(raw, "ledger_transactions", TXN_COLUMNS, holds)
        _set_sequence(raw, "ledger_transactions")
        _copy(raw, "ledger_entries", ENTRY_COLUMNS, entries)
        _copy(
            raw, "visit_meters", ["visit_id", "billable_seconds", "intervals", "metered_at"], meters
        )
        _copy(
            raw,
            "visit_transitions",
            ["visit_id", "from_state", "to_state", "at", "actor_type", "reason", "cause"],
            transitions,
        )
        measured = _copy(
            raw,
            "visit_media_minutes",
            MEASURE_COLUMNS,
            (
                row
                for vid, start, late, freeze in plan
                for row in _measure_rows(vid, start, late, rng, freeze)
            ),
        )
        raw.commit()
        with raw.cursor() as cur:
            cur.execute("ANALYZE")
        raw.commit()
    finally:
        raw.close()
        engine.dispose()
    print(f"  {n} completed visits, {measured} measured minutes ({measured / n:.0f} per visit)")
    return [first_visit + i for i in range(n)]


def seed_history(url: str, world: dict, entries_wanted: int, rng) -> int:  # type: ignore[no-untyped-def]
    """Bulk-load a year of settled visits (hold + capture, 5 entries each) and top-up deposits
    (2 entries each) until the ledger holds exactly ``entries_wanted`` entries."""
    engine = create_engine(url)
    raw = engine.raw_connection()
    try:
        with raw.cursor() as cur:
            cur.execute("SELECT count(*) FROM ledger_entries")
            have = int(cur.fetchone()[0])
        missing = entries_wanted - have
        families = world["visitors"]
        deposits = len(families)
        while (missing - 2 * deposits) % 5:
            deposits += 1
        visits_n = (missing - 2 * deposits) // 5
        per_family = -(-visits_n // len(families))
        first_visit, txn = _next_id(raw, "visits"), _next_id(raw, "ledger_transactions")
        start_of_year = WEEK - dt.timedelta(days=365)
        visits, txns, entries, settlements = [], [], [], []
        for d in range(deposits):
            v = families[d % len(families)]
            amount = per_family * HOLD + 1_00
            txns.append(_txn(txn, f"bench-topup:{d}", "deposit", start_of_year, None, world))
            entries += [(txn, world["received"], -amount), (txn, world["wallet"][v], amount)]
            txn += 1
        for i in range(visits_n):
            family = i % len(families)
            visitor = families[family]
            vid = first_visit + i
            start = start_of_year + dt.timedelta(minutes=30 * i)
            end = start + dt.timedelta(seconds=LENGTH_S)
            charge = rng.randint(1, HOLD - 1)
            visits.append(_visit(world, vid, family, start, f"H{vid:09d}"))
            hold_txn, capture_txn = txn, txn + 1
            txn += 2
            txns += [
                _txn(hold_txn, f"visit:{vid}:hold", "hold", start, vid, world),
                _txn(capture_txn, f"visit:{vid}:capture", "capture", end, vid, world),
            ]
            entries += [
                (hold_txn, world["wallet"][visitor], -HOLD),
                (hold_txn, world["hold"][visitor], HOLD),
                (capture_txn, world["hold"][visitor], -HOLD),
                (capture_txn, world["revenue"], charge),
                (capture_txn, world["wallet"][visitor], HOLD - charge),
            ]
            billed = charge * 60 // RATE
            settlements.append(
                (vid, "captured", capture_txn, end, HOLD, charge, HOLD - charge, billed, 0, 0)
            )
        _copy(raw, "visits", VISIT_COLUMNS, visits)
        _set_sequence(raw, "visits")
        _copy(raw, "ledger_transactions", TXN_COLUMNS, txns)
        _set_sequence(raw, "ledger_transactions")
        _copy(raw, "ledger_entries", ENTRY_COLUMNS, entries)
        _copy(
            raw,
            "billing_settlements",
            [
                "visit_id",
                "outcome",
                "transaction_id",
                "settled_at",
                "held_cents",
                "charge_cents",
                "released_cents",
                "billable_seconds",
                "credited_seconds",
                "free_seconds_used",
            ],
            settlements,
        )
        raw.commit()
        with raw.cursor() as cur:
            cur.execute("ANALYZE")
            cur.execute("SELECT count(*) FROM ledger_entries")
            total = int(cur.fetchone()[0])
        raw.commit()
    finally:
        raw.close()
        engine.dispose()
    print(
        f"  history: {visits_n} settled visits and {deposits} deposits added "
        f"({len(txns)} transactions)"
    )
    return total


# --- settling --------------------------------------------------------------------------


def _machine_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + fields[4]
    return (sum(fields) - idle) / tick, sum(fields) / tick


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


def _worker(args: tuple) -> tuple[int, float, list[float]]:
    url, visit_ids, start_line, finish_line = args
    engine = make_engine(url, pool_size=1, max_overflow=0)
    factory = make_sessionmaker(engine)
    clock = FrozenClock(NOW)
    with factory() as s:  # connect before the start line
        s.execute(select(1))
    settled, latencies = 0, []
    start_line.wait()
    cpu0 = time.process_time()
    for visit_id in visit_ids:
        t0 = time.perf_counter()
        with factory() as s:
            visit = s.get(Visit, visit_id)
            assert visit is not None
            if settlement.settle_visit(s, clock, visit):
                settled += 1
            s.commit()
        latencies.append((time.perf_counter() - t0) * 1000)
    cpu = time.process_time() - cpu0
    finish_line.wait()  # keep the connection (and its server process) until it is counted
    engine.dispose()
    return settled, cpu, latencies


def settle_concurrently(url: str, visit_ids: list[int], workers: int) -> dict:
    shares = [visit_ids[i::workers] for i in range(workers)]
    with mp.Manager() as manager:
        start_line, finish_line = manager.Barrier(workers + 1), manager.Barrier(workers + 1)
        with mp.Pool(workers) as pool:
            pending = pool.map_async(_worker, [(url, s, start_line, finish_line) for s in shares])
            start_line.wait()
            t0, db0, m0 = time.perf_counter(), _postgres_cpu(), _machine_busy_seconds()
            finish_line.wait()
            elapsed = time.perf_counter() - t0
            db1, m1 = _postgres_cpu(), _machine_busy_seconds()
            results = pending.get()
    settled = sum(r[0] for r in results)
    latencies = sorted(x for r in results for x in r[2])
    db_cpu = sum(db1[pid] - db0.get(pid, 0.0) for pid in db1 if pid in db0)
    return {
        "per_s": settled / elapsed,
        "settled": settled,
        "elapsed": elapsed,
        "app_ms": sum(r[1] for r in results) / max(settled, 1) * 1000,
        "db_ms": db_cpu / max(settled, 1) * 1000,
        "busy": (m1[0] - m0[0]) / (m1[1] - m0[1]) if m1[1] > m0[1] else 0.0,
        "p50": statistics.median(latencies),
        "p95": latencies[int(len(latencies) * 0.95) - 1],
    }


def check_after_settling(url: str, visit_ids: list[int]) -> tuple[int, int, int]:
    engine = make_engine(url)
    with make_sessionmaker(engine)() as s:
        settlements = s.scalar(
            select(func.count())
            .select_from(BillingSettlement)
            .where(BillingSettlement.visit_id.in_(visit_ids))
        )
        charged = s.scalar(
            select(func.coalesce(func.sum(BillingSettlement.charge_cents), 0)).where(
                BillingSettlement.visit_id.in_(visit_ids)
            )
        )
        credited = s.scalar(
            select(func.count())
            .select_from(BillingSettlement)
            .where(
                BillingSettlement.visit_id.in_(visit_ids), BillingSettlement.credited_seconds > 0
            )
        )
        report = ledger.check_invariants(s)
        if not report.ok:
            raise SystemExit(f"invariants broken after settling: {report.problems[:5]}")
    engine.dispose()
    return int(settlements or 0), int(charged or 0), int(credited or 0)


def time_invariant_check(url: str, runs: int = 3) -> tuple[list[float], int]:
    engine = make_engine(url)
    timings = []
    with make_sessionmaker(engine)() as s:
        entries = s.scalar(select(func.count()).select_from(LedgerEntry))
        for _ in range(runs):
            t0 = time.perf_counter()
            report = ledger.check_invariants(s)
            timings.append(time.perf_counter() - t0)
            if not report.ok:
                raise SystemExit(f"invariants broken: {report.problems[:5]}")
            s.rollback()
    engine.dispose()
    return timings, int(entries or 0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--pg",
        default=os.environ.get(
            "OPENVISIT_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
        ),
    )
    parser.add_argument("--visits", type=int, default=1600, help="completed visits to settle")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--families", type=int, default=10_000, help="wallets in the ledger")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    args = parser.parse_args()
    rng = random.Random(20261127)
    name = f"openvisit_bench_ledger_{uuid.uuid4().hex[:8]}"
    admin = create_engine(args.pg, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = args.pg.rsplit("/", 1)[0] + f"/{name}"
    began = time.perf_counter()
    try:
        upgrade(url)
        t0 = time.perf_counter()
        world = seed_world(url, max(args.visits // 2, args.families))
        visit_ids = seed_completed_visits(url, world, args.visits, rng)
        print(f"seeding took {time.perf_counter() - t0:.1f} s")
        got = settle_concurrently(url, visit_ids, args.workers)
        print(
            f"settlement, {args.workers} concurrent workers, one transaction per visit: "
            f"{got['per_s']:.0f} settlements/s ({got['settled']} visits in {got['elapsed']:.1f} s; "
            f"latency p50 {got['p50']:.0f} ms, p95 {got['p95']:.0f} ms)"
        )
        print(
            f"  CPU per settlement: {got['app_ms']:.1f} ms in the app's Python, "
            f"{got['db_ms']:.1f} ms in PostgreSQL; the machine's cores were {got['busy']:.0%} busy"
        )
        settled, charged, credited = check_after_settling(url, visit_ids)
        print(
            f"  afterwards: {settled} of {len(visit_ids)} visits settled exactly once, "
            f"{credited} with fair-quality credits, {ledger.dollars(charged)} charged; "
            "invariants hold"
        )
        t0 = time.perf_counter()
        total = seed_history(url, world, args.entries, rng)
        print(f"bulk-loading the history (COPY) took {time.perf_counter() - t0:.1f} s")
        timings, entries = time_invariant_check(url)
        assert entries == total == args.entries, (entries, total)
        best, median = min(timings), statistics.median(timings)
        print(
            f"invariant check over {entries:,} ledger entries: "
            + ", ".join(f"{t:.2f} s" for t in timings)
            + f" (median {median:.2f} s); all invariants hold"
        )
        print(
            f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}; "
            f"whole run {time.perf_counter() - began:.0f} s"
        )
        print(
            f"RESULT settlements_per_s={got['per_s']:.0f} invariant_check_s={median:.2f} "
            f"invariant_check_best_s={best:.2f} entries={entries} workers={args.workers} "
            f"settled={settled} settle_p50_ms={got['p50']:.0f} settle_p95_ms={got['p95']:.0f} "
            f"app_cpu_ms={got['app_ms']:.1f} db_cpu_ms={got['db_ms']:.1f}"
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
