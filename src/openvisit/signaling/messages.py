"""The signaling protocol of ``/ws/visits/{id}`` (DESIGN §5): every message is a
JSON object with a ``type``.

Client messages are validated against one discriminated union (strict types,
no unknown fields, bounded sizes); server messages are built by the small
functions at the bottom so that every push has the same shape.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from openvisit.errors import Code

# The largest text frame the server reads; an SDP offer fits in a few KiB.
MAX_MESSAGE_BYTES = 16 * 1024
# Counters from getStats: large enough for a day of video, small enough to store.
_COUNTER = Annotated[int, Field(ge=0, le=10**12)]
_MILLIS = Annotated[int, Field(ge=0, le=600_000)]


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Hello(_Message):
    """Sent first by a client (and again after a reconnect): answered with the
    visit's state and who else is there."""

    type: Literal["hello"]


class Stats(_Message):
    """What the browser's getStats says about what it receives."""

    type: Literal["stats"]
    frames_decoded: _COUNTER
    packets_received: _COUNTER
    packets_lost: _COUNTER
    jitter_ms: _MILLIS | None = None
    rtt_ms: _MILLIS | None = None


class Subscribe(_Message):
    """Asks for the server's offer of what this viewer receives: the other party's
    audio and video (a monitor: both parties'). Asking again replaces the last one."""

    type: Literal["subscribe"]


class Leave(_Message):
    """The party hung up: recorded as "left", then the server closes the socket."""

    type: Literal["leave"]


PeerConnection = Literal["publish", "subscribe"]


class Offer(_Message):
    """A party's sendonly offer on its publish connection (answered with ``answer``)."""

    type: Literal["offer"]
    pc: PeerConnection
    sdp: Annotated[str, Field(min_length=1, max_length=15_000)]


class Answer(_Message):
    """The browser's answer to the server's subscribe offer."""

    type: Literal["answer"]
    pc: PeerConnection
    sdp: Annotated[str, Field(min_length=1, max_length=15_000)]


class Ice(_Message):
    """A trickled ICE candidate; ``candidate`` None means end of candidates."""

    type: Literal["ice"]
    pc: PeerConnection
    candidate: Annotated[str, Field(max_length=1024)] | None = None
    sdp_mid: Annotated[str, Field(max_length=64)] | None = None
    sdp_mline_index: Annotated[int, Field(ge=0, le=64)] | None = None


# The socket's handler matches on this union exhaustively (typing.assert_never): a
# message type added here and not handled there fails the type check.
AnyClientMessage = Hello | Stats | Subscribe | Leave | Offer | Answer | Ice
MediaMessage = Offer | Answer | Ice | Subscribe
ClientMessage = Annotated[AnyClientMessage, Field(discriminator="type")]
CLIENT_MESSAGE: TypeAdapter[ClientMessage] = TypeAdapter(ClientMessage)


def _types(union: Any) -> tuple[str, ...]:
    """The ``type`` tags of a union of messages."""
    return tuple(get_args(cls.model_fields["type"].annotation)[0] for cls in get_args(union))


CLIENT_TYPES = _types(AnyClientMessage)
MEDIA_TYPES = frozenset(_types(MediaMessage))


class BadMessage(Exception):
    """A client message that can't be used: ``code`` and a reason for a person."""

    def __init__(self, code: Code, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(message)


def parse(text: str | None, data: bytes | None = None) -> ClientMessage:
    """One client frame as a message, or ``BadMessage`` saying why not."""
    if text is None:
        if data is not None and len(data) > MAX_MESSAGE_BYTES:
            raise BadMessage(Code.MESSAGE_TOO_LARGE, _too_large())
        raise BadMessage(Code.BINARY_NOT_SUPPORTED, "Messages must be JSON text, not binary.")
    if len(text) > MAX_MESSAGE_BYTES or len(text.encode("utf-8", "replace")) > MAX_MESSAGE_BYTES:
        raise BadMessage(Code.MESSAGE_TOO_LARGE, _too_large())
    try:
        raw = json.loads(text)
    except (ValueError, RecursionError):
        raise BadMessage(Code.MALFORMED_JSON, "The message is not valid JSON.") from None
    if not isinstance(raw, dict):
        raise BadMessage(Code.INVALID_MESSAGE, "A message must be a JSON object with a type.")
    kind = raw.get("type")
    if kind is None:
        raise BadMessage(Code.INVALID_MESSAGE, "The message has no type.")
    if kind not in CLIENT_TYPES:
        shown = kind[:40] if isinstance(kind, str) else type(kind).__name__
        raise BadMessage(Code.UNKNOWN_TYPE, f"Unknown message type {shown!r}.")
    try:
        return CLIENT_MESSAGE.validate_python(raw)
    except ValidationError as exc:
        raise BadMessage(Code.INVALID_MESSAGE, _reason(kind, exc)) from None


def _too_large() -> str:
    return f"The message is larger than {MAX_MESSAGE_BYTES // 1024} KiB."


def _reason(kind: str, exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False, include_input=False)[:3]:
        # The first element of loc is the union tag: show the field only.
        loc = [str(p) for p in error.get("loc", ())[1:]]
        field = ".".join(loc) or "message"
        parts.append(f"{field}: {error.get('msg', 'invalid')}")
    return f"Invalid {kind!r} message: " + "; ".join(parts)


# --- server -> client ----------------------------------------------------------------

Party = Literal["visitor", "resident", "monitor"]
PeerStatus = Literal["joined", "left", "reconnecting"]


def state(state: str, seconds_left: int) -> dict[str, Any]:
    return {"type": "state", "state": state, "seconds_left": seconds_left}


def peer(party: str, status: PeerStatus) -> dict[str, Any]:
    return {"type": "peer", "party": party, "status": status}


def warning(text: str) -> dict[str, Any]:
    return {"type": "warning", "text": text}


def ended(reason: str) -> dict[str, Any]:
    return {"type": "ended", "reason": reason}


def answer(sdp: str) -> dict[str, Any]:
    """The server's answer to a publish offer."""
    return {"type": "answer", "pc": "publish", "sdp": sdp}


def offer(sdp: str, tracks: list[dict[str, str]]) -> dict[str, Any]:
    """The server's subscribe offer; ``tracks`` says which party and kind each mid carries."""
    return {"type": "offer", "pc": "subscribe", "sdp": sdp, "tracks": tracks}


def error(code: Code, message: str) -> dict[str, Any]:
    return {"type": "error", "code": code, "message": message}
