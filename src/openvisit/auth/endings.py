"""Whose access ended in this transaction, for whoever holds live connections.

A service that ends a session, deactivates a person or moves a resident out of custody
notes it here (``note``); the note rides on the SQLAlchemy session and is handed, once the
transaction has committed, to the callback installed at app start (``listen``): the
signaling hub closes the sockets those people hold. A rollback forgets the notes, so a
refused change closes nothing. Lower layers note; only the entry point knows who listens.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from sqlalchemy import event
from sqlalchemy.orm import Session

# What ended: one session (by its row id), or everything a person or device holds.
Holder = Literal["session", "staff", "visitor", "resident", "kiosk"]
Ending = tuple[Holder, int]

_KEY = "openvisit.endings"
_ACTOR_HOLDERS: dict[str, Holder] = {"visitor": "visitor", "staff": "staff", "kiosk": "kiosk"}


def note(session: Session, holder: Holder, holder_id: int) -> None:
    """After this transaction commits, whatever ``holder`` holds live must end."""
    session.info.setdefault(_KEY, set()).add((holder, holder_id))


def note_session_ended(session: Session, actor_type: str, actor_id: int) -> None:
    """Every session of an actor (visitor | staff | kiosk) ended."""
    holder = _ACTOR_HOLDERS.get(actor_type)
    if holder is not None:
        note(session, holder, actor_id)


def listen(factory: Any, on_ended: Callable[[frozenset[Ending]], None]) -> None:
    """Call ``on_ended`` after each commit of a session made by ``factory`` (a sessionmaker)
    that noted endings; a rollback discards them."""

    def _after_commit(session: Session) -> None:
        ended = session.info.pop(_KEY, None)
        if ended:
            on_ended(frozenset(ended))

    def _after_rollback(session: Session) -> None:
        session.info.pop(_KEY, None)

    event.listen(factory, "after_commit", _after_commit)
    event.listen(factory, "after_rollback", _after_rollback)
