"""The embedded backend's own parts, on real encoded media from PyAV: key-frame
detection, the bitrate cap, the viewer's track and the remux recorder."""

from __future__ import annotations

import asyncio

import av
import pytest

from openvisit.media.embedded import ForwardTrack, cap_bitrate
from openvisit.media.forwarding import EncodedFrame, is_vp8_keyframe, vp8_size
from openvisit.media.recorder import RemuxRecorder, last_segment, sha256_of
from tests import aio
from tests.support.synthetic import Clip, make_clip


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Clip:  # type: ignore[no-untyped-def]
    return Clip.load(make_clip(tmp_path_factory.mktemp("clip") / "clip.webm", seconds=3.0))


def _frames(clip: Clip, kind: str) -> list[EncodedFrame]:
    rate = 90000 if kind == "video" else 48000
    return [
        EncodedFrame(data, round(at * rate), rate, kind == "video" and is_vp8_keyframe(data))
        for data, at in clip.packets[kind]
    ]


def test_key_frames_are_recognised_with_their_size(clip):
    video = _frames(clip, "video")
    keys = [f for f in video if f.keyframe]
    assert video[0].keyframe and 1 <= len(keys) < len(video) / 10
    assert vp8_size(keys[0].data) == (640, 480)
    assert not is_vp8_keyframe(b"\x01" * 20) and not is_vp8_keyframe(b"")


def test_the_answer_caps_the_video_bitrate_only():
    sdp = (
        "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\n"
        "m=video 9 UDP/TLS/RTP/SAVPF 97\r\nc=IN IP4 0.0.0.0\r\nb=AS:5000\r\na=mid:1\r\n"
    )
    capped = cap_bitrate(sdp, 800_000)
    video = capped.split("m=video")[1]
    assert "b=AS:800\r\n" in video and "b=TIAS:800000\r\n" in video
    assert "b=AS:5000" not in capped
    assert "b=" not in capped.split("m=video")[0]


def test_a_viewer_starts_at_a_key_frame_and_timestamps_continue_across_publishers(clip):
    async def run() -> list[int]:
        asked: list[int] = []
        reading = asyncio.Event()

        def ask() -> None:
            asked.append(1)
            reading.set()

        track = ForwardTrack("video", ask)
        video = _frames(clip, "video")
        # Nobody reads yet: nothing is kept.
        assert track.feed(1, video[0])
        first = asyncio.ensure_future(track.recv())
        await asyncio.wait_for(reading.wait(), 5)
        assert asked == [1]  # the viewer's first read asks the publisher for a key frame
        assert track.feed(1, video[1]) is False  # not a key frame: wait for one
        for frame in video[:5]:
            track.feed(1, frame)
        out = [(await first).pts]
        out += [(await track.recv()).pts for _ in range(4)]
        # The party reconnects: a new publication whose clock starts again at 0.
        for frame in video[:3]:
            track.feed(2, frame)
        out += [(await track.recv()).pts for _ in range(3)]
        return out

    pts = aio.run(run())
    assert pts == sorted(pts) and len(set(pts)) == len(pts)
    assert pts[5] - pts[4] == 3000  # one frame later, not back to 0


def test_the_recorder_remuxes_without_transcoding_and_resumes_after_a_gap(clip, tmp_path):
    path = tmp_path / "rec" / "visit-1-visitor.webm"
    recorder = RemuxRecorder(path, "visitor")
    video, audio = _frames(clip, "video"), _frames(clip, "audio")
    # Audio before the first key frame is not written (it would open the file wrong).
    assert recorder.write(1, "audio", audio[0], 100.0) is False
    t0 = 100.0
    for frame in video:
        recorder.write(1, "video", frame, t0 + frame.timestamp / 90000)
    for frame in audio:
        recorder.write(1, "audio", frame, t0 + frame.timestamp / 48000)
    # Back after a 2 s gap, on a new publication whose clock restarts.
    t1 = t0 + 3.0 + 2.0
    for frame in video:
        recorder.write(2, "video", frame, t1 + frame.timestamp / 90000)
    done = recorder.close()
    assert done is not None and done.video_frames == 2 * len(video)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name in ("vp8", "libvpx")
        assert container.streams.audio[0].codec_context.name in ("opus", "libopus")
        packets = [p for p in container.demux(stream) if p.size]
        assert [bytes(p) for p in packets[: len(video)]] == [f.data for f in video]
        duration = float(container.duration) / av.time_base
        assert abs(duration - 8.0) < 0.2, duration
        assert packets[len(video)].pts * packets[0].time_base == pytest.approx(5.0, abs=0.05)
    with av.open(str(path)) as container:  # and it decodes: every frame, none lost
        decoded = sum(1 for _ in container.decode(video=0))
    assert decoded == 2 * len(video)
    digest, size = sha256_of(path)
    assert size == path.stat().st_size and len(digest) == 64
    assert recorder.close() is None  # once


def test_nothing_recorded_leaves_no_file(tmp_path):
    recorder = RemuxRecorder(tmp_path / "never.webm", "resident")
    frame = EncodedFrame(b"\x01" * 30, 0, 90000, False)
    assert recorder.write(1, "video", frame, 1.0) is False
    assert recorder.close() is None
    assert not (tmp_path / "never.webm").exists()


def test_a_recording_cut_off_by_a_crash_keeps_all_but_its_last_second(clip, tmp_path):
    path = tmp_path / "rec" / "visit-1-visitor.webm"
    recorder = RemuxRecorder(path, "visitor")
    video, audio = _frames(clip, "video"), _frames(clip, "audio")
    timed = [(f.timestamp / 90000, "video", f) for f in video]
    timed += [(f.timestamp / 48000, "audio", f) for f in audio]
    for at, kind, frame in sorted(timed, key=lambda t: t[0]):
        recorder.write(1, kind, frame, 100.0 + at)
    # The process dies here: what is on disk is all there will be.
    crashed = tmp_path / "crashed.webm"
    crashed.write_bytes(path.read_bytes())
    with av.open(str(crashed)) as container:
        kept = [p for p in container.demux(video=0) if p.size]
    lost_seconds = (len(video) - len(kept)) / 30
    assert lost_seconds <= 1.1, f"{len(kept)} of {len(video)} video frames on disk"
    with av.open(str(crashed)) as container:  # and what is there decodes
        assert sum(1 for _ in container.decode(video=0)) == len(kept)
    recorder.close()


def test_segment_numbers_continue_from_the_files_already_there(tmp_path):
    assert last_segment(tmp_path / "missing", 7) == 0
    for name in (
        "visit-7-visitor-20261201T100000Z-1.webm",
        "visit-7-resident-20261201T100000Z-1.webm",
        "visit-7-visitor-20261201T100500Z-3.webm",
        "visit-77-visitor-20261201T100500Z-9.webm",  # another visit
        "visit-7-visitor-20261201T100500Z-5.webm.part",  # not a recording
    ):
        (tmp_path / name).write_bytes(b"")
    assert last_segment(tmp_path, 7) == 3
    assert last_segment(tmp_path, 8) == 0
