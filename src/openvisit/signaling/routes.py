"""``/ws/visits/{visit_id}``: the signaling socket of a visit (DESIGN §5).

Thin: authenticate at connect (the socket's cookies, through the people
context), then read one message at a time, validate it (messages.parse), call
one service function in its own short transaction (live.run: in a worker
thread; no session is open while waiting on the socket), and push what changed
through the hub once that transaction committed.

A plain Starlette WebSocket route: the app-wide HTTP dependencies (CSRF,
declared access) don't apply; this socket checks its Origin itself.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Mapping
from typing import assert_never

import anyio
from fastapi import APIRouter
from sqlalchemy.orm import Session
from starlette.websockets import WebSocket, WebSocketState

from openvisit import bounds
from openvisit.auth.cookies import KIOSK_COOKIE, SESSION_COOKIE
from openvisit.auth.endings import Ending
from openvisit.clock import Clock
from openvisit.deps import client_ip
from openvisit.errors import Code, Conflict, DomainError, NotFound
from openvisit.media.backend import PARTIES, IceCandidate, MediaError
from openvisit.people.context import (
    KioskContext,
    StaffContext,
    VisitorContext,
    kiosk_signed_in,
    staff_signed_in,
    visitor_signed_in,
)
from openvisit.signaling import live, service
from openvisit.signaling import messages as m
from openvisit.signaling.hub import Connection, Hub, hub_for
from openvisit.visits.states import JOINABLE_STATES

log = logging.getLogger(__name__)

router = APIRouter()

# Bad messages in a row that are answered with an error; one more closes the socket.
MAX_BAD_IN_A_ROW = 20
# Stats are stored at most this often per socket; more frequent reports are ignored.
STATS_EVERY_SECONDS = 2
CLOSE_NORMAL = 1000
CLOSE_INTERNAL = 1011
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
CLOSE_TOO_MANY_ERRORS = 4400
CLOSE_REPLACED = 4409
CLOSE_CONFLICT = 4409


def _close_code(exc: DomainError) -> int:
    """The WebSocket close code for a refusal at connect."""
    if isinstance(exc, NotFound):
        return CLOSE_NOT_FOUND
    if isinstance(exc, Conflict):
        return CLOSE_CONFLICT
    return CLOSE_FORBIDDEN


def _join(
    session: Session, clock: Clock, cookies: Mapping[str, str], ip: str, visit_id: int
) -> tuple[service.Participant, service.Snapshot, frozenset[Ending]]:
    """Who the socket's cookies say is calling, then what they are on the visit, and what
    the socket rests on: the session that opened it and whose it is (``holders``)."""
    now = clock.now()
    visitor = visitor_signed_in(session, cookies.get(SESSION_COOKIE), now, ip)
    kiosk = kiosk_signed_in(session, cookies.get(KIOSK_COOKIE), now, ip)
    # One session cookie: a visitor's, or else perhaps a staff member's.
    staff = (
        None
        if visitor is not None
        else staff_signed_in(session, cookies.get(SESSION_COOKIE), now, ip)
    )
    participant, snap = service.connect(
        session, clock, visit_id, service.Caller(visitor, kiosk, staff)
    )
    return participant, snap, _holders(participant, visitor, kiosk, staff)


def _holders(
    participant: service.Participant,
    visitor: VisitorContext | None,
    kiosk: KioskContext | None,
    staff: StaffContext | None,
) -> frozenset[Ending]:
    """The session a participant's socket rests on, and whose it is: when either ends
    (signed out, deactivated, password reset, released from custody), the socket closes."""
    if participant.party == "visitor" and visitor is not None:
        return frozenset({("session", visitor.session.id), ("visitor", visitor.visitor.id)})
    if participant.party == "resident" and kiosk is not None and kiosk.resident_id is not None:
        return frozenset(
            {
                ("session", kiosk.session.id),
                ("kiosk", kiosk.kiosk_id),
                ("resident", kiosk.resident_id),
            }
        )
    if staff is not None:
        return frozenset({("session", staff.session.id), ("staff", staff.member.id)})
    return frozenset()


async def _refuse(websocket: WebSocket, code: Code, message: str, close: int) -> None:
    await websocket.send_json(m.error(code, message))
    await websocket.close(close)


async def visit_socket(websocket: WebSocket) -> None:
    await websocket.accept()
    app = websocket.app
    visit_id = bounds.parse_id(websocket.path_params.get("visit_id", ""))
    if visit_id is None:
        await _refuse(
            websocket, Code.VISIT_NOT_FOUND, "We couldn't find that visit.", CLOSE_NOT_FOUND
        )
        return
    if not service.origin_allowed(app.state.settings, websocket.headers.get("origin")):
        message = "This page may not connect to OpenVisit from here."
        await _refuse(websocket, Code.BAD_ORIGIN, message, CLOSE_FORBIDDEN)
        return
    ip = client_ip(websocket)
    try:
        participant, snap, holders = await live.run(app, _join, websocket.cookies, ip, visit_id)
    except DomainError as exc:
        await _refuse(websocket, exc.code, exc.message, _close_code(exc))
        return
    if snap.ended:
        await websocket.send_json(m.ended(snap.ended_reason or ""))
        await websocket.close(CLOSE_NORMAL)
        return
    hub = hub_for(app)
    conn = Connection(websocket, participant.visit_id, participant.party, participant.actor)
    conn.record = snap.record
    conn.holders = holders
    conn.starts_at = snap.starts_at
    for old in hub.add(conn):
        await old.send(m.error(Code.REPLACED, "This visit was opened in another window."))
        await old.close(CLOSE_REPLACED)
    try:
        await _greet(hub, conn, snap)
        if conn.is_party:
            await hub.push(conn.visit_id, m.peer(conn.party, "joined"), exclude=conn)
        await _serve(hub, conn, participant)
    except Exception:
        log.exception("signaling socket of visit %s failed", conn.visit_id)
        await conn.send(m.error(Code.INTERNAL_ERROR, "Sorry, there is a problem with the service."))
        await conn.close(CLOSE_INTERNAL)
    finally:
        hub.remove(conn)
        with anyio.CancelScope(shield=True):
            if not conn.done or not conn.is_party:
                await _stop_media(conn)
            if conn.is_party and not conn.done:
                await _disconnected(hub, conn, participant)


async def _greet(hub: Hub, conn: Connection, snap: service.Snapshot) -> None:
    """The visit's state and who else is there (parties only: monitors are silent)."""
    await conn.send(m.state(snap.state, snap.seconds_left))
    for party in hub.parties_present(conn.visit_id):
        if party != conn.party:
            await conn.send(m.peer(party, "joined"))


async def _serve(hub: Hub, conn: Connection, participant: service.Participant) -> None:
    websocket = conn.websocket
    bad = 0
    while websocket.application_state == WebSocketState.CONNECTED:
        frame = await websocket.receive()
        if frame["type"] == "websocket.disconnect":
            return
        try:
            message = m.parse(frame.get("text"), frame.get("bytes"))
        except m.BadMessage as exc:
            bad += 1
            if bad > MAX_BAD_IN_A_ROW:
                await conn.send(
                    m.error(Code.TOO_MANY_ERRORS, f"{bad} bad messages in a row: closing.")
                )
                await conn.close(CLOSE_TOO_MANY_ERRORS)
                return
            await conn.send(m.error(exc.code, exc.message))
            continue
        bad = 0
        try:
            if not await _handle(hub, conn, participant, message):
                return
        except DomainError as exc:
            await conn.send(m.error(exc.code, exc.message))


async def _handle(
    hub: Hub, conn: Connection, participant: service.Participant, message: m.AnyClientMessage
) -> bool:
    """Act on one valid message; False when the socket is done."""
    app = conn.websocket.app
    match message:
        case m.Hello():
            snap = await live.run(app, service.current, conn.visit_id)
            if snap.ended:
                return await _end_all(hub, conn.visit_id, snap)
            await _greet(hub, conn, snap)
            return True
        case m.Offer() | m.Answer() | m.Ice() | m.Subscribe():
            try:
                await _media(conn, message)
            except MediaError as exc:
                await conn.send(m.error(Code.MEDIA_FAILED, str(exc)))
            return True
        case m.Stats():
            return await _stats(hub, conn, participant, message)
        case m.Leave():
            return await _leave(hub, conn, participant)
        case _:
            assert_never(message)


async def _stats(
    hub: Hub, conn: Connection, participant: service.Participant, message: m.Stats
) -> bool:
    """Store the browser's own report, at most every STATS_EVERY_SECONDS per socket."""
    app = conn.websocket.app
    now: dt.datetime = app.state.clock.now()
    last = conn.last_stats_at
    if last is not None and (now - last).total_seconds() < STATS_EVERY_SECONDS:
        return True
    conn.last_stats_at = now
    data = message.model_dump(exclude={"type"}, exclude_none=True)
    snap = await live.run(app, service.record_stats, participant, data)
    return True if not snap.ended else await _end_all(hub, conn.visit_id, snap)


async def _leave(hub: Hub, conn: Connection, participant: service.Participant) -> bool:
    """A party hung up: recorded as "left" (a live visit is then complete); a monitor
    just goes. The socket is closed either way."""
    if conn.is_party:
        conn.done = True
        await _stop_media(conn)
        snap = await live.run(conn.websocket.app, service.record_left, participant, "leave")
        if snap.ended:
            return await _end_all(hub, conn.visit_id, snap)
        await hub.push(conn.visit_id, m.peer(conn.party, "left"), exclude=conn)
        await hub.push(conn.visit_id, m.state(snap.state, snap.seconds_left), exclude=conn)
    await conn.close(CLOSE_NORMAL)
    return False


def _viewer(conn: Connection) -> str:
    return conn.party if conn.is_party else f"monitor:{id(conn)}"


async def _media(conn: Connection, message: m.MediaMessage) -> None:
    """Publish, subscribe and trickle ICE through the media backend (DESIGN §5)."""
    if isinstance(message, m.Offer) and message.pc != "publish":
        raise MediaError("The server makes the offer on the subscribe connection.")
    if isinstance(message, m.Answer) and message.pc != "subscribe":
        raise MediaError("The server answers on the publish connection.")
    if isinstance(message, m.Offer | m.Ice) and message.pc == "publish" and not conn.is_party:
        raise MediaError("Monitors watch and listen: they don't send media.")
    app = conn.websocket.app
    backend = live.media_of(app)
    visit_id = conn.visit_id
    await backend.open_room(
        visit_id,
        record=conn.record,
        directory=app.state.settings.recordings_dir,
        minutes_from=conn.starts_at or app.state.clock.now(),
    )
    match message:
        case m.Subscribe():
            parties = [p for p in PARTIES if p != conn.party]
            offer = await backend.subscribe(visit_id, _viewer(conn), parties)
            await conn.send(m.offer(offer.sdp, offer.tracks))
        case m.Offer():
            await conn.send(m.answer(await backend.publish(visit_id, conn.party, message.sdp)))
        case m.Answer():
            await backend.accept_answer(visit_id, _viewer(conn), message.sdp)
        case m.Ice():
            who = _viewer(conn) if message.pc == "subscribe" else conn.party
            ice = IceCandidate(message.candidate, message.sdp_mid, message.sdp_mline_index)
            await backend.add_ice(visit_id, (message.pc, who), ice)
        case _:
            assert_never(message)


async def _stop_media(conn: Connection) -> None:
    """This socket's connections end with it (a replaced socket's belong to its successor)."""
    backend = live.media_of(conn.websocket.app)
    with contextlib.suppress(Exception):
        if conn.is_party:
            await backend.unpublish(conn.visit_id, conn.party)
        await backend.unsubscribe(conn.visit_id, _viewer(conn))


async def _disconnected(hub: Hub, conn: Connection, participant: service.Participant) -> None:
    """The party's socket closed without a "leave": it may come back within the grace."""
    try:
        snap = await live.run(conn.websocket.app, service.record_left, participant, "disconnect")
    except Exception:
        log.exception("could not record that a party left visit %s", conn.visit_id)
        return
    if snap.ended:
        await _end_all(hub, conn.visit_id, snap)
        return
    status: m.PeerStatus = "reconnecting" if snap.state in JOINABLE_STATES else "left"
    await hub.push(conn.visit_id, m.peer(conn.party, status))
    await hub.push(conn.visit_id, m.state(snap.state, snap.seconds_left))


async def _end_all(hub: Hub, visit_id: int, snap: service.Snapshot) -> bool:
    """The visit has ended: tell every socket of it why, close them, end its media."""
    await live.end_sockets(hub, visit_id, snap.ended_reason or "")
    return False


router.add_websocket_route("/ws/visits/{visit_id}", visit_socket, name="visit_socket")
