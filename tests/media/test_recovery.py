"""Start-up recovery of recordings a crash left without a row, in process, on SQLite and
PostgreSQL (tests/media/test_crash_recordings.py does it with a real SIGKILL)."""

from __future__ import annotations

import hashlib
import shutil

import av
from sqlalchemy import select

from openvisit.audit.models import AuditEvent
from openvisit.audit.service import AuditActor
from openvisit.demo import begin_visit_now
from openvisit.media.forwarding import EncodedFrame, is_vp8_keyframe
from openvisit.media.recorder import RemuxRecorder
from openvisit.signaling import live
from openvisit.visits.models import VisitRecording
from tests.support.synthetic import Clip, make_clip

from ..scheduling.conftest import approve


def _cut_off_recording(clip: Clip, path, scratch) -> None:  # type: ignore[no-untyped-def]
    """What a recorder leaves on disk when its process dies mid-visit."""
    recorder = RemuxRecorder(scratch, "visitor")
    timed = [(at, "video", data, 90000) for data, at in clip.packets["video"]]
    timed += [(at, "audio", data, 48000) for data, at in clip.packets["audio"]]
    for at, kind, data, rate in sorted(timed, key=lambda t: t[0]):
        key = kind == "video" and is_vp8_keyframe(data)
        frame = EncodedFrame(data, round(at * rate), rate, key)
        recorder.write(1, kind, frame, 100.0 + at)
    shutil.copyfile(scratch, path)
    recorder.close()


def test_a_segment_without_a_row_is_finished_stored_and_audited_at_start_up(
    app, db, clock, personas, settings, tmp_path
):
    approve(db, personas.visitor, personas.resident, relationship="sibling")
    personas.kiosk  # noqa: B018 - build it
    visit = begin_visit_now(
        db,
        clock,
        AuditActor("visitor", personas.visitor.id, "Maria"),
        resident_id=personas.resident.id,
        visitor_id=personas.visitor.id,
        seconds=20 * 60,
    )
    db.commit()
    clip = Clip.load(make_clip(tmp_path / "clip.webm", seconds=3.0))
    root = settings.recordings_dir
    root.mkdir(parents=True, mode=0o700)
    name = f"visit-{visit.id}-visitor-20261201T120000Z-2.webm"
    _cut_off_recording(clip, root / name, tmp_path / "scratch.webm")
    # A segment of a visit this database doesn't know: left alone, unlisted.
    stray = root / "visit-999999-visitor-20261201T120000Z-1.webm"
    shutil.copyfile(root / name, stray)
    with av.open(str(root / name)) as container:
        assert container.duration is None  # the killed writer never wrote one

    assert live.recover_recordings(app) == 1
    db.expire_all()
    row = db.scalars(select(VisitRecording).where(VisitRecording.visit_id == visit.id)).one()
    data = (root / name).read_bytes()
    assert row.path == name and row.recovered and row.party == "visitor"
    assert (row.sha256, row.size_bytes) == (hashlib.sha256(data).hexdigest(), len(data))
    # 3 s recorded; the last cluster (up to a second) was still in memory at the crash.
    assert 1800 <= row.duration_ms <= 3100, row.duration_ms
    assert row.started_at.isoformat().startswith("2026-12-01T12:00:00")
    with av.open(str(root / name)) as container:
        assert abs(float(container.duration) / av.time_base * 1000 - row.duration_ms) < 100
        assert [s.type for s in container.streams] == ["video", "audio"]
    event = db.scalars(select(AuditEvent).where(AuditEvent.tag == "recording.recovered")).one()
    assert event.facility_id == visit.facility_id and event.data["recording_id"] == row.id
    assert stray.exists()
    # Once stored, a restart leaves it alone.
    assert live.recover_recordings(app) == 0
