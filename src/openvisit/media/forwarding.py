"""What the embedded backend changes in aiortc 1.16 (pinned in pyproject) to forward
encoded media instead of decoding and re-encoding it.

aiortc has no public API for this, so this module is the one place that reaches
into its internals; the media tests guard it (they fail if a new aiortc moves
these names). Written for OpenVisit; the approach follows the feasibility
spike in shared/reference/spikes/aiortc:

* ``RTCRtpReceiver.receive`` starts a thread running the module-level
  ``aiortc.rtcrtpreceiver.decoder_worker(loop, input_q, output_q, error)``,
  fed with re-assembled encoded frames. For the tracks we mark, our worker
  passes each encoded frame on as an ``EncodedFrame`` instead of decoding it.
* ``RTCRtpSender`` packs anything that is not an ``av.Frame`` with the codec's
  ``pack`` (packetization only), so a track that yields ``av.Packet`` objects is
  sent without encoding.
* A viewer's keyframe request (PLI/FIR) reaches ``sender._send_keyframe``,
  which only flags the encoder we don't use; we replace it per sender to ask the
  publisher instead (``RTCRtpReceiver._send_rtcp_pli``).
* aiortc's receive-side bandwidth estimator (REMB) drives publishers down to a
  few kbit/s when the server is busy; we switch it off per receiver and cap the
  publisher's bitrate in the answer instead.
* Quality is measured where packets arrive: ``on_rtp`` wraps a receiver's
  ``_handle_rtp_packet`` (each RTP packet, with its codec from the receiver's
  private ``__codecs``, so that retransmissions can be told apart), and
  ``on_receiver_report`` wraps a sender's ``_handle_rtcp_packet`` (the viewer's
  RTCP receiver reports about that sender's stream). aiortc's transport looks
  both up on the instance for every packet.
* aioice gathers its host addresses with ``aioice.ice.get_host_addresses`` and
  never offers 127.0.0.1; ``use_addresses`` replaces it with the configured list.
"""

from __future__ import annotations

import asyncio
import fractions
import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import aioice.ice
import aiortc.rtcrtpreceiver as rtcrtpreceiver
import av
from aiortc import RTCRtpReceiver, RTCRtpSender
from aiortc.codecs import is_rtx
from aiortc.rtp import RtcpRrPacket, RtcpSrPacket, RtpPacket

_stock_decoder_worker = rtcrtpreceiver.decoder_worker
_stock_host_addresses = aioice.ice.get_host_addresses
_MARK = "_openvisit_forward"
_pending: set[asyncio.Future[None]] = set()  # key-frame requests on their way


class EncodedFrame(NamedTuple):
    """One encoded audio or video frame as it arrived, never decoded."""

    data: bytes
    timestamp: int  # RTP clock units, from 0 at the track's first frame
    clock_rate: int
    keyframe: bool


def is_vp8_keyframe(data: bytes) -> bool:
    """A VP8 key frame: the frame tag's P bit is 0 and the start code follows (RFC 6386 §9.1)."""
    return len(data) >= 10 and not data[0] & 1 and data[3:6] == b"\x9d\x01\x2a"


def vp8_size(data: bytes) -> tuple[int, int]:
    """Width and height from a VP8 key frame's header."""
    width = int.from_bytes(data[6:8], "little") & 0x3FFF
    height = int.from_bytes(data[8:10], "little") & 0x3FFF
    return width, height


def _forwarding_worker(
    loop: asyncio.AbstractEventLoop,
    input_q: queue.Queue[Any],
    output_q: asyncio.Queue[Any],
    decode_error: threading.Event,
) -> None:
    if not getattr(output_q, _MARK, False):
        _stock_decoder_worker(loop, input_q, output_q, decode_error)
        return
    while True:
        task = input_q.get()
        if task is None:
            loop.call_soon_threadsafe(output_q.put_nowait, None)
            return
        codec, frame = task
        data = bytes(frame.data)
        keyframe = codec.name == "VP8" and is_vp8_keyframe(data)
        loop.call_soon_threadsafe(
            output_q.put_nowait, EncodedFrame(data, frame.timestamp, codec.clockRate, keyframe)
        )


rtcrtpreceiver.decoder_worker = _forwarding_worker


def forward_encoded(receiver: RTCRtpReceiver) -> None:
    """Make ``receiver``'s track yield ``EncodedFrame``s, and switch off its REMB.

    Call it from the peer connection's "track" event, before the connection
    starts the receiver's thread.
    """
    track = receiver.track
    # aiortc internals, typed private or not at all (see the module's docstring).
    setattr(track._queue, _MARK, True)  # type: ignore[attr-defined]  # private queue
    receiver._RTCRtpReceiver__remote_bitrate_estimator = None  # type: ignore[attr-defined]  # name-mangled


def request_keyframe(receiver: RTCRtpReceiver) -> None:
    """Ask the publisher behind ``receiver`` for a key frame (an RTCP PLI)."""
    for source in receiver.getSynchronizationSources():
        task = asyncio.ensure_future(receiver._send_rtcp_pli(source.source))
        _pending.add(task)
        task.add_done_callback(_pending.discard)


def on_keyframe_request(sender: RTCRtpSender, callback: Callable[[], None]) -> None:
    """Call ``callback`` when the viewer behind ``sender`` asks for a key frame."""
    # Replaced per sender on purpose (see the module's docstring).
    sender._send_keyframe = callback  # type: ignore[method-assign]  # aiortc private hook


def on_rtp(receiver: RTCRtpReceiver, callback: Callable[[int, int], None]) -> None:
    """Call ``callback(ssrc, sequence_number)`` for each media packet that reaches
    ``receiver``, retransmissions (RTX) and packets of unknown codecs aside."""
    handle = receiver._handle_rtp_packet

    async def _counted(packet: RtpPacket, arrival_time_ms: int) -> None:
        codecs = getattr(receiver, "_RTCRtpReceiver__codecs", {})
        codec = codecs.get(packet.payload_type)
        if codec is not None and not is_rtx(codec):
            callback(packet.ssrc, packet.sequence_number)
        await handle(packet, arrival_time_ms)

    receiver._handle_rtp_packet = _counted  # type: ignore[method-assign]  # aiortc private hook


def on_receiver_report(
    sender: RTCRtpSender, callback: Callable[[int, int, int, int], None]
) -> None:
    """Call ``callback(highest_sequence, cumulative_lost, jitter, clock_rate)`` for each
    RTCP receiver report block the viewer sends about ``sender``'s stream."""
    handle = sender._handle_rtcp_packet

    async def _read(packet: Any) -> None:
        if isinstance(packet, RtcpRrPacket | RtcpSrPacket):
            clock_rate = 90000 if sender.kind == "video" else 48000
            for r in packet.reports:
                if r.ssrc == sender._ssrc:
                    callback(r.highest_sequence, r.packets_lost, r.jitter, clock_rate)
        await handle(packet)

    sender._handle_rtcp_packet = _read  # type: ignore[method-assign]  # aiortc private hook


def to_packet(frame: EncodedFrame, timestamp: int) -> Any:
    """An ``av.Packet`` that aiortc's sender packetizes as is."""
    packet = av.Packet(frame.data)
    packet.pts = timestamp
    packet.time_base = fractions.Fraction(1, frame.clock_rate)
    return packet


def use_addresses(addresses: Sequence[str]) -> None:
    """Announce exactly ``addresses`` as host candidates (empty: aioice's own choice)."""
    if addresses:
        chosen = list(addresses)

        def _configured(use_ipv4: bool, use_ipv6: bool) -> list[str]:
            return [a for a in chosen if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

        aioice.ice.get_host_addresses = _configured
    else:
        aioice.ice.get_host_addresses = _stock_host_addresses
