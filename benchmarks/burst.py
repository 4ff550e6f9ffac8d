"""A burst of simultaneous bookings against one real server, on PostgreSQL (issue 11).

For 64, 128 and 256 families at once, in two shapes: every family at a kiosk slot of
its own (all can win: the most work per request) and every family at the same slot of
one kiosk (one wins, the rest are told "slot_taken"). Each family is signed in and
sends ``POST /api/v1/me/visits`` on its own connection, all released together, to one
`openvisit serve` process on 127.0.0.1 (its default settings: db_pool_size 20,
worker_threads 40, db_wait_seconds 4). Prints, per burst, the answers by status, the
5xx count and p50/p95/max latency, then the overlaps and ledger problems found
afterwards (must be 0).

Usage: python benchmarks/burst.py [--pg URL-of-an-admin-database] [--sizes 64,128,256]
The last line is `RESULT burst=256 errors_5xx=... p95_ms=... max_ms=...` (the
kiosk-slot-of-its-own shape; the same-slot shape's figures are on it too).
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.pg import throwaway_database  # noqa: E402
from tests.support.burst import Answer, burst, invariants, percentile, running_server, seed  # noqa: E402


def summary(answers: list[Answer]) -> tuple[int, float, float, float, str]:
    ms = [a.seconds * 1000 for a in answers]
    errors = sum(a.status >= 500 or a.status == 0 for a in answers)
    by_status = collections.Counter(f"{a.status} {a.code}".strip() for a in answers)
    shown = ", ".join(f"{n} x {k}" for k, n in sorted(by_status.items()))
    return errors, statistics.median(ms), percentile(ms, 0.95), max(ms), shown


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--pg",
        default=os.environ.get(
            "OPENVISIT_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
        ),
    )
    parser.add_argument("--sizes", default="64,128,256")
    args = parser.parse_args()
    sizes = [int(n) for n in args.sizes.split(",")]
    results: dict[tuple[int, bool], tuple[int, float, float, float, str]] = {}
    with throwaway_database(args.pg, prefix="openvisit_bench_burst") as url:
        plans = {
            (n, same): seed(url, n, same_slot=same, tag=f"{n}{'s' if same else 'd'}")
            for n in sizes
            for same in (False, True)
        }
        with tempfile.TemporaryDirectory() as var, running_server(url, Path(var)) as port:
            # Warm up: the first requests compile statements and fill the pool.
            warm = seed(url, 8, same_slot=False, tag="warm")
            burst(port, warm)
            for (n, same), bookings in plans.items():
                answers = burst(port, bookings, timeout=60)
                results[(n, same)] = summary(answers)
                errors, p50, p95, top, shown = results[(n, same)]
                shape = "same slot" if same else "own slots"
                print(
                    f"burst {n:>3} ({shape}): 5xx {errors}, p50 {p50:.0f} ms, p95 {p95:.0f} ms, "
                    f"max {top:.0f} ms; answers: {shown}",
                    flush=True,
                )
        found = invariants(url)
    print(
        f"afterwards: {found.booked} active visits, {found.overlaps} overlapping, "
        f"ledger problems: {found.ledger_problems or 'none'}"
    )
    print(f"machine: {os.cpu_count()} cores (shared), Python {sys.version.split()[0]}")
    n = max(sizes)
    errors, _p50, p95, top, _shown = results[(n, False)]
    same_errors, _sp50, same_p95, same_top, _ = results[(n, True)]
    print(
        f"RESULT burst={n} errors_5xx={errors} p95_ms={p95:.0f} max_ms={top:.0f} "
        f"same_slot_errors_5xx={same_errors} same_slot_p95_ms={same_p95:.0f} "
        f"same_slot_max_ms={same_top:.0f} overlaps={found.overlaps}"
    )


if __name__ == "__main__":
    main()
