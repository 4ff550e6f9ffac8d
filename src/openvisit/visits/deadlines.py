"""Durable visit deadlines (DESIGN §4): stored on the visit, acted on by the worker.

A visit carries the times at which something must happen to it (its join
window opens, warnings at 5 and 1 minutes left, its end, a dropped party's
reconnect grace) and ``next_deadline_at``, the earliest one still pending for
its state. The worker picks visits whose ``next_deadline_at`` has passed; a
restart loses nothing because nothing lives in memory.

The functions here are pure: they read the visit's columns and decide.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import cast

from openvisit.facilities.models import FacilitySettings
from openvisit.visits.models import Visit, VisitState

S = VisitState

WARNINGS = ((5, "warn_5_at", "warned_5"), (1, "warn_1_at", "warned_1"))


class Action(enum.StrEnum):
    OPEN = "open"  # scheduled -> open
    WARN_5 = "warn_5"  # 5 minutes left
    WARN_1 = "warn_1"  # 1 minute left
    END = "end"  # open -> missed, live -> completed
    RECONNECT = "reconnect"  # live -> failed: a party stayed away past the grace


def schedule_deadlines(visit: Visit, settings: FacilitySettings) -> None:
    """Set a new visit's deadlines from its times and its facility's settings."""
    # None on a settings row not flushed yet, whatever the mapping says: the column default.
    window = cast(int | None, settings.join_window_minutes)
    if window is None:
        window = 10
    visit.opens_at = visit.starts_at - dt.timedelta(minutes=window)
    visit.warn_5_at = visit.ends_at - dt.timedelta(minutes=5)
    visit.warn_1_at = visit.ends_at - dt.timedelta(minutes=1)
    visit.warned_5 = False
    visit.warned_1 = False
    visit.reconnect_deadline_at = None
    visit.next_deadline_at = next_deadline(visit)


def pending(visit: Visit, state: VisitState | None = None) -> list[tuple[dt.datetime, Action]]:
    """The deadlines still to act on for ``visit`` in ``state`` (its own by default),
    earliest first."""
    state = state or visit.state
    found: list[tuple[dt.datetime, Action]] = []
    if state == S.SCHEDULED and visit.opens_at is not None:
        found.append((visit.opens_at, Action.OPEN))
    if state in (S.OPEN, S.LIVE):
        for minutes, at_column, done_column in WARNINGS:
            at = getattr(visit, at_column)
            if at is not None and not getattr(visit, done_column) and at > visit.starts_at:
                found.append((at, Action.WARN_5 if minutes == 5 else Action.WARN_1))
        found.append((visit.ends_at, Action.END))
    if state == S.LIVE and visit.reconnect_deadline_at is not None:
        found.append((visit.reconnect_deadline_at, Action.RECONNECT))
    # At equal times the end wins over a warning or a reconnect: order by (time, priority).
    priority = {Action.END: 0, Action.RECONNECT: 1, Action.OPEN: 2, Action.WARN_1: 3}
    return sorted(found, key=lambda item: (item[0], priority.get(item[1], 4)))


def next_deadline(
    visit: Visit, state: VisitState | None = None, *, done: Action | None = None
) -> dt.datetime | None:
    """The earliest pending deadline (leaving out ``done``, just acted on), or None:
    a requested visit waits for its approval, a visit that ended has nothing left to do."""
    found = [at for at, action in pending(visit, state) if action is not done]
    return found[0] if found else None


def due(visit: Visit, now: dt.datetime) -> tuple[dt.datetime, Action] | None:
    """The deadline to act on at ``now``, if any has passed: the earliest, except
    that a passed end or reconnect deadline goes before warnings it made moot."""
    passed = [item for item in pending(visit) if item[0] <= now]
    decisive = [item for item in passed if item[1] not in (Action.WARN_5, Action.WARN_1)]
    chosen = decisive or passed
    return chosen[0] if chosen else None
