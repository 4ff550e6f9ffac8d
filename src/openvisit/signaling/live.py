"""Live visits in this process: the media backend, what it reports, and the watcher.

* The app's media backend (``app.state.media``, a ``MediaBackend`` chosen once
  in create_app) is started by the app's lifespan (``start_media``) with
  ``on_media_change`` as its listener: a party's media going up or down is
  stored as a visit event (which moves the visit live, or starts the reconnect
  grace) and the sockets of the visit are told; the backend's quality reports
  (what it measured of each party, minute by minute) are stored as they come,
  for fair-quality credits (``on_quality``).
* ``watch(app)``: runs beside the worker in `openvisit serve`. Twice a second it
  looks at the visits that have sockets or a media room here: it acts on their
  deadlines as soon as they pass (the worker's own loop is the durable one; this
  only makes them fire sooner), pushes new state and warnings, and ends the
  media of visits that ended: sockets told and closed, recordings finalized.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy.orm import Session

from openvisit.auth import endings
from openvisit.auth.endings import Ending
from openvisit.clock import Clock
from openvisit.db import transaction
from openvisit.errors import Code
from openvisit.media.backend import MediaBackend, MediaChange, QualityReport
from openvisit.media.recorder import finish_interrupted, sha256_of
from openvisit.signaling import messages as m
from openvisit.signaling import service
from openvisit.signaling.hub import Hub, hub_for
from openvisit.visits.models import VisitState

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

WATCH_SECONDS = 0.5
CLOSE_NORMAL = 1000
# The socket's session ended (signed out, deactivated, password reset, out of custody).
CLOSE_SIGNED_OUT = 4401


async def run(
    app: Any,
    fn: Callable[Concatenate[Session, Clock, P], T],
    *args: P.args,
    **kwargs: P.kwargs,
) -> T:
    """``fn(session, clock, *args)`` in its own transaction (db.transaction: committed,
    or rolled back on error), in a worker thread: no session is open while waiting
    on a socket, and nothing is pushed before the commit."""
    sessionmaker, clock = app.state.sessionmaker, app.state.clock

    def _call() -> T:
        with transaction(sessionmaker) as session:
            return fn(session, clock, *args, **kwargs)

    return await asyncio.to_thread(_call)


def close_sockets_when_access_ends(app: Any) -> None:
    """Installed once by create_app: whenever a transaction of the app's sessionmaker that
    ended a session, a person's access or a resident's custody commits (auth.endings),
    the sockets resting on it are told and closed at once."""
    hub = hub_for(app)
    message = m.error(Code.SIGN_IN_EXPIRED, "You've been signed out. Sign in again to rejoin.")

    def _on_ended(ended: frozenset[Ending]) -> None:
        try:
            hub.close_held(ended, message, CLOSE_SIGNED_OUT)
        except Exception:  # the change is committed; a socket left open must not undo it
            log.exception("could not close the sockets of %s", sorted(ended))

    endings.listen(app.state.sessionmaker, _on_ended)


def media_of(app: Any) -> MediaBackend:
    backend: MediaBackend = app.state.media
    return backend


def recover_recordings(app: Any) -> int:
    """Finish and store the recordings a crash left without a row; how many.

    Run at start-up, before any room opens: every segment file then is either stored
    or orphaned (``media.recorder.finish_interrupted`` says what is done to it)."""
    root: Path = app.state.settings.recordings_dir
    if not root.is_dir():
        return 0
    sessionmaker, clock = app.state.sessionmaker, app.state.clock
    with transaction(sessionmaker) as session:
        known = service.recording_paths(session, clock)
    stored = 0
    for path in sorted(root.rglob("visit-*.webm")):
        relative = path.relative_to(root).as_posix()
        if relative in known:
            continue
        found = finish_interrupted(path)
        if found is None:
            continue
        digest, size = sha256_of(path)
        with transaction(sessionmaker) as session:
            if service.store_recovered(session, clock, found, digest, size, relative):
                stored += 1
                log.warning("recording %s recovered after an interruption", relative)
    return stored


def start_media(app: Any) -> None:
    """Start the app's media backend, with this module as its listener, once the
    recordings an interruption left behind are stored."""
    try:
        recover_recordings(app)
    except Exception:  # the server starts anyway: the files stay for the next start
        log.exception("could not recover the interrupted recordings")

    async def _listener(change: MediaChange | QualityReport) -> None:
        if isinstance(change, QualityReport):
            await on_quality(app, change)
        else:
            await on_media_change(app, change)

    media_of(app).start(_listener)


async def stop_media(app: Any) -> None:
    """Finish every room (recordings stored), then stop the backend."""
    backend = media_of(app)
    for visit_id in backend.room_ids():
        with contextlib.suppress(Exception):
            await finish_media(app, visit_id)
    await backend.stop()


async def on_quality(app: Any, report: QualityReport) -> None:
    """Store what the media server measured (nobody is told: it matters at settlement)."""
    await run(app, service.record_quality, report.visit_id, report.minutes)


async def on_media_change(app: Any, change: MediaChange) -> None:
    """A party's media went up or down: store it, and tell the visit's sockets."""
    hub = hub_for(app)
    snap = await run(
        app, service.media_changed, change.visit_id, change.party, change.up, change.at
    )
    if snap.ended:
        await end_sockets(hub, change.visit_id, snap.ended_reason or "")
        await finish_media(app, change.visit_id)
        return
    await hub.push(change.visit_id, m.state(snap.state, snap.seconds_left))
    if change.up:
        await hub.push(change.visit_id, m.peer(change.party, "joined"), parties_except=change.party)
    elif snap.state == VisitState.LIVE and change.party in hub.parties_present(change.visit_id):
        await hub.push(
            change.visit_id, m.peer(change.party, "reconnecting"), parties_except=change.party
        )


async def end_sockets(hub: Hub, visit_id: int, reason: str) -> None:
    """The visit has ended: tell every socket of it why, and close them."""
    for conn in hub.connections(visit_id):
        conn.done = True
        await conn.send(m.ended(reason))
        await conn.close(CLOSE_NORMAL)


async def finish_media(app: Any, visit_id: int) -> int:
    """Close the visit's media room and store its recordings; how many were stored."""
    recordings = await media_of(app).close_room(visit_id)
    if not recordings:
        return 0
    root = app.state.settings.recordings_dir
    stored = []
    for recording in recordings:
        digest, size = await asyncio.to_thread(sha256_of, recording.path)
        stored.append((recording, digest, size, recording.path.relative_to(root).as_posix()))
    await run(app, service.store_recordings, visit_id, stored)
    return len(stored)


async def watch(app: Any) -> None:
    """Push what changed on this node's live visits; end the media of those that ended."""
    hub = hub_for(app)
    seen_state: dict[int, VisitState] = {}
    last_warning = await run(app, service.last_warning_id)
    while True:
        await asyncio.sleep(WATCH_SECONDS)
        try:
            last_warning = await _watch_once(app, hub, seen_state, last_warning)
        except Exception:
            log.exception("the live-visit watcher failed; trying again")


async def _watch_once(
    app: Any, hub: Hub, seen_state: dict[int, VisitState], last_warning: int
) -> int:
    ids = set(hub.visit_ids()) | set(media_of(app).room_ids())
    for gone in set(seen_state) - ids:
        del seen_state[gone]
    if not ids:
        return last_warning
    snaps, warnings, last_warning = await run(app, service.watch_visits, sorted(ids), last_warning)
    for visit_id, text in warnings:
        await hub.push(visit_id, m.warning(text), parties_only=True)
    for visit_id, snap in snaps.items():
        if snap.ended:
            await end_sockets(hub, visit_id, snap.ended_reason or "")
            await finish_media(app, visit_id)
            seen_state.pop(visit_id, None)
        elif seen_state.get(visit_id) != snap.state:
            seen_state[visit_id] = snap.state
            await hub.push(visit_id, m.state(snap.state, snap.seconds_left))
    return last_warning
