"""The in-process hub: which sockets are open for which visit, and pushing to them.

One dict ``visit_id -> set of connections`` per app (``hub_for``). Pushes are
made by the route AFTER the transaction that caused them committed. A push to
a socket that has gone away is dropped: its own handler cleans up.

Each connection remembers the event loop that serves it, and a push from
another loop is handed over to that loop (one loop in production; the test
client runs one loop per client).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime as dt
import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from starlette.websockets import WebSocket, WebSocketState

from openvisit.audit.service import AuditActor
from openvisit.auth.endings import Ending

log = logging.getLogger(__name__)

PARTIES = ("visitor", "resident")


@dataclass(eq=False)
class Connection:
    websocket: WebSocket
    visit_id: int
    party: str  # visitor | resident | monitor
    actor: AuditActor
    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.get_running_loop)
    # Set when the party said "leave", or another socket of the same party took
    # over: then closing this one records nothing more.
    done: bool = False
    last_stats_at: dt.datetime | None = None
    # The visit is recorded (not privileged): its media room records.
    record: bool = False
    # What this socket rests on: the session that opened it and whose it is, e.g.
    # {("session", 12), ("visitor", 3)}; when one of them ends, the socket closes.
    holders: frozenset[Ending] = frozenset()
    # The visit's start: minute 0 of its room's quality measurements.
    starts_at: dt.datetime | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def is_party(self) -> bool:
        return self.party in PARTIES

    async def send(self, message: dict[str, Any]) -> bool:
        """Send on this connection's own loop; False if the socket is gone."""
        if asyncio.get_running_loop() is not self.loop:
            future = asyncio.run_coroutine_threadsafe(self._send(message), self.loop)
            try:
                return await asyncio.wrap_future(future)
            except Exception:  # the other loop is shutting down
                return False
        return await self._send(message)

    async def _send(self, message: dict[str, Any]) -> bool:
        async with self._lock:
            if self.websocket.application_state != WebSocketState.CONNECTED:
                return False
            try:
                await self.websocket.send_json(message)
            except Exception:  # closed meanwhile: its handler cleans up
                return False
            return True

    async def close(self, code: int) -> None:
        if asyncio.get_running_loop() is not self.loop:
            future = asyncio.run_coroutine_threadsafe(self._close(code), self.loop)
            # The other loop is shutting down: its socket is going anyway.
            with contextlib.suppress(Exception):
                await asyncio.wrap_future(future)
            return
        await self._close(code)

    async def end(self, message: dict[str, Any], code: int) -> None:
        """Say why, then close: on this connection's own loop."""
        await self._send(message)
        await self._close(code)

    async def _close(self, code: int) -> None:
        async with self._lock:
            if self.websocket.application_state == WebSocketState.CONNECTED:
                with contextlib.suppress(Exception):  # already closed by the client
                    await self.websocket.close(code)


class Hub:
    def __init__(self) -> None:
        self._rooms: dict[int, set[Connection]] = {}
        # Sockets are added and removed on their loops, and closed from the thread whose
        # transaction ended their session (close_held).
        self._lock = threading.Lock()
        self._closing: set[concurrent.futures.Future[None]] = set()

    def add(self, conn: Connection) -> list[Connection]:
        """Register ``conn``; returns the sockets of the same party it replaces."""
        with self._lock:
            room = self._rooms.setdefault(conn.visit_id, set())
            replaced = [
                other
                for other in room
                if conn.is_party and other.party == conn.party and not other.done
            ]
            for other in replaced:
                other.done = True
                room.discard(other)
            room.add(conn)
        return replaced

    def remove(self, conn: Connection) -> None:
        with self._lock:
            room = self._rooms.get(conn.visit_id)
            if room is None:
                return
            room.discard(conn)
            if not room:
                del self._rooms[conn.visit_id]

    def connections(self, visit_id: int) -> list[Connection]:
        with self._lock:
            return list(self._rooms.get(visit_id, ()))

    def held_by(self, ended: frozenset[Ending]) -> list[Connection]:
        """The open sockets that rest on any of ``ended``."""
        with self._lock:
            return [conn for room in self._rooms.values() for conn in room if conn.holders & ended]

    def close_held(self, ended: frozenset[Ending], message: dict[str, Any], code: int) -> int:
        """Tell every socket resting on something in ``ended`` why, and close it; how many.

        Called from any thread, once the transaction that ended them committed (see
        auth.endings): each socket is closed on its own loop, without waiting here.
        """
        held = self.held_by(ended)
        for conn in held:
            conn_end = conn.end(message, code)
            try:
                future = asyncio.run_coroutine_threadsafe(conn_end, conn.loop)
            except RuntimeError:  # its loop has stopped: the socket went with it
                conn_end.close()
                continue
            self._closing.add(future)
            future.add_done_callback(self._closing.discard)
        return len(held)

    def visit_ids(self) -> list[int]:
        return list(self._rooms)

    def parties_present(self, visit_id: int) -> list[str]:
        return sorted({c.party for c in self.connections(visit_id) if c.is_party and not c.done})

    async def push(
        self,
        visit_id: int,
        message: dict[str, Any],
        *,
        exclude: Connection | None = None,
        parties_only: bool = False,
        parties_except: str | None = None,
    ) -> None:
        """Send ``message`` to the visit's sockets; ``parties_except`` leaves out that
        party's own sockets."""
        for conn in self.connections(visit_id):
            if conn is exclude or (parties_only and not conn.is_party):
                continue
            if parties_except is not None and conn.party == parties_except:
                continue
            await conn.send(message)


_MAKING = threading.Lock()


def hub_for(app: Any) -> Hub:
    """The app's hub, made on first use (once, even when two sockets race)."""
    hub = getattr(app.state, "signaling_hub", None)
    if hub is None:
        with _MAKING:
            hub = getattr(app.state, "signaling_hub", None)
            if hub is None:
                hub = Hub()
                app.state.signaling_hub = hub
    return hub
