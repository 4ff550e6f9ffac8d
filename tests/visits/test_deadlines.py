"""The worker acts on the deadlines stored on each visit (DESIGN §4, Visit lifecycle)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, update

from openvisit import worker
from openvisit.audit.service import SYSTEM
from openvisit.errors import DomainError
from openvisit.visits import service, states
from openvisit.visits.models import (
    Visit,
    VisitEvent,
    VisitMeter,
    VisitState,
    VisitTransition,
)

from .conftest import FRIDAY_9AM

S = VisitState
OPENS = FRIDAY_9AM - dt.timedelta(minutes=10)
ENDS = FRIDAY_9AM + dt.timedelta(minutes=30)


def tick(db, clock, settings, at: dt.datetime | None = None) -> int:
    if at is not None:
        clock.set(at)
    return service.advance_visits(db, clock, settings)


def reload(db, visit: Visit) -> Visit:
    db.expire_all()
    return db.get(Visit, visit.id)


def warnings(db, visit: Visit) -> list[int]:
    return [
        e.data["minutes_left"]
        for e in db.scalars(
            select(VisitEvent)
            .where(VisitEvent.visit_id == visit.id, VisitEvent.kind == "warning")
            .order_by(VisitEvent.id)
        )
    ]


def go_live(db, visit: Visit, at: dt.datetime) -> None:
    service.record_event(db, visit, kind="joined", party="visitor", at=at)
    service.record_event(db, visit, kind="media_up", party="visitor", at=at)
    service.record_event(db, visit, kind="joined", party="resident", at=at)
    service.record_event(db, visit, kind="media_up", party="resident", at=at)


def test_a_booked_visit_carries_its_deadlines(db, visit):
    assert visit.state == S.SCHEDULED
    visit = reload(db, visit)
    assert visit.opens_at == OPENS
    assert visit.warn_5_at == ENDS - dt.timedelta(minutes=5)
    assert visit.warn_1_at == ENDS - dt.timedelta(minutes=1)
    assert visit.next_deadline_at == OPENS
    assert (visit.warned_5, visit.warned_1, visit.reconnect_deadline_at) == (False, False, None)


def test_the_join_window_opens_exactly_at_its_time_and_not_a_second_before(
    db, clock, settings, visit
):
    assert tick(db, clock, settings, OPENS - dt.timedelta(seconds=1)) == 0
    assert reload(db, visit).state == S.SCHEDULED
    assert tick(db, clock, settings, OPENS) == 1
    visit = reload(db, visit)
    assert visit.state == S.OPEN
    assert visit.next_deadline_at == ENDS - dt.timedelta(minutes=5)
    last = db.scalars(select(VisitTransition).order_by(VisitTransition.id.desc())).first()
    assert (last.from_state, last.to_state, last.actor_type, last.cause) == (
        "scheduled",
        "open",
        "system",
        "deadline",
    )


def test_a_visit_nobody_came_to_is_missed_at_its_end(db, clock, settings, visit):
    tick(db, clock, settings, OPENS)
    tick(db, clock, settings, ENDS - dt.timedelta(seconds=1))
    assert reload(db, visit).state == S.OPEN
    tick(db, clock, settings, ENDS)
    visit = reload(db, visit)
    assert visit.state == S.MISSED
    assert visit.ended_reason == "Nobody joined the visit."
    assert visit.next_deadline_at is None
    assert tick(db, clock, settings, ENDS + dt.timedelta(hours=1)) == 0


def test_a_visit_only_the_visitor_joined_is_missed_saying_the_resident_did_not_join(
    db, clock, settings, visit
):
    tick(db, clock, settings, OPENS)
    service.record_event(db, visit, kind="joined", party="visitor", at=FRIDAY_9AM)
    service.record_event(db, visit, kind="media_up", party="visitor", at=FRIDAY_9AM)
    tick(db, clock, settings, ENDS)
    visit = reload(db, visit)
    assert visit.state == S.MISSED
    assert visit.ended_reason == "The resident did not join."


def test_both_parties_media_up_makes_an_open_visit_live(db, clock, settings, visit):
    tick(db, clock, settings, OPENS)
    service.record_event(db, visit, kind="media_up", party="visitor", at=FRIDAY_9AM)
    assert reload(db, visit).state == S.OPEN
    service.record_event(db, visit, kind="media_up", party="resident", at=FRIDAY_9AM)
    assert reload(db, visit).state == S.LIVE


def test_warnings_at_5_and_1_minutes_left_are_recorded_once_each(db, clock, settings, visit):
    tick(db, clock, settings, OPENS)
    go_live(db, visit, FRIDAY_9AM)
    tick(db, clock, settings, ENDS - dt.timedelta(minutes=5, seconds=1))
    assert warnings(db, visit) == []
    tick(db, clock, settings, ENDS - dt.timedelta(minutes=5))
    tick(db, clock, settings, ENDS - dt.timedelta(minutes=4))
    assert warnings(db, visit) == [5]
    tick(db, clock, settings, ENDS - dt.timedelta(minutes=1))
    tick(db, clock, settings, ENDS - dt.timedelta(seconds=30))
    assert warnings(db, visit) == [5, 1]
    visit = reload(db, visit)
    assert (visit.warned_5, visit.warned_1, visit.state) == (True, True, S.LIVE)
    assert visit.next_deadline_at == ENDS


def test_a_live_visit_is_completed_at_its_end_and_metered(db, clock, settings, visit):
    tick(db, clock, settings, OPENS)
    go_live(db, visit, FRIDAY_9AM + dt.timedelta(minutes=2))
    tick(db, clock, settings, ENDS - dt.timedelta(seconds=1))
    assert reload(db, visit).state == S.LIVE
    # The worker comes late: the visit still ends (and is billed) at its end time.
    tick(db, clock, settings, ENDS + dt.timedelta(seconds=20))
    visit = reload(db, visit)
    assert visit.state == S.COMPLETED
    assert visit.ended_reason == "The visit reached its end time."
    assert visit.next_deadline_at is None
    meter = db.get(VisitMeter, visit.id)
    assert meter.billable_seconds == 28 * 60
    assert len(meter.intervals) == 1


def test_a_worker_away_for_the_whole_visit_opens_and_misses_it_in_one_tick_without_warnings(
    db, clock, settings, visit
):
    assert tick(db, clock, settings, ENDS + dt.timedelta(hours=2)) == 2
    assert reload(db, visit).state == S.MISSED
    assert warnings(db, visit) == []


def test_a_late_warning_says_only_what_is_still_true(db, clock, settings, visit):
    tick(db, clock, settings, OPENS)
    go_live(db, visit, FRIDAY_9AM)
    tick(db, clock, settings, ENDS - dt.timedelta(seconds=50))
    assert warnings(db, visit) == [1]


def test_a_party_who_drops_and_returns_within_the_grace_keeps_the_visit_going(
    db, clock, settings, visit
):
    tick(db, clock, settings, OPENS)
    go_live(db, visit, FRIDAY_9AM)
    dropped = FRIDAY_9AM + dt.timedelta(minutes=10)
    service.record_event(db, visit, kind="media_down", party="visitor", at=dropped)
    assert reload(db, visit).reconnect_deadline_at == dropped + dt.timedelta(seconds=90)
    assert reload(db, visit).next_deadline_at == dropped + dt.timedelta(seconds=90)
    service.record_event(
        db, visit, kind="media_up", party="visitor", at=dropped + dt.timedelta(seconds=60)
    )
    assert reload(db, visit).reconnect_deadline_at is None
    tick(db, clock, settings, dropped + dt.timedelta(seconds=120))
    assert reload(db, visit).state == S.LIVE
    tick(db, clock, settings, ENDS)
    assert db.get(VisitMeter, visit.id).billable_seconds == 29 * 60


def test_a_party_who_stays_away_past_the_grace_fails_the_visit(db, clock, settings, visit):
    tick(db, clock, settings, OPENS)
    go_live(db, visit, FRIDAY_9AM)
    dropped = FRIDAY_9AM + dt.timedelta(minutes=10)
    service.record_event(db, visit, kind="left", party="resident", at=dropped)
    tick(db, clock, settings, dropped + dt.timedelta(seconds=89))
    assert reload(db, visit).state == S.LIVE
    tick(db, clock, settings, dropped + dt.timedelta(seconds=90))
    visit = reload(db, visit)
    assert visit.state == S.FAILED
    assert visit.ended_reason == "The resident lost the connection and did not come back in time."
    assert (visit.next_deadline_at, visit.reconnect_deadline_at) == (None, None)
    assert db.get(VisitMeter, visit.id).billable_seconds == 10 * 60


def test_the_worker_loop_runs_the_visit_job_from_stored_state_alone(db, clock, settings, visit):
    db.commit()
    # A fresh session, as after a restart: everything needed is in the columns.
    worker.run_jobs_once(db.info["factory"], clock, settings)
    assert reload(db, visit).state == S.SCHEDULED
    clock.set(OPENS)
    worker.run_jobs_once(db.info["factory"], clock, settings)
    worker.run_jobs_once(db.info["factory"], clock, settings)
    assert reload(db, visit).state == S.OPEN
    opened = db.scalars(
        select(VisitTransition).where(
            VisitTransition.visit_id == visit.id, VisitTransition.to_state == "open"
        )
    ).all()
    assert len(opened) == 1


def test_a_requested_visit_waits_for_approval_and_then_opens_on_time(db, clock, settings, visit):
    db.execute(update(Visit).where(Visit.id == visit.id).values(state=S.REQUESTED))
    visit = reload(db, visit)
    visit.next_deadline_at = None
    db.flush()
    assert tick(db, clock, settings, OPENS) == 0
    states.transition(db, visit, S.SCHEDULED, actor=SYSTEM, at=clock.now(), cause="staff")
    assert reload(db, visit).next_deadline_at == OPENS
    tick(db, clock, settings)
    assert reload(db, visit).state == S.OPEN


def test_the_state_machine_refuses_an_illegal_transition_and_changes_nothing(
    db, clock, settings, visit
):
    before = db.scalars(select(VisitTransition)).all()
    with pytest.raises(states.InvalidTransition) as refused:
        states.transition(db, visit, S.COMPLETED, actor=SYSTEM, at=clock.now(), cause="test")
    assert refused.value.code == "invalid_transition"
    visit = reload(db, visit)
    assert visit.state == S.SCHEDULED
    assert visit.next_deadline_at == OPENS
    assert db.scalars(select(VisitTransition)).all() == before
    assert db.get(VisitMeter, visit.id) is None


def test_an_ended_visit_can_not_be_moved_again(db, clock, settings, visit):
    tick(db, clock, settings, ENDS)
    for to in (S.LIVE, S.OPEN, S.COMPLETED, S.CANCELLED):
        with pytest.raises(states.InvalidTransition):
            states.transition(db, visit, to, actor=SYSTEM, at=clock.now(), cause="test")
    assert reload(db, visit).state == S.MISSED


def test_a_visit_moved_by_someone_else_meanwhile_is_not_moved_again(db, clock, settings, visit):
    # Another node opened it after this session read it.
    db.execute(
        update(Visit)
        .where(Visit.id == visit.id)
        .values(state=S.OPEN)
        .execution_options(synchronize_session=False)
    )
    with pytest.raises(states.InvalidTransition):
        states.transition(db, visit, S.OPEN, actor=SYSTEM, at=OPENS, cause="deadline")
    assert visit.state == S.OPEN
    assert db.scalars(select(VisitTransition).where(VisitTransition.to_state == "open")).all() == []


def test_an_unknown_event_is_refused_and_nothing_is_stored(db, clock, visit):
    for kind, party in (("explode", "visitor"), ("joined", "janitor")):
        with pytest.raises(DomainError) as refused:
            service.record_event(db, visit, kind=kind, party=party, at=clock.now())
        assert refused.value.code == "invalid_event"
    assert db.scalars(select(VisitEvent)).all() == []
