"""A closed media room leaves nothing behind: one long-lived server holds rooms for a
day of visits, and each room's peer connections, tracks, recorders and meters must go
when the room closes (issue 11: 10 MB per visit, never given back).

The embedded backend runs in this process on its own thread, with two synthetic
parties (tests/support/synthetic.py's clip, sent without encoding) publishing and
subscribing over loopback (127.0.0.1 only), exactly the calls the signaling routes
make. After the room closes and a garbage collection, weak references to the room
and everything it held must be dead, and the recordings must still decode.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
import weakref
from pathlib import Path
from typing import Any

import av
import pytest
from aiortc import (
    MediaStreamTrack,
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError

from openvisit.clock import SystemClock
from openvisit.media import forwarding
from openvisit.media.backend import PARTIES, MediaChange, QualityReport, Recording
from openvisit.media.embedded import EmbeddedBackend
from tests import aio
from tests.support.synthetic import Clip, ClipTrack, make_clip

VISIT_ID = 4242


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Clip:  # type: ignore[no-untyped-def]
    return Clip.load(make_clip(tmp_path_factory.mktemp("clip") / "clip.webm", seconds=2.0))


def _pc() -> RTCPeerConnection:
    return RTCPeerConnection(
        RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
    )


async def _count(track: MediaStreamTrack, counts: dict[str, int], key: str) -> None:
    while True:
        try:
            await track.recv()
        except MediaStreamError:
            return
        counts[key] = counts.get(key, 0) + 1


async def _visit(
    backend: EmbeddedBackend, clip: Clip, directory: Path, changes: list[Any]
) -> tuple[list[Recording], dict[str, int], list[weakref.ref[Any]]]:
    """Both parties publish and view each other until the recording has run a few
    seconds; then the room closes. Weak references to what the room held."""
    await backend.open_room(
        VISIT_ID, record=True, directory=directory, minutes_from=SystemClock().now()
    )
    clients: list[RTCPeerConnection] = []
    tasks: list[asyncio.Task[None]] = []
    counts: dict[str, int] = {}
    for party in PARTIES:
        pc = _pc()
        clients.append(pc)
        for kind in ("audio", "video"):
            pc.addTransceiver(ClipTrack(kind, clip), direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        answer = await backend.publish(VISIT_ID, party, pc.localDescription.sdp)
        await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    for viewer in PARTIES:
        other = [p for p in PARTIES if p != viewer]
        offer = await backend.subscribe(VISIT_ID, viewer, other)
        pc = _pc()
        clients.append(pc)

        @pc.on("track")
        def _on_track(track: MediaStreamTrack, pc: RTCPeerConnection = pc, v: str = viewer) -> None:
            receiver = next(t.receiver for t in pc.getTransceivers() if t.receiver.track is track)
            forwarding.forward_encoded(receiver)
            tasks.append(asyncio.ensure_future(_count(track, counts, f"{v}:{track.kind}")))

        await pc.setRemoteDescription(RTCSessionDescription(offer.sdp, "offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        await backend.accept_answer(VISIT_ID, viewer, pc.localDescription.sdp)
    # Media flows both ways, then the recording runs (it starts once both are up).
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ups = {c.party for c in changes if isinstance(c, MediaChange) and c.up}
        if ups == set(PARTIES) and all(counts.get(f"{p}:video", 0) > 30 for p in PARTIES):
            break
        await asyncio.sleep(0.2)
    await asyncio.sleep(3.0)

    room = backend._rooms[VISIT_ID]  # the backend's own bookkeeping, read to watch it go
    held: list[Any] = [room, *room.recorders.values(), *room.meters.values()]
    for publication in room.publications.values():
        held += [publication, publication.pc, *publication.receivers.values()]
        held += [r.track for r in publication.receivers.values()]
        held += list(publication.readers)
    for subscription in room.subscriptions.values():
        held += [subscription, subscription.pc, *(t for _p, _k, t in subscription.tracks)]
        held += [s for s in subscription.pc.getSenders()]
    refs = [weakref.ref(obj) for obj in held]
    del room, held, publication, subscription

    recordings = await backend.close_room(VISIT_ID)
    for task in tasks:
        task.cancel()
    for pc in clients:
        with contextlib.suppress(Exception):
            await pc.close()
    return recordings, counts, refs


def test_closing_a_room_releases_everything_it_held_and_the_recordings_decode(clip, tmp_path):
    changes: list[Any] = []

    async def listen(change: MediaChange | QualityReport) -> None:
        changes.append(change)

    # A segment of this visit from before a restart: its number is not used again.
    directory = tmp_path / "rec"
    directory.mkdir(mode=0o700)
    (directory / f"visit-{VISIT_ID}-visitor-20261201T100000Z-4.webm").write_bytes(b"")
    forwarding.use_addresses(["127.0.0.1"])  # loopback only, for both ends here
    backend = EmbeddedBackend(SystemClock(), addresses=["127.0.0.1"])
    backend.start(listen)
    try:
        recordings, counts, refs = aio.run(_visit(backend, clip, directory, changes))
        # The media thread lets go of cancelled readers and closed transports in its
        # next turns; a collection then finds any cycle that nothing else holds.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            gc.collect()
            if all(ref() is None for ref in refs):
                break
            time.sleep(0.2)
        alive = [type(obj).__name__ for ref in refs if (obj := ref()) is not None]
        assert backend.room_ids() == []
        assert alive == [], f"still alive after the room closed: {alive}"
    finally:
        aio.run(backend.stop())
        forwarding.use_addresses([])

    assert all(counts.get(f"{p}:video", 0) > 30 for p in PARTIES), counts
    assert sorted(r.party for r in recordings) == sorted(PARTIES)
    for recording in recordings:
        assert recording.path.name.endswith("-5.webm"), recording.path.name
        assert recording.duration_ms > 2000 and recording.video_frames > 60
        with av.open(str(recording.path)) as container:
            video, audio = container.streams.video[0], container.streams.audio[0]
            assert video.codec_context.name in ("vp8", "libvpx")
            assert (video.codec_context.width, video.codec_context.height) == (640, 480)
            assert audio.codec_context.name in ("opus", "libopus")
            assert audio.codec_context.extradata[:8] == b"OpusHead"
            assert container.duration is not None
            assert float(container.duration) / av.time_base > 2.0
        with av.open(str(recording.path)) as container:
            frames = sum(1 for _ in container.decode(video=0))
            assert frames == recording.video_frames
        with av.open(str(recording.path)) as container:
            samples = sum(f.samples for f in container.decode(audio=0))
            assert samples > 48000  # over a second of sound decodes
