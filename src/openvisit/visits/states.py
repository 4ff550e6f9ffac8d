"""The visit state machine of DESIGN §4: one table, the groups of states the rest
of the code asks about, the causes of transitions, and one function that moves a visit."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any, cast

from sqlalchemy import CursorResult, Update, insert, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from openvisit.audit.service import AuditActor
from openvisit.errors import Code, Conflict
from openvisit.visits.deadlines import next_deadline
from openvisit.visits.metering import meter_visit
from openvisit.visits.models import Visit, VisitState, VisitTransition

S = VisitState

TRANSITIONS: dict[VisitState | None, frozenset[VisitState]] = {
    None: frozenset({S.REQUESTED, S.SCHEDULED}),
    S.REQUESTED: frozenset({S.SCHEDULED, S.DENIED, S.CANCELLED}),
    S.SCHEDULED: frozenset({S.OPEN, S.CANCELLED}),
    # A lockdown or a release can still cancel a visit whose join window opened.
    S.OPEN: frozenset({S.LIVE, S.MISSED, S.FAILED, S.CANCELLED}),
    S.LIVE: frozenset({S.COMPLETED, S.TERMINATED, S.FAILED}),
    S.COMPLETED: frozenset(),
    S.MISSED: frozenset(),
    S.TERMINATED: frozenset(),
    S.FAILED: frozenset(),
    S.DENIED: frozenset(),
    S.CANCELLED: frozenset(),
}

# A visit in these states holds its kiosk, its resident's and its visitor's time, and
# (a paid one) the hold on the visitor's wallet: booking checks overlap against them.
ACTIVE_STATES = (S.REQUESTED, S.SCHEDULED, S.OPEN, S.LIVE)
# Its join window is open or it is live: the parties may join, officers may watch.
JOINABLE_STATES = (S.OPEN, S.LIVE)
# Nothing follows these: every deadline is cancelled.
TERMINAL_STATES = frozenset(state for state, after in TRANSITIONS.items() if state and not after)
# The ends of a visit that went live: its media time is metered (visits.metering).
METERED_STATES = frozenset({S.COMPLETED, S.TERMINATED, S.FAILED})


class Cause(enum.StrEnum):
    """What caused a transition, stored with it (``VisitTransition.cause``): the
    who/why that later work (cancellation rules, refunds, reports) reads."""

    VISITOR = "visitor"  # the visitor booked, cancelled or hung up
    RESIDENT = "resident"  # the resident hung up
    STAFF = "staff"  # staff booked, decided, cancelled or terminated
    SYSTEM = "system"  # booked by the system (the demo)
    RESCHEDULED = "rescheduled"
    LOCKDOWN = "lockdown"  # a closure (facilities.models.ClosureKind)
    BLACKOUT = "blackout"
    RELEASED = "released"  # the resident's custody ended (residents.models.CustodyStatus)
    TRANSFERRED = "transferred"
    ACCOUNT_CLOSED = "account_closed"  # the visitor closed their account
    MEDIA = "media"  # both parties' media came up
    DEADLINE = "deadline"  # the worker acted on a stored deadline
    DEMO = "demo"


_INSERT_TRANSITION = insert(VisitTransition)


class InvalidTransition(Conflict):
    code = Code.INVALID_TRANSITION


def compare_and_set(session: Session, statement: Update) -> bool:
    """Run an UPDATE whose WHERE holds the expected old values; whether it changed the
    one row (False: another transaction changed it first, and nothing was written)."""
    result = session.execute(statement.execution_options(synchronize_session=False))
    # An UPDATE's result is a CursorResult, which counts the rows it matched.
    return cast(CursorResult[Any], result).rowcount == 1


def record_creation(
    session: Session,
    visit: Visit,
    *,
    actor: AuditActor,
    at: dt.datetime,
    cause: Cause | str,
    reason: str = "",
) -> None:
    """Store the first transition (from nothing) of a visit just inserted."""
    if visit.state not in TRANSITIONS[None]:
        raise InvalidTransition(f"A visit can't start as {visit.state.value}.")
    # A plain INSERT: transitions are never changed, the unit of work need not track them.
    session.connection().execute(
        _INSERT_TRANSITION,
        {
            "visit_id": visit.id,
            "from_state": None,
            "to_state": visit.state.value,
            "at": at,
            "actor_type": actor.type,
            "actor_id": actor.id,
            "reason": reason,
            "cause": cause,
        },
    )


def transition(
    session: Session,
    visit: Visit,
    to: VisitState,
    *,
    actor: AuditActor,
    at: dt.datetime,
    cause: Cause | str,
    reason: str = "",
) -> None:
    """Move ``visit`` to ``to`` if the table allows it, with a compare-and-set update.

    If another transaction moved the visit first, nothing is written and
    ``InvalidTransition`` is raised: a visit is never moved twice. The visit's
    next deadline follows its new state (none once it has ended), and a visit
    that ends after going live is metered.
    """
    current = visit.state
    if to not in TRANSITIONS[current]:
        raise InvalidTransition(
            f"This visit is {current.value.replace('_', ' ')} and can't become {to.value}.",
            state=current.value,
        )
    changes: dict[str, object] = {"state": to, "next_deadline_at": next_deadline(visit, to)}
    if to in TERMINAL_STATES:
        changes["reconnect_deadline_at"] = None
        if reason:
            changes["ended_reason"] = reason[:500]
    moved = compare_and_set(
        session, update(Visit).where(Visit.id == visit.id, Visit.state == current).values(**changes)
    )
    if not moved:
        session.refresh(visit)
        raise InvalidTransition(
            "This visit was changed by someone else a moment ago.", state=visit.state.value
        )
    # The row already holds these values: tell the ORM without writing again.
    for key, value in changes.items():
        set_committed_value(visit, key, value)
    session.add(
        VisitTransition(
            visit_id=visit.id,
            from_state=current.value,
            to_state=to.value,
            at=at,
            actor_type=actor.type,
            actor_id=actor.id,
            reason=reason[:500],
            cause=cause,
        )
    )
    session.flush()
    if to in METERED_STATES:
        meter_visit(session, visit, at)
