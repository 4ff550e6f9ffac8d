"""Recordings survive a crash (issue 11): the real server, SIGKILLed mid-visit in the
test's network namespace and started again, stores what it had recorded.

Chromium's two pages (the visitor and the kiosk) are live and recorded; the server is
killed with SIGKILL (no shutdown, no room closed), then a fresh server starts on the
same database and recordings directory. Each file the dead server wrote gets its row,
marked recovered, whose SHA-256 and size match the file, and PyAV reads a duration
from the file (the killed writer never wrote one).
"""

from __future__ import annotations

import hashlib
import signal
import time

import av

from openvisit.visits.models import VisitRecording

from .conftest import _free_port, _serve, kiosk_page, stage_visit, visitor_page, wait_for
from .test_live_visits import _live_both

RECORD_SECONDS = 6.0


def test_recordings_written_before_a_crash_are_stored_after_the_restart(
    netns, tmp_path, chromium_in_netns
):
    first = _serve(netns, tmp_path, _free_port())
    server = next(first)
    stage = stage_visit(server)
    root = server.settings.recordings_dir
    visitor = visitor_page(chromium_in_netns, server, stage)
    kiosk = kiosk_page(chromium_in_netns, server, stage)
    try:
        _live_both(visitor, kiosk)
        wait_for(
            lambda: len(list(root.glob(f"visit-{stage.visit_id}-*.webm"))) == 2,
            20,
            "both parties' recordings to start",
        )
        time.sleep(RECORD_SECONDS)
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(10)
    finally:
        for page in (visitor, kiosk):
            page.context.close()
        if server.process.poll() is None:  # failed before the kill: don't leave it running
            server.process.kill()
    files = sorted(root.glob(f"visit-{stage.visit_id}-*.webm"))
    assert len(files) == 2
    with server.db() as db:
        assert db.query(VisitRecording).filter_by(visit_id=stage.visit_id).count() == 0
    for path in files:  # what the crash left: no duration in the file
        with av.open(str(path)) as container:
            assert container.duration is None
    # The first server's fixture ends (its engine here disposed) before the second
    # starts: db.make_engine opens and closes the database file, which drops this
    # process's SQLite locks on it if any connection were still open.
    next(first, None)

    second = _serve(netns, tmp_path, _free_port())
    restarted = next(second)
    try:

        def stored() -> list[VisitRecording]:
            with restarted.db() as db:
                return (
                    db.query(VisitRecording)
                    .filter_by(visit_id=stage.visit_id)
                    .order_by(VisitRecording.party)
                    .all()
                )

        rows = stored()  # stored before the server said it had started
        assert sorted(r.party for r in rows) == ["resident", "visitor"], restarted.log[-20:]
        for row in rows:
            path = root / row.path
            assert path in files and row.recovered
            data = path.read_bytes()
            assert row.sha256 == hashlib.sha256(data).hexdigest()
            assert row.size_bytes == len(data)
            # Recorded for RECORD_SECONDS and more; at most about a second lost to the crash.
            assert row.duration_ms >= (RECORD_SECONDS - 1.5) * 1000, row.duration_ms
            with av.open(str(path)) as container:
                assert container.duration is not None
                seconds = float(container.duration) / av.time_base
                assert abs(seconds * 1000 - row.duration_ms) < 100
                frames = sum(1 for _ in container.decode(video=0))
            assert frames >= (RECORD_SECONDS - 1.5) * 20
        # The restart said so, for the record.
        assert any("recovered after an interruption" in line for line in restarted.log)
    finally:
        next(second, None)
