"""The one interface the visit plane uses to reach media (DESIGN §5).

``embedded`` (aiortc, in this process) is the only backend so far; a Janus
backend would implement the same methods. The app chooses one at start-up
(``app.state.media``, create_app) and signaling speaks only to this protocol.
Parties are "visitor" and "resident"; a viewer is a party or "monitor:<n>" for
an officer watching. The coroutines may be awaited from any event loop.

Quality is measured here, not taken from the clients (DESIGN §4): the backend
reports each party's ``PartyMinute`` measurements through the same listener as
media going up or down, in a ``QualityReport``, every few seconds while a room
is open and once more when it closes. A backend fills them from what it sees
itself: the embedded one counts the frames and RTP sequence numbers that reach
it and reads the viewers' RTCP receiver reports; a Janus backend would fill the
same fields from Janus's own statistics.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

PARTIES = ("visitor", "resident")


@dataclass(frozen=True)
class SubscribeOffer:
    sdp: str
    # which party and kind each m-line (by mid) carries
    tracks: list[dict[str, str]]


@dataclass(frozen=True)
class IceCandidate:
    """A trickled ICE candidate as the browser gave it; ``candidate`` None (or empty)
    means the end of candidates."""

    candidate: str | None
    sdp_mid: str | None = None
    sdp_mline_index: int | None = None


@dataclass(frozen=True)
class Recording:
    """A party's finished recording, handed back when the room closes."""

    party: str
    path: Path
    started_at: dt.datetime
    duration_ms: int
    video_frames: int
    audio_frames: int


@dataclass(frozen=True)
class MediaChange:
    """A party's media started or stopped flowing, as the server saw it."""

    visit_id: int
    party: str
    up: bool
    at: dt.datetime


@dataclass(frozen=True)
class PartyMinute:
    """What the media server measured of one party in minute ``minute`` of a visit,
    ``[minutes_from + 60 minute, minutes_from + 60 (minute + 1))`` (``open_room``).

    As a publisher, what reached the server from the party: ``video_frames``, and
    ``frozen_ms``, the longest stretch overlapping the minute in which the party's
    media kept flowing but no video frame came (0: none of a second or more);
    ``packets_expected`` by the RTP sequence numbers of its media packets
    (retransmissions aside) and ``packets_lost``, those that never arrived.
    As a viewer, what its RTCP receiver reports said about the packets the server
    sent it: ``viewer_packets_expected``, ``viewer_packets_lost`` and the highest
    ``viewer_jitter_ms``. A report carries a minute's values so far: a later
    report of the same minute replaces it (it only grows).
    """

    party: str
    minute: int
    video_frames: int = 0
    frozen_ms: int = 0
    packets_expected: int = 0
    packets_lost: int = 0
    viewer_packets_expected: int = 0
    viewer_packets_lost: int = 0
    viewer_jitter_ms: int = 0


@dataclass(frozen=True)
class QualityReport:
    """The minutes of a visit's parties whose measurements changed since the last report."""

    visit_id: int
    minutes: tuple[PartyMinute, ...]


MediaListener = Callable[[MediaChange | QualityReport], Awaitable[None]]


class MediaBackend(Protocol):
    def start(self, listener: MediaListener) -> None:
        """Start (again, after ``stop``); ``listener`` hears every party's media going up
        or down, and the rooms' quality reports, in order. Starting a started backend
        does nothing; one that can't start raises MediaError."""
        ...

    async def stop(self) -> None:
        """Close every room (what they recorded is not handed back: close them first) and stop."""
        ...

    async def open_room(
        self, visit_id: int, *, record: bool, directory: Path, minutes_from: dt.datetime
    ) -> None:
        """The visit's room, if not open yet; ``record``: each party's media is recorded
        into ``directory`` once both parties' media flows. Quality is measured in minutes
        counted from ``minutes_from`` (the visit's start); nothing before it."""
        ...

    async def publish(self, visit_id: int, party: str, offer_sdp: str) -> str:
        """The answer to a party's sendonly offer; replaces its earlier publication."""
        ...

    async def subscribe(
        self, visit_id: int, viewer: str, parties: Sequence[str]
    ) -> SubscribeOffer: ...

    async def accept_answer(self, visit_id: int, viewer: str, answer_sdp: str) -> None: ...

    async def add_ice(self, visit_id: int, connection: tuple[str, str], ice: IceCandidate) -> None:
        """A candidate for ``connection``: ("publish", party) or ("subscribe", viewer)."""
        ...

    async def unpublish(self, visit_id: int, party: str) -> None: ...

    async def unsubscribe(self, visit_id: int, viewer: str) -> None: ...

    async def close_room(self, visit_id: int) -> list[Recording]:
        """End the room's connections; its finished recordings (none if it had no room).
        The room's last quality report goes to the listener first."""
        ...

    def room_ids(self) -> list[int]:
        """The visits that have a room open here."""
        ...


class MediaError(Exception):
    """The media server could not do what was asked (a reason for a person)."""
