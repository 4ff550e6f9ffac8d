"""Metering (DESIGN §4): billable time is when BOTH parties had media flowing.

Pure functions over a visit's events, plus ``meter_visit`` which stores the
result when a visit ends (completed, terminated or failed). Disconnected time
is never billed, and nothing outside the visit's scheduled time is.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from openvisit.visits.models import Visit, VisitEvent, VisitMeter

PARTIES = ("visitor", "resident")
UP_KINDS = frozenset({"media_up"})
# A party that left has no media flowing, whatever the backend said last.
DOWN_KINDS = frozenset({"media_down", "left"})

Interval = tuple[dt.datetime, dt.datetime]


class EventLike(Protocol):
    at: dt.datetime
    kind: str
    party: str


def _media_changes(events: Iterable[EventLike]) -> list[tuple[dt.datetime, str, bool]]:
    """(at, party, up) for the events that start or stop a party's media, in time order.

    ``sorted`` is stable, so events at the same instant keep the order they were recorded in.
    """
    changes = [
        (e.at, e.party, e.kind in UP_KINDS)
        for e in events
        if e.party in PARTIES and (e.kind in UP_KINDS or e.kind in DOWN_KINDS)
    ]
    return sorted(changes, key=lambda change: change[0])


def media_up(events: Iterable[EventLike]) -> dict[str, bool]:
    """Whether each party's media is flowing after all of ``events``."""
    up = dict.fromkeys(PARTIES, False)
    for _at, party, is_up in _media_changes(events):
        up[party] = is_up
    return up


def both_up_intervals(
    events: Iterable[EventLike], start: dt.datetime, end: dt.datetime
) -> list[Interval]:
    """The intervals when both parties' media flowed, clipped to [start, end], merged."""
    up = dict.fromkeys(PARTIES, False)
    raw: list[Interval] = []
    since: dt.datetime | None = None
    for at, party, is_up in _media_changes(events):
        before = all(up.values())
        up[party] = is_up
        after = all(up.values())
        if after and not before:
            since = at
        elif before and not after and since is not None:
            raw.append((since, at))
            since = None
    if since is not None:  # still flowing when the visit ended
        raw.append((since, end))
    merged: list[Interval] = []
    for lo, hi in raw:
        lo, hi = max(lo, start), min(hi, end)
        if hi <= lo:
            continue
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
        else:
            merged.append((lo, hi))
    return merged


def billable_seconds(intervals: Iterable[Interval]) -> int:
    """Whole seconds of the intervals together; a part second is not billed."""
    total = sum((hi - lo for lo, hi in intervals), dt.timedelta())
    return total // dt.timedelta(seconds=1)


def meter_visit(session: Session, visit: Visit, at: dt.datetime) -> VisitMeter:
    """Store the visit's billable seconds and intervals; ``at`` is when it ended
    (its scheduled end at the latest). Running it again replaces the result."""
    events = session.scalars(
        select(VisitEvent)
        .where(VisitEvent.visit_id == visit.id)
        .order_by(VisitEvent.at, VisitEvent.id)
    ).all()
    intervals = both_up_intervals(events, visit.starts_at, min(visit.ends_at, at))
    meter = session.get(VisitMeter, visit.id)
    if meter is None:
        meter = VisitMeter(visit_id=visit.id)
        session.add(meter)
    meter.billable_seconds = billable_seconds(intervals)
    meter.intervals = [[lo.isoformat(), hi.isoformat()] for lo, hi in intervals]
    meter.metered_at = at
    session.flush()
    return meter
