"""Recording by remuxing: the forwarded VP8 and Opus frames go into one WebM file
per party, never decoded or re-encoded (DESIGN §5).

Written for OpenVisit because aiortc's MediaRecorder decodes and re-encodes
every frame (half the frame rate under load, and a race that loses the video
when audio comes first). PyAV writes the container: the streams are declared
from the first key frame (its header carries the size), audio waits for that
key frame, and each publication's timestamps are anchored to the wall clock at
its first frame, so a party who reconnects continues the same file after a
gap, and the file lasts as long as the recording ran.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fractions
import functools
import hashlib
import io
import logging
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av

from openvisit.media.forwarding import EncodedFrame, vp8_size
from openvisit.private_files import private_file

log = logging.getLogger(__name__)

_MS = fractions.Fraction(1, 1000)
# The Opus identification header (RFC 7845 §5.1) the WebM's CodecPrivate needs, as
# libopus writes it: version 1, 2 channels, 312 samples pre-skip, 48 kHz, no gain,
# mapping family 0. Browsers' Opus is stereo-signalled (RFC 7587).
_OPUS_HEAD = b"OpusHead" + struct.pack("<BBHIhB", 1, 2, 312, 48000, 0, 0)


@dataclass(frozen=True)
class RecordedFile:
    """A finished recording of one party."""

    party: str
    path: Path
    started_monotonic: float
    duration_ms: int
    video_frames: int
    audio_frames: int


@functools.cache
def _templates() -> tuple[Any, Any]:
    """A VP8 and an Opus stream declared in an in-memory WebM that is never started, so
    their encoders are never opened: only their codec parameters are copied."""
    container = av.open(io.BytesIO(), mode="w", format="webm")
    video = container.add_stream("libvpx", rate=30)
    audio = container.add_stream("libopus", rate=48000)
    audio.layout = "stereo"
    _keep.append(container)  # the streams live as long as their container
    return video, audio


_keep: list[Any] = []


class RemuxRecorder:
    """One party's WebM: ``write`` each forwarded frame, ``close`` at the end."""

    def __init__(self, path: Path, party: str) -> None:
        self.path = path
        self.party = party
        self._container: Any = None
        self._video: Any = None
        self._audio: Any = None
        self._t0: float | None = None  # monotonic time of the first key frame written
        # per (publication, kind): the offset in ms from its RTP clock to the file's
        self._anchors: dict[tuple[int, str], float] = {}
        self._last_pts = {"video": -1, "audio": -1}
        self.video_frames = 0
        self.audio_frames = 0
        self.closed = False

    @property
    def started(self) -> bool:
        return self._t0 is not None

    def write(self, publication: int, kind: str, frame: EncodedFrame, arrived: float) -> bool:
        """Mux one frame; False while waiting for the first key frame (ask for one)."""
        if self.closed:
            return True
        if self._t0 is None:
            if kind != "video" or not frame.keyframe:
                return False
            self._open(frame, arrived)
        assert self._t0 is not None
        key = (publication, kind)
        rtp_ms = frame.timestamp * 1000 / frame.clock_rate
        anchor = self._anchors.get(key)
        if anchor is None:
            anchor = self._anchors[key] = (arrived - self._t0) * 1000 - rtp_ms
        pts = max(round(anchor + rtp_ms), self._last_pts[kind] + 1)
        self._last_pts[kind] = pts
        packet = av.Packet(frame.data)
        packet.pts = packet.dts = pts
        packet.time_base = _MS
        if kind == "video":
            packet.stream = self._video
            packet.is_keyframe = frame.keyframe
            self.video_frames += 1
        else:
            packet.stream = self._audio
            self.audio_frames += 1
        self._container.mux(packet)
        return True

    def _open(self, keyframe: EncodedFrame, arrived: float) -> None:
        # A recording is private: 0600 in a 0700 directory before a byte is written.
        private_file(self.path)
        container = av.open(
            str(self.path),
            mode="w",
            format="webm",
            # Each packet reaches the file as it is muxed, and a cluster ends at each
            # key frame (requested every few seconds): a crash loses the last cluster.
            options={"flush_packets": "1", "cluster_time_limit": "1000"},
        )
        width, height = vp8_size(keyframe.data)
        # Streams copied from never-opened templates: the muxer learns the codecs and
        # no encoder is opened (libvpx's alone held about 8 MB per file, for good).
        template_video, template_audio = _templates()
        video = container.add_stream_from_template(template_video, opaque=True)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.time_base = _MS
        audio = container.add_stream_from_template(template_audio, opaque=True)
        audio.time_base = _MS
        audio.codec_context.extradata = _OPUS_HEAD
        self._container, self._video, self._audio = container, video, audio
        self._t0 = arrived

    def close(self) -> RecordedFile | None:
        """Finish the file (cues included, so it seeks); None if nothing was recorded."""
        if self.closed:
            return None
        self.closed = True
        if self._container is None:
            return None
        try:
            self._container.close()
        except Exception:
            log.exception("could not finish the recording %s", self.path)
            return None
        duration = max(self._last_pts.values()) + 1
        assert self._t0 is not None
        return RecordedFile(
            self.party,
            self.path,
            self._t0,
            duration,
            self.video_frames,
            self.audio_frames,
        )


SEGMENT_NAME = re.compile(r"visit-([0-9]+)-([a-z]+)-([0-9]{8}T[0-9]{6}Z)-([0-9]+)\.webm")


@dataclass(frozen=True)
class Interrupted:
    """A recording whose writer stopped before closing it, finished afterwards."""

    visit_id: int
    party: str
    path: Path
    started_at: dt.datetime  # from its name: to the second
    duration_ms: int


def finish_interrupted(path: Path) -> Interrupted | None:
    """Finish a segment cut off by a crash: copy what is readable into a complete WebM
    (duration and cues written, so it seeks), in place. None if the name is not a
    segment's or nothing in it can be read (the file is left as it is)."""
    match = SEGMENT_NAME.fullmatch(path.name)
    if match is None:
        return None
    started_at = dt.datetime.strptime(match.group(3), "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    partial = path.with_name(path.name + ".part")
    last_ms = -1
    try:
        with av.open(str(path)) as source:
            private_file(partial)
            with av.open(str(partial), mode="w", format="webm") as target:
                streams = {
                    s.index: target.add_stream_from_template(s)
                    for s in source.streams
                    if s.type in ("video", "audio")
                }
                for packet in source.demux():
                    out = streams.get(packet.stream.index)
                    if out is None or not packet.size or packet.pts is None:
                        continue
                    last_ms = max(last_ms, round(packet.pts * packet.time_base * 1000))
                    packet.stream = out
                    target.mux(packet)
    except (av.FFmpegError, OSError):
        log.warning("the interrupted recording %s could not be read", path, exc_info=True)
        partial.unlink(missing_ok=True)
        return None
    if last_ms < 0:
        partial.unlink(missing_ok=True)
        return None
    os.replace(partial, path)
    return Interrupted(int(match.group(1)), match.group(2), path, started_at, last_ms + 1)


def last_segment(directory: Path, visit_id: int) -> int:
    """The highest segment number among the visit's recordings in ``directory`` (0: none).

    Files are named ``visit-{visit}-{party}-{stamp}-{segment}.webm``."""
    pattern = re.compile(rf"visit-{visit_id}-[a-z]+-[0-9TZ]+-([0-9]+)\.webm")
    found = [0]
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(directory):
            match = pattern.fullmatch(entry.name)
            if match:
                found.append(int(match.group(1)))
    return max(found)


def sha256_of(path: Path) -> tuple[str, int]:
    """The file's SHA-256 (hex) and size, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size
