"""Memory across many recorded visits through one long-lived server, on loopback only.

One `openvisit serve` (SQLite in a temporary directory, the embedded aiortc backend
announcing 127.0.0.1) runs inside a network namespace this script makes and deletes,
exactly as benchmarks/media_capacity.py runs it, and stays up for the whole run.
N recorded remote visits go through it, BATCH at a time: both parties synthetic
(`tests/support/synthetic.py`: a 640x480@30 VP8 + Opus clip sent without encoding),
driven by a fresh load-generator process per batch (media_capacity's own); each
batch's visits run for --seconds, then both parties leave, the visits complete, the
rooms close and their recordings get rows. After each batch, once every recording of
it has its row, the server's RSS is read from /proc.

It prints the RSS before the first visit, after each batch and after --idle seconds of
idle at the end; the growth per visit over the last half of the run (least squares
over the batches of the second half) and over the whole run after the first batch
(the warm-up: imports, codec tables, the first thread pools); and, at the end, the
server's open file descriptors, threads and open connections to its database file.

Usage: sudo python benchmarks/soak.py [--visits 40] [--batch 4] [--seconds 20] [--idle 30]
Needs root (ip netns) and iproute2. The last line is
`RESULT visits=... rss_start_mb=... rss_end_mb=... growth_mb_per_visit_last_half=... fds_end=...`.
Target: at most 0.5 MB per visit over the second half, at most 1 MB per visit over the
whole run after warm-up.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# This checkout's package, as the server it starts uses (media_capacity's child_env):
# the database it seeds must have the same migrations.
for _path in (HERE, HERE.parent / "src"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import media_capacity as mc  # noqa: E402  (a sibling script: the namespace, server, stager)

GROWTH_TARGET_LAST_HALF_MB = 0.5
GROWTH_TARGET_WHOLE_MB = 1.0


def open_fds(pid: int) -> list[str]:
    """Where each of the process's open file descriptors points."""
    found = []
    folder = f"/proc/{pid}/fd"
    for fd in os.listdir(folder):
        with contextlib.suppress(OSError):
            found.append(os.readlink(f"{folder}/{fd}"))
    return found


def threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def slope(points: list[tuple[int, float]]) -> float:
    """Least-squares MB per visit through (visits, rss) points."""
    if len(points) < 2:
        return float("nan")
    xs, ys = [float(x) for x, _ in points], [y for _, y in points]
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread


def batch(
    ns: str,
    server: mc.Server,
    stager: mc.Stager,
    folder: Path,
    clip: Path,
    n: int,
    seconds: float,
    label: str,
) -> tuple[int, list[str]]:
    """``n`` recorded visits at once for ``seconds``; (recordings with rows, failures)."""
    visits = stager.visits(n)
    for visit in visits:
        visit["monitor"] = None
    loadgen = mc.Child(
        ns,
        ["--loadgen", "--url", server.url, "--clip", str(clip)],
        folder / f"loadgen-{label}.log",
        nice=mc.LOADGEN_NICE,
    )
    try:
        loadgen.send({"visits": visits})
        ready = loadgen.receive(120)
        failed = list(ready["failed"])
        if ready["flowing"] < ready["tracks"]:
            failed.append(f"video flowing on only {ready['flowing']} of {ready['tracks']} tracks")
        time.sleep(seconds)
        loadgen.send("stop")
        loadgen.receive(60)
    finally:
        loadgen.close()
    ids = [v["id"] for v in visits]
    deadline = time.monotonic() + 30
    while (recorded := stager.recordings(ids)) < 2 * n and time.monotonic() < deadline:
        time.sleep(0.5)
    if recorded < 2 * n:
        failed.append(f"only {recorded} of {2 * n} recordings have a row")
    return recorded, failed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--visits", type=int, default=40, help="recorded visits in all")
    parser.add_argument("--batch", type=int, default=4, help="visits at a time")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each visit")
    parser.add_argument("--idle", type=float, default=30.0, help="idle seconds at the end")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    problem = mc.preflight()
    if problem:
        sys.exit(f"soak: {problem}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.monotonic()
    folder = Path(tempfile.mkdtemp(prefix="ov-soak-"))
    try:
        run(folder, args.visits, args.batch, args.seconds, args.idle, started)
    finally:
        if args.keep:
            print(f"kept {folder} (database, recordings, server and load-generator logs)")
        else:
            shutil.rmtree(folder, ignore_errors=True)


def run(folder: Path, total: int, size: int, seconds: float, idle: float, started: float) -> None:
    from tests.support.synthetic import make_clip

    from openvisit.dbadmin import upgrade

    db_file = folder / "soak.db"
    with mc.network_namespace() as ns:
        db_url = f"sqlite:///{db_file}"
        upgrade(db_url)
        clip = make_clip(folder / "clip.webm")
        stager = mc.Stager(db_url)
        with mc.serving(ns, folder, db_url, "soak") as server:
            time.sleep(2.0)
            rss_start = mc.rss_mb(server.pid)
            print(
                f"soak: {total} recorded visits of {seconds:.0f} s, {size} at a time, through "
                f"one server (pid {server.pid}); RSS before the first visit {rss_start:.1f} MB"
            )
            print(f"{'visits':>6} {'rss_mb':>7} {'fds':>4} {'threads':>7} {'recorded':>8}")
            points: list[tuple[int, float]] = []
            failures: list[str] = []
            done = 0
            while done < total:
                n = min(size, total - done)
                recorded, failed = batch(
                    ns, server, stager, folder, clip, n, seconds, f"{done + 1}-{done + n}"
                )
                done += n
                time.sleep(1.0)  # the rooms' last objects go
                rss = mc.rss_mb(server.pid)
                points.append((done, rss))
                failures += failed
                print(
                    f"{done:>6} {rss:>7.1f} {len(open_fds(server.pid)):>4} "
                    f"{threads(server.pid):>7} {recorded:>4}/{2 * n:<3}",
                    flush=True,
                )
                for failure in failed:
                    print(f"    {failure}")
            time.sleep(idle)
            rss_end = mc.rss_mb(server.pid)
            fds = open_fds(server.pid)
            db_connections = sum(1 for target in fds if target == str(db_file))
            end_threads = threads(server.pid)
            webm_open = sum(1 for target in fds if target.endswith(".webm"))
    last_half = [p for p in points if p[0] > total / 2 - size / 2]
    after_warmup = points  # the first point is after the first batch: warm-up excluded
    growth_last_half = slope(last_half)
    growth_whole = slope(after_warmup)
    print(f"after {idle:.0f} s idle: RSS {rss_end:.1f} MB")
    print(
        f"growth per visit: {growth_last_half:.2f} MB over the last half "
        f"(target <= {GROWTH_TARGET_LAST_HALF_MB}), {growth_whole:.2f} MB over the whole run "
        f"after the first batch (target <= {GROWTH_TARGET_WHOLE_MB}); start to end "
        f"{(rss_end - rss_start) / max(1, total):.2f} MB per visit, warm-up included"
    )
    print(
        f"at the end: {len(fds)} open file descriptors ({webm_open} recordings still open), "
        f"{db_connections} open on the database file, {end_threads} threads"
    )
    if failures:
        print(f"{len(failures)} failures (see above)")
    print(f"machine: {os.cpu_count()} cores; took {time.monotonic() - started:.0f} s")
    print(
        f"RESULT visits={total} rss_start_mb={rss_start:.1f} rss_end_mb={rss_end:.1f} "
        f"growth_mb_per_visit_last_half={growth_last_half:.2f} "
        f"growth_mb_per_visit_after_warmup={growth_whole:.2f} fds_end={len(fds)} "
        f"db_connections_end={db_connections} threads_end={end_threads} failures={len(failures)}"
    )


if __name__ == "__main__":
    main()
