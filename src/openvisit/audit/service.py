"""The audit log: append-only and hash-chained.

``record`` is called by services inside their own transaction, so an action
and its audit row commit or roll back together.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import Session

from openvisit.audit.models import AuditEvent

GENESIS = "0" * 64
# Any fixed number: the key of the PostgreSQL advisory lock that orders appends.
_CHAIN_LOCK_KEY = 0x0A0D17


@dataclass(frozen=True)
class AuditActor:
    type: str  # visitor | staff | kiosk | resident | system | anonymous
    id: int | None
    label: str
    ip: str | None = None


SYSTEM = AuditActor("system", None, "system")


def _digest(prev_hash: str, event: AuditEvent) -> str:
    body = {
        "id": event.id,
        "at": event.at.astimezone(dt.UTC).isoformat(),
        "tag": event.tag,
        "actor": [event.actor_type, event.actor_id, event.actor_label],
        "facility_id": event.facility_id,
        "subject": [event.subject_type, event.subject_id],
        "ip": event.ip,
        "data": event.data,
    }
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256((prev_hash + canonical).encode()).hexdigest()


_LOCK = text("SELECT pg_advisory_xact_lock(:k)")
_LAST = select(AuditEvent.id, AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1)
_INSERT = insert(AuditEvent)


def record(
    session: Session,
    *,
    tag: str,
    actor: AuditActor,
    at: dt.datetime,
    facility_id: int | None = None,
    subject: tuple[str, int | None] | None = None,
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event. Expects to run inside the caller's transaction."""
    session.flush()  # the subject's own changes go first, as the ORM would order them
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        conn.execute(_LOCK, {"k": _CHAIN_LOCK_KEY})
    last = conn.execute(_LAST).first()
    prev_hash = last.hash if last else GENESIS
    event = AuditEvent(
        id=(last.id + 1) if last else 1,
        at=at,
        tag=tag,
        actor_type=actor.type,
        actor_id=actor.id,
        actor_label=actor.label[:200],
        facility_id=facility_id,
        subject_type=subject[0] if subject else None,
        subject_id=subject[1] if subject else None,
        ip=actor.ip,
        data=json.loads(json.dumps(data or {}, default=str)),
        prev_hash=prev_hash,
        hash="",
    )
    event.hash = _digest(prev_hash, event)
    # A plain INSERT: the row is never changed afterwards, so the unit of work
    # (a measurable cost on the booking path) has nothing to track.
    conn.execute(_INSERT, {c.key: getattr(event, c.key) for c in AuditEvent.__table__.columns})
    return event


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    checked: int
    head: str
    problems: list[str]


def verify_chain(session: Session, batch: int = 5000) -> ChainReport:
    """Walk the chain in order; report every row whose link or hash is wrong."""
    problems: list[str] = []
    prev_hash, expected_id, checked = GENESIS, 1, 0
    for event in _iter_events(session, batch):
        if event.id != expected_id:
            problems.append(f"events {expected_id}..{event.id - 1} are missing")
        if event.prev_hash != prev_hash:
            problems.append(f"event {event.id}: does not follow the event before it")
        if _digest(event.prev_hash, event) != event.hash:
            problems.append(f"event {event.id}: content was changed after it was written")
        prev_hash, expected_id, checked = event.hash, event.id + 1, checked + 1
    return ChainReport(ok=not problems, checked=checked, head=prev_hash, problems=problems)


def _iter_events(session: Session, batch: int) -> Iterator[AuditEvent]:
    after = 0
    while True:
        rows = session.scalars(
            select(AuditEvent).where(AuditEvent.id > after).order_by(AuditEvent.id).limit(batch)
        ).all()
        if not rows:
            return
        yield from rows
        after = rows[-1].id
        session.expunge_all()


def list_events(
    session: Session,
    *,
    facility_ids: list[int] | None,
    limit: int = 50,
    before_id: int | None = None,
    tag_prefix: str | None = None,
) -> list[AuditEvent]:
    """Newest first; ``facility_ids=None`` means every facility (provider admins)."""
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if facility_ids is not None:
        query = query.where(AuditEvent.facility_id.in_(facility_ids))
    if before_id:
        query = query.where(AuditEvent.id < before_id)
    if tag_prefix:
        query = query.where(AuditEvent.tag.startswith(tag_prefix))
    return list(session.scalars(query))


def count_events(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(AuditEvent)) or 0
