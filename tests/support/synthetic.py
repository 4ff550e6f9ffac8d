"""Synthetic participants: aiortc clients that join a visit over the real signaling
socket and send a pre-encoded VP8 + Opus clip without encoding, and count what
they receive without decoding. Far cheaper than a browser: for load
benchmarks (benchmarks/media_capacity.py) and media tests. Also the clip they
send, and the raw Y4M file Chromium's fake camera plays.

Test support, not part of the installed package (it lives beside the tests).
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import json
import math
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import websockets
from aiortc import (
    MediaStreamTrack,
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError

from openvisit.media import forwarding

WIDTH, HEIGHT, FPS = 640, 480, 30


def _CONFIG() -> RTCConfiguration:
    # Max-bundle, as on the server (aiortc 1.16 mis-bundles a second track of a kind).
    return RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)


def make_clip(path: Path, seconds: float = 4.0, bitrate: int = 750_000) -> Path:
    """A 640x480@30 VP8 + Opus WebM with moving content, made with PyAV."""
    path.parent.mkdir(parents=True, exist_ok=True)
    container = av.open(str(path), mode="w", format="webm")
    video = container.add_stream("libvpx", rate=FPS)
    video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    video.bit_rate = bitrate
    video.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0", "g": "60"}
    audio = container.add_stream("libopus", rate=48000)
    audio.layout = "mono"
    row = bytes((x * 255) // WIDTH for x in range(WIDTH))
    chroma = bytes([128]) * ((WIDTH // 2) * (HEIGHT // 2))
    frames = int(seconds * FPS)
    for i in range(frames):
        shift = (i * 8) % WIDTH
        moved = row[shift:] + row[:shift]
        luma = bytearray(moved * HEIGHT)
        # a bright square moving across the picture
        top = (i * 5) % (HEIGHT - 80)
        for y in range(top, top + 80):
            start = y * WIDTH + (i * 9) % (WIDTH - 80)
            luma[start : start + 80] = b"\xf0" * 80
        frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
        frame.planes[0].update(bytes(luma))
        frame.planes[1].update(chroma)
        frame.planes[2].update(chroma)
        frame.pts = i
        frame.time_base = fractions.Fraction(1, FPS)
        for packet in video.encode(frame):
            container.mux(packet)
    samples = 960
    for i in range(int(seconds * 48000 / samples)):
        tone = b"".join(
            struct.pack("<h", int(3000 * math.sin(2 * math.pi * 440 * (i * samples + n) / 48000)))
            for n in range(samples)
        )
        sound = av.AudioFrame(format="s16", layout="mono", samples=samples)
        sound.planes[0].update(tone)
        sound.sample_rate = 48000
        sound.pts = i * samples
        sound.time_base = fractions.Fraction(1, 48000)
        for packet in audio.encode(sound):
            container.mux(packet)
    for stream in (video, audio):
        for packet in stream.encode(None):
            container.mux(packet)
    container.close()
    return path


def make_y4m(source: Path, target: Path) -> Path:
    """Decode a clip into the raw Y4M file Chromium's fake camera plays at 30 fps
    (its built-in fake device runs at a lower rate)."""
    with av.open(str(source)) as container, target.open("wb") as out:
        out.write(b"YUV4MPEG2 W640 H480 F30:1 Ip A1:1 C420jpeg\n")
        for frame in container.decode(video=0):
            out.write(b"FRAME\n")
            for plane in frame.reformat(format="yuv420p").planes:
                data = bytes(plane)
                for row in range(plane.height):
                    start = row * plane.line_size
                    out.write(data[start : start + plane.width])
    return target


@dataclass
class Clip:
    """A clip's encoded packets in memory: (data, seconds) per kind."""

    packets: dict[str, list[tuple[bytes, float]]]
    duration: float

    @classmethod
    def load(cls, path: Path) -> Clip:
        container = av.open(str(path))
        packets: dict[str, list[tuple[bytes, float]]] = {"video": [], "audio": []}
        for packet in container.demux():
            if packet.size == 0 or packet.pts is None:
                continue
            packets[packet.stream.type].append(
                (bytes(packet), float(packet.pts * packet.time_base))
            )
        container.close()
        duration = max(items[-1][1] for items in packets.values() if items) + 1 / FPS
        return cls(packets, duration)


class ClipTrack(MediaStreamTrack):
    """Plays a clip's packets in real time, looping, never encoding."""

    def __init__(self, kind: str, clip: Clip) -> None:
        super().__init__()
        self.kind = kind
        self._clip = clip
        self._index = 0
        self._loops = 0
        self._start: float | None = None
        self._rate = 90000 if kind == "video" else 48000

    async def recv(self) -> Any:
        items = self._clip.packets[self.kind]
        data, seconds = items[self._index]
        at = seconds + self._loops * self._clip.duration
        if self._start is None:
            self._start = time.monotonic()
        wait = self._start + at - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        self._index += 1
        if self._index == len(items):
            self._index, self._loops = 0, self._loops + 1
        packet = av.Packet(data)
        packet.pts = round(at * self._rate)
        packet.time_base = fractions.Fraction(1, self._rate)
        return packet


@dataclass
class Received:
    frames: int = 0
    first_at: float | None = None


@dataclass
class SyntheticParty:
    """One participant over the real signaling socket: publishes the clip (unless a
    monitor) and subscribes to what the server offers."""

    ws_url: str
    origin: str
    cookies: dict[str, str]
    clip: Clip | None = None
    received: dict[str, Received] = field(default_factory=dict)
    messages: list[dict[str, Any]] = field(default_factory=list)
    _ws: Any = None
    _pcs: list[RTCPeerConnection] = field(default_factory=list)
    _reader: asyncio.Task[None] | None = None
    _waiting: dict[str, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    started_at: float = 0.0

    async def join(self) -> None:
        self.started_at = time.monotonic()
        cookie = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        self._ws = await websockets.connect(
            self.ws_url,
            origin=self.origin,  # type: ignore[arg-type]
            additional_headers={"Cookie": cookie},
            max_size=2**20,
        )
        self._reader = asyncio.ensure_future(self._read())
        if self.clip is not None:
            await self._publish()
        await self._subscribe()

    async def _read(self) -> None:
        with contextlib.suppress(Exception):
            async for text in self._ws:
                message = json.loads(text)
                self.messages.append(message)
                waiter = self._waiting.pop(message.get("type", ""), None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(message)

    async def _expect(self, kind: str, send: dict[str, Any]) -> dict[str, Any]:
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[kind] = future
        await self._ws.send(json.dumps(send))
        return await asyncio.wait_for(future, 20)

    async def _publish(self) -> None:
        assert self.clip is not None
        pc = RTCPeerConnection(_CONFIG())
        self._pcs.append(pc)
        for kind in ("audio", "video"):
            pc.addTransceiver(ClipTrack(kind, self.clip), direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        answer = await self._expect(
            "answer", {"type": "offer", "pc": "publish", "sdp": pc.localDescription.sdp}
        )
        await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))

    async def _subscribe(self) -> None:
        pc = RTCPeerConnection(_CONFIG())
        self._pcs.append(pc)
        offer = await self._expect("offer", {"type": "subscribe"})
        by_mid = {t["mid"]: f"{t['party']}:{t['kind']}" for t in offer["tracks"]}

        @pc.on("track")
        def _on_track(track: MediaStreamTrack) -> None:
            transceiver = next(t for t in pc.getTransceivers() if t.receiver.track is track)
            forwarding.forward_encoded(transceiver.receiver)
            key = by_mid.get(str(transceiver.mid), track.kind)
            self._tasks.append(asyncio.ensure_future(self._count(key, track)))

        await pc.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        await self._ws.send(
            json.dumps({"type": "answer", "pc": "subscribe", "sdp": pc.localDescription.sdp})
        )

    async def _count(self, key: str, track: MediaStreamTrack) -> None:
        counter = self.received.setdefault(key, Received())
        while True:
            try:
                await track.recv()
            except MediaStreamError:
                return
            if counter.first_at is None:
                counter.first_at = time.monotonic()
            counter.frames += 1

    def frames(self, kind: str = "video") -> int:
        return sum(r.frames for key, r in self.received.items() if key.endswith(kind))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for pc in self._pcs:
            with contextlib.suppress(Exception):
                await pc.close()
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
