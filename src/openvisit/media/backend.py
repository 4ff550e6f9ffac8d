"""The one interface the visit plane uses to reach media (DESIGN §5).

``embedded`` (aiortc, in this process) is the only backend so far; a Janus
backend would implement the same methods. The app chooses one at start-up
(``app.state.media``, create_app) and signaling speaks only to this protocol.
Parties are "visitor" and "resident"; a viewer is a party or "monitor:<n>" for
an officer watching. The coroutines may be awaited from any event loop.
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


MediaListener = Callable[[MediaChange], Awaitable[None]]


class MediaBackend(Protocol):
    def start(self, listener: MediaListener) -> None:
        """Start (again, after ``stop``); ``listener`` hears every party's media going up
        or down, in order. Starting a started backend does nothing; one that can't
        start raises MediaError."""
        ...

    async def stop(self) -> None:
        """Close every room (what they recorded is not handed back: close them first) and stop."""
        ...

    async def open_room(self, visit_id: int, *, record: bool, directory: Path) -> None:
        """The visit's room, if not open yet; ``record``: each party's media is recorded
        into ``directory`` once both parties' media flows."""
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
        """End the room's connections; its finished recordings (none if it had no room)."""
        ...

    def room_ids(self) -> list[int]:
        """The visits that have a room open here."""
        ...


class MediaError(Exception):
    """The media server could not do what was asked (a reason for a person)."""
