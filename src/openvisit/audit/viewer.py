"""The audit log as staff read it: a facility's events, newest first, and the chain's health."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from openvisit.audit import service
from openvisit.audit.models import AuditEvent

PAGE_SIZE = 50


@dataclass(frozen=True)
class EventPage:
    events: list[AuditEvent]
    older_before_id: int | None  # pass as before_id for the next (older) page
    tag: str


@dataclass(frozen=True)
class ChainStatus:
    ok: bool
    checked: int
    problems: int


def facility_events(
    session: Session, facility_id: int, *, before_id: int | None = None, tag: str = ""
) -> EventPage:
    """One page of a facility's events, newest first, optionally only tags starting ``tag``."""
    tag = tag.strip()
    events = service.list_events(
        session,
        facility_ids=[facility_id],
        limit=PAGE_SIZE + 1,
        before_id=before_id,
        tag_prefix=tag or None,
    )
    older = events[PAGE_SIZE - 1].id if len(events) > PAGE_SIZE else None
    return EventPage(events[:PAGE_SIZE], older, tag)


def chain_status(session: Session) -> ChainStatus:
    """Whether the whole (all facilities) chain is intact; counts only, no other facility's data.

    Verification detaches what the session holds, so pending changes are flushed first.
    """
    session.flush()
    report = service.verify_chain(session)
    return ChainStatus(report.ok, report.checked, len(report.problems))
