"""The media server's own measure of each party's media quality, minute by minute.

Pure bookkeeping, fed by a backend (``embedded`` calls it from its media loop):
nothing here trusts a client's word about what it received. A ``PartyMeter``
counts, for one party of one room:

* as a publisher, what reached the server: its video frames; its frozen video, a
  stretch of a second or more in which its media kept flowing (audio, or any
  frame) but no video frame came; and its RTP packets by sequence number,
  expected (highest - first + 1 of each stream) against received, so what was
  lost on the way in. Retransmissions are not counted: they repair loss for the
  viewer but don't undo it on the wire;
* as a viewer, what its RTCP receiver reports said of the packets the server sent
  it: the growth of the extended highest sequence number (expected), of the
  cumulative number lost, and the interarrival jitter.

Times are ``time.monotonic()`` seconds; minute ``n`` is ``[zero + 60 n, zero + 60 (n + 1))``
where ``zero`` is the visit's start on the same clock. Nothing before minute 0 is kept.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from openvisit.media.backend import PartyMinute

MINUTE_SECONDS = 60.0
# A gap between video frames shorter than this is ordinary jitter, not a freeze.
FREEZE_MIN_SECONDS = 1.0
_SEQ_MOD = 1 << 16
_HALF = 1 << 15
_RECENT = 1024  # sequence numbers remembered per stream, to spot duplicates


@dataclass
class _Minute:
    video_frames: int = 0
    frozen_ms: int = 0
    expected: int = 0
    received: int = 0
    viewer_expected: int = 0
    viewer_lost: int = 0
    viewer_jitter_ms: int = 0


@dataclass
class _Stream:
    """One RTP stream (SSRC) as it arrives: the highest sequence number so far, and the
    recent ones received (a duplicate must not hide a loss)."""

    highest: int
    recent: set[int] = field(default_factory=set)
    order: deque[int] = field(default_factory=deque)

    def first_time(self, sequence: int) -> bool:
        if sequence in self.recent:
            return False
        self.recent.add(sequence)
        self.order.append(sequence)
        if len(self.order) > _RECENT:
            self.recent.discard(self.order.popleft())
        return True


@dataclass
class _Reports:
    """The last receiver report a viewer sent about one of the server's streams."""

    highest: int
    lost: int


@dataclass
class PartyMeter:
    party: str
    zero: float  # the visit's start, on the monotonic clock
    minutes: dict[int, _Minute] = field(default_factory=dict)
    dirty: set[int] = field(default_factory=set)
    last_video_at: float | None = None
    freeze_from: float | None = None  # a freeze under way since (the last video frame)
    streams: dict[int, _Stream] = field(default_factory=dict)
    reports: dict[object, _Reports] = field(default_factory=dict)

    def _minute_of(self, at: float) -> int:
        return int((at - self.zero) // MINUTE_SECONDS)

    def _bucket(self, at: float) -> _Minute | None:
        n = self._minute_of(at)
        if n < 0:
            return None
        self.dirty.add(n)
        return self.minutes.setdefault(n, _Minute())

    # --- as a publisher --------------------------------------------------------------

    def rtp(self, ssrc: int, sequence: int, at: float) -> None:
        """A media packet (not a retransmission) of stream ``ssrc`` reached the server."""
        stream = self.streams.get(ssrc)
        if stream is None:
            stream = self.streams[ssrc] = _Stream(sequence)
            advance = 1
        elif not stream.first_time(sequence):
            return  # a duplicate
        else:
            step = (sequence - stream.highest) % _SEQ_MOD
            advance = step if 0 < step < _HALF else 0  # 0: late, reordered or a duplicate
            if advance:
                stream.highest = sequence
        stream.first_time(sequence)
        bucket = self._bucket(at)
        if bucket is not None:
            bucket.expected += advance
            bucket.received += 1

    def video_frame(self, at: float) -> None:
        """A video frame of the party reached the server: a freeze, if any, ends here."""
        if self.freeze_from is not None:
            self._frozen(self.freeze_from, at)
            self.freeze_from = None
        self.last_video_at = at
        bucket = self._bucket(at)
        if bucket is not None:
            bucket.video_frames += 1

    def follow(self, now: float, flowing: bool) -> None:
        """Called often (a few times a second): while the party's media flows, a video
        frame overdue by a second or more is a freeze in progress; when it stops
        flowing altogether (gone, not frozen) the freeze ends where the media stopped."""
        if not flowing:
            self.freeze_from = None
            self.last_video_at = None  # a new connection starts a new count
            return
        last = self.last_video_at
        if last is not None and now - last >= FREEZE_MIN_SECONDS:
            self.freeze_from = last
            self._frozen(last, now)

    def _frozen(self, since: float, until: float) -> None:
        length = until - since
        if length < FREEZE_MIN_SECONDS:
            return
        ms = int(length * 1000)
        first, last = max(0, self._minute_of(since)), self._minute_of(until)
        if until == self.zero + last * MINUTE_SECONDS:
            last -= 1  # it ended exactly as that minute began
        for n in range(first, last + 1):
            bucket = self.minutes.setdefault(n, _Minute())
            if ms > bucket.frozen_ms:
                bucket.frozen_ms = ms
                self.dirty.add(n)

    # --- as a viewer -----------------------------------------------------------------

    def receiver_report(
        self, stream: object, highest: int, lost: int, jitter_ms: int, at: float
    ) -> None:
        """The party's RTCP receiver report about ``stream`` (one of the server's senders):
        the extended highest sequence number it received, the cumulative number lost, the
        jitter. The first report of a stream is the baseline."""
        last = self.reports.get(stream)
        self.reports[stream] = _Reports(highest, lost)
        bucket = self._bucket(at)
        if bucket is None:
            return
        bucket.viewer_jitter_ms = max(bucket.viewer_jitter_ms, jitter_ms)
        if last is None:
            return
        expected = highest - last.highest
        if 0 < expected < (1 << 31):
            bucket.viewer_expected += expected
            bucket.viewer_lost += lost - last.lost

    # --- reporting -------------------------------------------------------------------

    def changed(self) -> list[PartyMinute]:
        """The minutes measured differently since the last call, with their values so far."""
        out = [self._as_row(n) for n in sorted(self.dirty) if n in self.minutes]
        self.dirty.clear()
        return out

    def _as_row(self, n: int) -> PartyMinute:
        m = self.minutes[n]
        viewer_lost = min(max(m.viewer_lost, 0), m.viewer_expected)
        return PartyMinute(
            party=self.party,
            minute=n,
            video_frames=m.video_frames,
            frozen_ms=m.frozen_ms,
            packets_expected=m.expected,
            packets_lost=max(m.expected - m.received, 0),
            viewer_packets_expected=m.viewer_expected,
            viewer_packets_lost=viewer_lost,
            viewer_jitter_ms=m.viewer_jitter_ms,
        )
