"""The embedded media backend: aiortc in this process, on its own event loop and thread.

Each party publishes one sendonly connection; every viewer (the other party,
officers) gets one connection that the server offers, with a ``ForwardTrack``
per party and kind. A reader is attached to every published track at once and
hands each encoded frame to the viewers' tracks and to the party's recorder:
nothing is decoded or re-encoded (``forwarding``). When a party publishes again
(a reload, a new network) its viewers' tracks switch to the new source with
continuous timestamps, so viewers need no new offer.

Why a thread with its own loop: aiortc objects must all live on one event
loop, while the app's HTTP and WebSocket handlers may run on others (the test
client runs one per connection); and media work never sits in the queue of
the loop that serves pages. Measured with benchmarks/media_capacity.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import itertools
import logging
import re
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from aiortc import (
    MediaStreamTrack,
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError
from aiortc.sdp import candidate_from_sdp

from openvisit.clock import Clock
from openvisit.media import forwarding, memory
from openvisit.media.backend import (
    PARTIES,
    IceCandidate,
    MediaChange,
    MediaError,
    MediaListener,
    QualityReport,
    Recording,
    SubscribeOffer,
)
from openvisit.media.forwarding import EncodedFrame
from openvisit.media.measure import PartyMeter
from openvisit.media.recorder import RemuxRecorder, last_segment

log = logging.getLogger(__name__)

T = TypeVar("T")

# How long start() waits for the media thread's loop before it fails.
START_TIMEOUT_SECONDS = 10
# A party's media is "flowing" while its frames keep arriving: a gap this long is "down".
FLOW_GAP_SECONDS = 1.5
TICK_SECONDS = 0.25
# How often each room's changed quality measurements go to the listener.
QUALITY_REPORT_SECONDS = 2.0
# While recording, a key frame from each party this often, so the file seeks.
RECORD_KEYFRAME_SECONDS = 3.0
# At most one upstream key-frame request per publication this often.
KEYFRAME_REQUEST_MIN_SECONDS = 0.3
# Frames a viewer's track keeps when its connection can't keep up (~4 s of video).
FORWARD_QUEUE_FRAMES = 120
# After a room closes, memory goes back to the system this much later (media.memory).
RELEASE_AFTER_SECONDS = 1.0
# RTP clock steps of one frame, used to keep timestamps continuous across sources.
_STEP = {"video": 3000, "audio": 960}

_LOCAL_CANDIDATE = re.compile(r"a=candidate:[^\r\n]* [0-9a-fA-F-]+\.local [^\r\n]*\r?\n")


def _strip_mdns(sdp: str) -> str:
    """Drop .local (mDNS) candidates: aioice can't resolve them here, and the
    browser still connects through peer-reflexive candidates."""
    return _LOCAL_CANDIDATE.sub("", sdp)


def cap_bitrate(sdp: str, bits_per_second: int) -> str:
    """Add ``b=AS``/``b=TIAS`` to the video section: the browser sends no faster."""
    out: list[str] = []
    in_video = False
    for line in sdp.splitlines():
        if line.startswith("m="):
            in_video = line.startswith("m=video")
        if line.startswith("b=") and in_video:
            continue
        out.append(line)
        if in_video and line.startswith("c="):
            out.append(f"b=AS:{bits_per_second // 1000}")
            out.append(f"b=TIAS:{bits_per_second}")
    return "\r\n".join(out) + "\r\n"


def _codecs(kind: str) -> list[Any]:
    """VP8 (with retransmission) for video, Opus for audio: what we forward and record."""
    wanted = ("video/vp8", "video/rtx") if kind == "video" else ("audio/opus",)
    capabilities = RTCRtpSender.getCapabilities(kind)
    return [c for c in capabilities.codecs if c.mimeType.lower() in wanted]


class ForwardTrack(MediaStreamTrack):
    """A viewer's outgoing track: encoded frames of one party and kind, from
    whichever publication of that party is current."""

    def __init__(self, kind: str, on_start: Callable[[], None]) -> None:
        super().__init__()
        self.kind = kind
        self._frames: asyncio.Queue[EncodedFrame | None] = asyncio.Queue(FORWARD_QUEUE_FRAMES)
        self._on_start = on_start
        self._active = False  # the connection reads: until then frames are not kept
        self._want_keyframe = kind == "video"
        self._source: int | None = None
        self._offset = 0
        self._last: int | None = None
        self.sent = 0

    def feed(self, source: int, frame: EncodedFrame) -> bool:
        """Queue ``frame``; False when a key frame is needed to go on."""
        if not self._active:
            return True
        if self._want_keyframe:
            if not frame.keyframe:
                return False
            self._want_keyframe = False
        if source != self._source:
            start = 0 if self._last is None else self._last + _STEP[self.kind]
            self._offset = start - frame.timestamp
            self._source = source
        try:
            self._frames.put_nowait(frame._replace(timestamp=frame.timestamp + self._offset))
        except asyncio.QueueFull:
            # The viewer can't keep up: start again from the next key frame.
            while not self._frames.empty():
                self._frames.get_nowait()
            self._want_keyframe = self.kind == "video"
            return not self._want_keyframe
        return True

    async def recv(self) -> Any:
        if not self._active:
            self._active = True
            self._on_start()
        frame = await self._frames.get()
        if frame is None or self.readyState != "live":
            raise MediaStreamError
        self._last = frame.timestamp
        self.sent += 1
        return forwarding.to_packet(frame, frame.timestamp)

    def stop(self) -> None:
        super().stop()
        with contextlib.suppress(asyncio.QueueFull):
            self._frames.put_nowait(None)


@dataclass(eq=False)
class Publication:
    party: str
    serial: int
    pc: RTCPeerConnection
    receivers: dict[str, RTCRtpReceiver] = field(default_factory=dict)
    readers: list[asyncio.Task[None]] = field(default_factory=list)
    first_at: float | None = None  # when the current streak of frames began
    last_at: float | None = None
    last_keyframe_request: float = 0.0
    frames: int = 0

    def request_keyframe(self, now: float) -> None:
        receiver = self.receivers.get("video")
        if receiver is None or now - self.last_keyframe_request < KEYFRAME_REQUEST_MIN_SECONDS:
            return
        self.last_keyframe_request = now
        forwarding.request_keyframe(receiver)


@dataclass(eq=False)
class Subscription:
    viewer: str
    pc: RTCPeerConnection
    tracks: list[tuple[str, str, ForwardTrack]] = field(default_factory=list)


@dataclass(eq=False)
class Room:
    visit_id: int
    record: bool
    directory: Path
    publications: dict[str, Publication] = field(default_factory=dict)
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    recorders: dict[str, RemuxRecorder] = field(default_factory=dict)
    up: dict[str, bool] = field(default_factory=lambda: dict.fromkeys(PARTIES, False))
    recording_since: float | None = None
    last_record_keyframe: float = 0.0
    segment: int = 0
    meters: dict[str, PartyMeter] = field(default_factory=dict)
    last_quality_report: float = 0.0

    def keyframe_for(self, party: str) -> None:
        publication = self.publications.get(party)
        if publication is not None:
            publication.request_keyframe(time.monotonic())


class EmbeddedBackend:
    """The MediaBackend on aiortc. Public coroutines may be awaited from any loop."""

    def __init__(
        self,
        clock: Clock,
        *,
        addresses: Sequence[str] = (),
        max_bitrate: int = 800_000,
    ) -> None:
        self._clock = clock
        self._addresses = list(addresses)
        self._max_bitrate = max_bitrate
        self._rooms: dict[int, Room] = {}
        self._serials = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._listener: MediaListener | None = None
        self._changes: asyncio.Queue[MediaChange | QualityReport] | None = None
        self._tasks: list[asyncio.Task[Any]] = []

    # --- the media thread ------------------------------------------------------------

    def start(self, listener: MediaListener) -> None:
        if self._thread is not None:
            return
        forwarding.use_addresses(self._addresses)
        self._listener = listener
        ready = threading.Event()

        def _run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            self._changes = asyncio.Queue()
            self._tasks = [loop.create_task(self._tick()), loop.create_task(self._deliver())]
            ready.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=_run, name="openvisit-media", daemon=True)
        self._thread.start()
        if not ready.wait(START_TIMEOUT_SECONDS):
            raise MediaError(
                f"The media thread did not start within {START_TIMEOUT_SECONDS} s:"
                " the embedded media server is not running."
            )

    async def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        for visit_id in list(self._rooms):
            with contextlib.suppress(Exception):
                await self.close_room(visit_id)

        async def _cancel() -> None:
            for task in self._tasks:
                task.cancel()

        await self._call(_cancel())
        self._loop.call_soon_threadsafe(self._loop.stop)
        await asyncio.to_thread(self._thread.join, 10)
        self._thread = None
        self._loop = None

    async def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the media loop and wait for it from wherever we are."""
        loop = self._loop
        if loop is None:
            coro.close()
            raise MediaError("The media server is not running.")
        if asyncio.get_running_loop() is loop:
            return await coro
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, loop))

    # --- rooms -----------------------------------------------------------------------

    def room_ids(self) -> list[int]:
        return list(self._rooms)

    async def open_room(
        self, visit_id: int, *, record: bool, directory: Path, minutes_from: dt.datetime
    ) -> None:
        async def _open() -> None:
            if visit_id not in self._rooms:
                room = Room(visit_id, record, directory)
                # The visit's start on the monotonic clock that times every frame here.
                zero = time.monotonic() - (self._clock.now() - minutes_from).total_seconds()
                room.meters = {party: PartyMeter(party, zero) for party in PARTIES}
                self._rooms[visit_id] = room

        await self._call(_open())

    def _room(self, visit_id: int) -> Room:
        room = self._rooms.get(visit_id)
        if room is None:
            raise MediaError("This visit has no media room open.")
        return room

    def _new_pc(self) -> RTCPeerConnection:
        # No STUN server: an explicit empty list (aiortc's default adds a public one).
        # Max-bundle: every track on one transport from the start (aiortc 1.16 leaves a
        # second track of the same kind on its own, never-started transport otherwise).
        return RTCPeerConnection(
            RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        )

    async def publish(self, visit_id: int, party: str, offer_sdp: str) -> str:
        return await self._call(self._publish(visit_id, party, offer_sdp))

    async def _publish(self, visit_id: int, party: str, offer_sdp: str) -> str:
        room = self._room(visit_id)
        pc = self._new_pc()
        publication = Publication(party, next(self._serials), pc)

        @pc.on("track")
        def _on_track(track: MediaStreamTrack) -> None:
            receiver = next(
                (t.receiver for t in pc.getTransceivers() if t.receiver.track is track), None
            )
            if receiver is None or track.kind not in ("audio", "video"):
                return
            forwarding.forward_encoded(receiver)
            meter = room.meters[party]
            forwarding.on_rtp(receiver, lambda ssrc, seq: meter.rtp(ssrc, seq, time.monotonic()))
            publication.receivers[track.kind] = receiver
            publication.readers.append(
                asyncio.ensure_future(self._read(room, publication, track.kind, track))
            )

        @pc.on("connectionstatechange")
        async def _on_state() -> None:
            if pc.connectionState == "failed":
                await pc.close()

        try:
            await pc.setRemoteDescription(
                RTCSessionDescription(sdp=_strip_mdns(offer_sdp), type="offer")
            )
            media = [t for t in pc.getTransceivers() if t.kind in ("audio", "video")]
            if not media:
                raise MediaError("The offer carries no audio or video.")
            for transceiver in media:
                transceiver.setCodecPreferences(_codecs(transceiver.kind))
            await pc.setLocalDescription(await pc.createAnswer())
        except MediaError:
            await pc.close()
            raise
        except Exception as exc:
            await pc.close()
            raise MediaError(f"The offer could not be used: {exc}") from exc
        old = room.publications.get(party)
        room.publications[party] = publication
        if old is not None:
            await self._close_publication(old)
        return cap_bitrate(pc.localDescription.sdp, self._max_bitrate)

    async def _read(
        self, room: Room, publication: Publication, kind: str, track: MediaStreamTrack
    ) -> None:
        """Take every frame of a published track at once, and hand it on."""
        party = publication.party
        while True:
            try:
                # Not what aiortc's types say: forwarding's receiver hands over EncodedFrames.
                frame: object = await track.recv()
            except MediaStreamError:
                return
            if not isinstance(frame, EncodedFrame):
                continue
            now = time.monotonic()
            if publication.last_at is None or now - publication.last_at > FLOW_GAP_SECONDS:
                publication.first_at = now
            publication.last_at = now
            publication.frames += 1
            if room.publications.get(party) is not publication:
                continue  # replaced: the new publication is the source now
            if kind == "video":
                room.meters[party].video_frame(now)
            need_keyframe = False
            for subscription in room.subscriptions.values():
                for source_party, source_kind, out in subscription.tracks:
                    if source_party == party and source_kind == kind:
                        need_keyframe |= not out.feed(publication.serial, frame)
            recorder = room.recorders.get(party)
            if recorder is not None:
                need_keyframe |= not recorder.write(publication.serial, kind, frame, now)
            if need_keyframe:
                publication.request_keyframe(now)

    async def subscribe(self, visit_id: int, viewer: str, parties: Sequence[str]) -> SubscribeOffer:
        return await self._call(self._subscribe(visit_id, viewer, list(parties)))

    async def _subscribe(self, visit_id: int, viewer: str, parties: list[str]) -> SubscribeOffer:
        room = self._room(visit_id)
        pc = self._new_pc()
        subscription = Subscription(viewer, pc)
        transceivers = []
        for party in parties:
            ask = functools.partial(room.keyframe_for, party)
            for kind in ("audio", "video"):
                track = ForwardTrack(kind, ask)
                transceiver = pc.addTransceiver(track, direction="sendonly")
                transceiver.setCodecPreferences(_codecs(kind))
                if kind == "video":
                    forwarding.on_keyframe_request(transceiver.sender, ask)
                if viewer in room.meters:
                    self._measure_viewer(room.meters[viewer], transceiver.sender)
                subscription.tracks.append((party, kind, track))
                transceivers.append((party, kind, transceiver))

        @pc.on("connectionstatechange")
        async def _on_state() -> None:
            if pc.connectionState == "failed":
                await pc.close()

        await pc.setLocalDescription(await pc.createOffer())
        old = room.subscriptions.get(viewer)
        room.subscriptions[viewer] = subscription
        if old is not None:
            await self._close_subscription(old)
        tracks = [
            {"mid": str(t.mid), "party": party, "kind": kind} for party, kind, t in transceivers
        ]
        return SubscribeOffer(pc.localDescription.sdp, tracks)

    @staticmethod
    def _measure_viewer(meter: PartyMeter, sender: RTCRtpSender) -> None:
        """The party's receiver reports about what ``sender`` sends it go to its meter."""

        def _report(highest: int, lost: int, jitter: int, clock_rate: int) -> None:
            jitter_ms = jitter * 1000 // clock_rate
            meter.receiver_report(sender, highest, lost, jitter_ms, time.monotonic())

        forwarding.on_receiver_report(sender, _report)

    async def accept_answer(self, visit_id: int, viewer: str, answer_sdp: str) -> None:
        async def _accept() -> None:
            subscription = self._room(visit_id).subscriptions.get(viewer)
            if subscription is None:
                raise MediaError("There is no offer waiting for this answer.")
            if subscription.pc.signalingState != "have-local-offer":
                raise MediaError("This offer was already answered.")
            try:
                await subscription.pc.setRemoteDescription(
                    RTCSessionDescription(sdp=_strip_mdns(answer_sdp), type="answer")
                )
            except Exception as exc:
                raise MediaError(f"The answer could not be used: {exc}") from exc

        await self._call(_accept())

    async def add_ice(self, visit_id: int, connection: tuple[str, str], ice: IceCandidate) -> None:
        async def _add() -> None:
            room = self._room(visit_id)
            kind, who = connection
            holder: Publication | Subscription | None = (
                room.publications.get(who) if kind == "publish" else room.subscriptions.get(who)
            )
            if holder is None or holder.pc.remoteDescription is None:
                raise MediaError("Send the offer or answer before its candidates.")
            if ice.candidate is None or not ice.candidate.strip():
                return  # end of candidates: aiortc checks the pairs it has
            text = ice.candidate.removeprefix("candidate:")
            if ".local " in text:
                return  # mDNS: see _strip_mdns
            try:
                parsed = candidate_from_sdp(text)
            except (ValueError, IndexError) as exc:
                raise MediaError("That ICE candidate could not be read.") from exc
            parsed.sdpMid = ice.sdp_mid
            parsed.sdpMLineIndex = ice.sdp_mline_index
            with contextlib.suppress(Exception):  # a candidate for a closed transport
                await holder.pc.addIceCandidate(parsed)

        await self._call(_add())

    async def unpublish(self, visit_id: int, party: str) -> None:
        async def _unpublish() -> None:
            room = self._rooms.get(visit_id)
            if room is not None and party in room.publications:
                await self._close_publication(room.publications.pop(party))

        await self._call(_unpublish())

    async def unsubscribe(self, visit_id: int, viewer: str) -> None:
        async def _unsubscribe() -> None:
            room = self._rooms.get(visit_id)
            if room is not None and viewer in room.subscriptions:
                await self._close_subscription(room.subscriptions.pop(viewer))

        await self._call(_unsubscribe())

    async def close_room(self, visit_id: int) -> list[Recording]:
        return await self._call(self._close_room(visit_id))

    async def _close_room(self, visit_id: int) -> list[Recording]:
        room = self._rooms.pop(visit_id, None)
        if room is None:
            return []
        self._report_quality(room)
        for subscription in room.subscriptions.values():
            await self._close_subscription(subscription)
        for publication in room.publications.values():
            await self._close_publication(publication)
        recordings = self._finish_recorders(room)
        # Once the room's objects are unreachable (its readers end in the next turns).
        asyncio.get_running_loop().call_later(RELEASE_AFTER_SECONDS, memory.give_back)
        return recordings

    def _finish_recorders(self, room: Room) -> list[Recording]:
        finished = []
        now_mono, now = time.monotonic(), self._clock.now()
        for recorder in room.recorders.values():
            done = recorder.close()
            if done is None:
                continue
            started_at = now - dt.timedelta(seconds=now_mono - done.started_monotonic)
            finished.append(
                Recording(
                    done.party,
                    done.path,
                    started_at,
                    done.duration_ms,
                    done.video_frames,
                    done.audio_frames,
                )
            )
        room.recorders.clear()
        return finished

    async def _close_publication(self, publication: Publication) -> None:
        for task in publication.readers:
            task.cancel()
        with contextlib.suppress(Exception):
            await publication.pc.close()

    async def _close_subscription(self, subscription: Subscription) -> None:
        for _party, _kind, track in subscription.tracks:
            track.stop()
        with contextlib.suppress(Exception):
            await subscription.pc.close()

    # --- flow, recording and key frames ----------------------------------------------

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(TICK_SECONDS)
            self._tick_rooms(time.monotonic())

    def _tick_rooms(self, now: float) -> None:
        # Its own frame: a loop variable left in _tick's would hold the last room open
        # after it closed, until the next room came.
        for room in list(self._rooms.values()):
            try:
                self._follow_flow(room, now)
            except Exception:
                log.exception("media room of visit %s", room.visit_id)

    def _follow_flow(self, room: Room, now: float) -> None:
        for party in PARTIES:
            publication = room.publications.get(party)
            last = publication.last_at if publication else None
            flowing = last is not None and now - last <= FLOW_GAP_SECONDS
            room.meters[party].follow(now, flowing)
            if flowing == room.up[party]:
                continue
            room.up[party] = flowing
            if flowing:
                assert publication is not None and publication.first_at is not None
                since = publication.first_at
            else:
                since = last if last is not None else now
            self._emit(room.visit_id, party, flowing, now - since)
        if now - room.last_quality_report >= QUALITY_REPORT_SECONDS:
            room.last_quality_report = now
            self._report_quality(room)
        if room.record and room.recording_since is None and all(room.up.values()):
            self._start_recording(room, now)
        if room.recording_since is not None and now - room.last_record_keyframe >= (
            RECORD_KEYFRAME_SECONDS
        ):
            room.last_record_keyframe = now
            for publication in room.publications.values():
                publication.request_keyframe(now)

    def _start_recording(self, room: Room, now: float) -> None:
        room.recording_since = now
        # Numbered on from the visit's files already on disk (an earlier room of this
        # visit, before a restart): a segment's number is never used twice.
        room.segment = max(room.segment, last_segment(room.directory, room.visit_id)) + 1
        stamp = self._clock.now().strftime("%Y%m%dT%H%M%SZ")
        for party in PARTIES:
            path = room.directory / f"visit-{room.visit_id}-{party}-{stamp}-{room.segment}.webm"
            room.recorders[party] = RemuxRecorder(path, party)
        room.last_record_keyframe = 0.0

    def _report_quality(self, room: Room) -> None:
        """Hand the room's changed measurements to the listener (after its media changes)."""
        minutes = tuple(m for meter in room.meters.values() for m in meter.changed())
        if minutes and self._changes is not None:
            self._changes.put_nowait(QualityReport(room.visit_id, minutes))

    def _emit(self, visit_id: int, party: str, up: bool, seconds_ago: float) -> None:
        at = self._clock.now() - dt.timedelta(seconds=max(0.0, seconds_ago))
        if self._changes is not None:
            self._changes.put_nowait(MediaChange(visit_id, party, up, at))

    async def _deliver(self) -> None:
        """Hand media changes to the listener one at a time, in order."""
        assert self._changes is not None
        while True:
            change = await self._changes.get()
            if self._listener is None:
                continue
            try:
                await self._listener(change)
            except Exception:
                log.exception("media report of visit %s not recorded", change.visit_id)
