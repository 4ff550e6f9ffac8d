"""A visit that went live and ended is charged for the seconds both sides were connected,
less fair-quality credits and the resident's weekly free minutes; the rest comes back."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from openvisit.audit.service import SYSTEM, AuditActor
from openvisit.billing import ledger, settlement
from openvisit.billing import service as billing
from openvisit.billing.models import AccountKind, BillingSettlement, LedgerTransaction
from openvisit.facilities.models import FacilitySettings
from openvisit.scheduling import service as scheduling
from openvisit.visits import service as visits
from openvisit.visits import states
from openvisit.visits.models import Visit, VisitMediaMinute, VisitState, VisitType

from ..scheduling.conftest import approve
from .helpers import entry_total

# The clock starts on Thursday 26 November 2026, 12:00 in New York; these are 09:00 there.
FRIDAY = dt.datetime(2026, 11, 27, 14, 0, tzinfo=dt.UTC)
SATURDAY = FRIDAY + dt.timedelta(days=1)
NEXT_MONDAY = FRIDAY + dt.timedelta(days=3)
S = VisitState


@pytest.fixture
def family(personas, db):
    """Maria ($100 in her wallet) is approved to visit James, at 15 cents a minute."""
    personas.kiosk  # noqa: B018 - build it
    approve(db, personas.visitor, personas.resident)
    return personas


def book(db, clock, family, start=FRIDAY, length=30) -> Visit:
    visit = scheduling.book(
        db,
        clock,
        AuditActor("visitor", family.visitor.id, "Maria"),
        resident_id=family.resident.id,
        visitor_id=family.visitor.id,
        visit_type=VisitType.REMOTE,
        start=start,
        length_minutes=length,
    )
    db.flush()
    return visit


def measured(db, visit, party, minute, *, frozen_ms=0, expected=6000, lost=0, **more):
    """What the media server measured of ``party`` in ``minute`` (as signaling stores it)."""
    row = VisitMediaMinute(
        visit_id=visit.id,
        party=party,
        minute=minute,
        video_frames=1800,
        frozen_ms=frozen_ms,
        packets_expected=expected,
        packets_lost=lost,
        viewer_packets_expected=more.get("viewer_expected", 6000),
        viewer_packets_lost=more.get("viewer_lost", 0),
        viewer_jitter_ms=5,
        measured_at=visit.starts_at + dt.timedelta(minutes=minute + 1),
    )
    db.add(row)
    db.flush()


def hold_live(db, clock, settings, visit, seconds=None, end=S.COMPLETED, stats_of=None):
    """Open the visit and connect both sides for ``seconds`` (the whole visit if None):
    completed, the resident joins late, ``seconds`` before the end; terminated or failed,
    both join at the start and it ends ``seconds`` later. ``stats_of(visit)`` records what
    the media server measured.
    """
    clock.set(visit.starts_at - dt.timedelta(minutes=10))
    visits.advance_visits(db, clock, settings)
    late = visit.starts_at
    if seconds is not None and end is S.COMPLETED:
        late = visit.ends_at - dt.timedelta(seconds=seconds)
    visits.record_event(db, visit, kind="media_up", party="visitor", at=visit.starts_at)
    visits.record_event(db, visit, kind="media_up", party="resident", at=late)
    if stats_of:
        stats_of(visit)
    if end is S.COMPLETED:
        clock.set(visit.ends_at)
        visits.advance_visits(db, clock, settings)
    else:
        at = visit.starts_at + dt.timedelta(seconds=seconds or 0)
        clock.set(at)
        states.transition(db, visit, end, actor=SYSTEM, at=at, cause="test", reason="Ended")
    db.refresh(visit)
    assert visit.state == end


def settle(db, clock, settings) -> int:
    return settlement.settle_pending(db, clock, settings)


def settled_row(db, visit) -> BillingSettlement:
    db.expire_all()
    return db.get(BillingSettlement, visit.id)


def revenue(db, facility_id) -> int:
    account = ledger.find_account(db, AccountKind.FACILITY_REVENUE, facility_id)
    return ledger.balance(db, account.id if account else None)


def free_minutes(db, family, minutes):
    db.get(FacilitySettings, family.facility.id).free_minutes_per_week = minutes
    db.flush()


def test_a_completed_visit_is_charged_for_its_connected_seconds_rounded_half_down(
    db, clock, settings, family
):
    visit = book(db, clock, family)
    assert billing.visit_hold_cents(db, visit.id) == 450
    # 602 s x 15 c / 60 = 150.5 c: half a cent goes down, to 150.
    hold_live(db, clock, settings, visit, seconds=602)
    assert settle(db, clock, settings) == 1
    row = settled_row(db, visit)
    assert (row.outcome, row.billable_seconds, row.charge_cents, row.released_cents) == (
        "captured",
        602,
        150,
        300,
    )
    assert revenue(db, family.facility.id) == 150
    assert billing.visit_hold_cents(db, visit.id) == 0
    summary = billing.wallet_summary(db, family.visitor.id)
    assert (summary.available_cents, summary.held_cents) == (100_00 - 150, 0)
    line = billing.history(db, family.visitor.id)[0]
    assert line.amount_cents == 300
    assert "10 min 02 s connected, charged $1.50; $3.00 back" in line.description
    assert entry_total(db) == 0


def test_capture_happens_exactly_once_however_often_the_job_runs(db, clock, settings, family):
    visit = book(db, clock, family)
    hold_live(db, clock, settings, visit)
    assert settle(db, clock, settings) == 1
    assert settle(db, clock, settings) == 0
    assert settlement.capture_visit(db, clock, visit) is False
    captures = db.scalars(
        select(LedgerTransaction).where(LedgerTransaction.visit_id == visit.id)
    ).all()
    assert [t.kind for t in captures] == ["hold", "capture"]
    assert revenue(db, family.facility.id) == 450
    assert billing.wallet_summary(db, family.visitor.id).balance_cents == 100_00 - 450
    assert entry_total(db) == 0


def test_capture_by_two_workers_one_after_the_other_in_their_own_transactions(
    db, clock, settings, family
):
    visit = book(db, clock, family)
    hold_live(db, clock, settings, visit, seconds=600)
    family.commit()
    factory = db.info["factory"]
    for _ in range(2):
        with factory() as session:
            settlement.settle_pending(session, clock, settings)
            session.commit()
    db.expire_all()
    assert revenue(db, family.facility.id) == 150
    assert billing.visit_hold_cents(db, visit.id) == 0
    assert db.scalar(select(func.count()).select_from(BillingSettlement)) == 1


def test_a_visit_terminated_by_staff_is_charged_up_to_the_termination(db, clock, settings, family):
    visit = book(db, clock, family)
    hold_live(db, clock, settings, visit, seconds=240, end=S.TERMINATED)
    settle(db, clock, settings)
    row = settled_row(db, visit)
    assert (row.billable_seconds, row.charge_cents, row.released_cents) == (240, 60, 390)


def test_a_failed_visit_gets_everything_back_even_after_connected_time(db, clock, settings, family):
    visit = book(db, clock, family)
    hold_live(db, clock, settings, visit, seconds=600, end=S.FAILED)
    settle(db, clock, settings)
    row = settled_row(db, visit)
    assert (row.outcome, row.charge_cents, row.released_cents) == ("released", 0, 450)
    assert revenue(db, family.facility.id) == 0
    assert billing.wallet_summary(db, family.visitor.id).available_cents == 100_00


def test_a_missed_visit_gets_everything_back(db, clock, settings, family):
    visit = book(db, clock, family)
    clock.set(visit.ends_at)
    visits.advance_visits(db, clock, settings)
    db.refresh(visit)
    assert visit.state == S.MISSED
    settle(db, clock, settings)
    assert settled_row(db, visit).released_cents == 450
    assert billing.visit_hold_cents(db, visit.id) == 0


def test_free_minutes_come_first_and_are_not_used_twice_in_the_same_week(
    db, clock, settings, family
):
    free_minutes(db, family, 20)
    friday = book(db, clock, family, FRIDAY)
    saturday = book(db, clock, family, SATURDAY, length=20)
    hold_live(db, clock, settings, friday, seconds=25 * 60)
    hold_live(db, clock, settings, saturday, seconds=10 * 60)
    assert settle(db, clock, settings) == 2
    first, second = settled_row(db, friday), settled_row(db, saturday)
    # Friday: 25 minutes, 20 free, 5 charged. Saturday: nothing free is left, 10 charged.
    assert (first.free_seconds_used, first.charge_cents) == (20 * 60, 75)
    assert (second.free_seconds_used, second.charge_cents) == (0, 150)
    assert revenue(db, family.facility.id) == 225


def test_free_minutes_come_back_in_the_next_facility_week(db, clock, settings, family):
    free_minutes(db, family, 20)
    friday = book(db, clock, family, FRIDAY)
    monday = book(db, clock, family, NEXT_MONDAY)
    hold_live(db, clock, settings, friday)
    hold_live(db, clock, settings, monday, seconds=15 * 60)
    settle(db, clock, settings)
    assert settled_row(db, friday).free_seconds_used == 20 * 60
    assert (settled_row(db, monday).free_seconds_used, settled_row(db, monday).charge_cents) == (
        15 * 60,
        0,
    )
    assert billing.visit_hold_cents(db, monday.id) == 0


def test_the_week_is_the_facility_local_monday_to_sunday():
    # Sunday 23:30 in New York is already Monday in UTC, and still the old week.
    sunday_late = dt.datetime(2026, 11, 30, 4, 30, tzinfo=dt.UTC)
    lo, hi = settlement.week_bounds(sunday_late, "America/New_York")
    assert lo == dt.datetime(2026, 11, 23, 5, 0, tzinfo=dt.UTC)
    assert hi == dt.datetime(2026, 11, 30, 5, 0, tzinfo=dt.UTC)
    # The week in which the clocks go back (Sunday 1 November 2026) is an hour longer.
    lo, hi = settlement.week_bounds(
        dt.datetime(2026, 10, 28, 12, tzinfo=dt.UTC), "America/New_York"
    )
    assert hi - lo == dt.timedelta(days=7, hours=1)


def test_minutes_with_frozen_video_or_heavy_loss_are_not_charged(db, clock, settings, family):
    def bad_minutes(visit):
        # Minute 2: the resident's video froze for 6 s (on the visitor's screen). Minute 5:
        # 20 % of what the server sent the resident was lost. Minute 7: a 4.9 s freeze and
        # 9.9 % loss on the way in, not enough.
        for minute in range(30):
            measured(db, visit, "visitor", minute)
            frozen = {2: 6000, 7: 4900}.get(minute, 0)
            lost = 594 if minute == 7 else 0
            viewer_lost = 1200 if minute == 5 else 0
            measured(
                db, visit, "resident", minute, frozen_ms=frozen, lost=lost, viewer_lost=viewer_lost
            )

    visit = book(db, clock, family)
    hold_live(db, clock, settings, visit, stats_of=bad_minutes)
    settle(db, clock, settings)
    row = settled_row(db, visit)
    assert [(c["minute"], c["seconds"]) for c in row.credits] == [(2, 60), (5, 60)]
    assert [c["reasons"] for c in row.credits] == [
        [{"party": "visitor", "reason": "frozen", "seconds": 6}],
        [{"party": "resident", "reason": "packet_loss", "percent": 20}],
    ]
    assert row.credited_seconds == 120
    assert row.charge_cents == 28 * 15


def test_a_credited_minute_does_not_use_up_free_minutes(db, clock, settings, family):
    free_minutes(db, family, 30)

    def frozen_first_minute(visit):
        measured(db, visit, "visitor", 0, frozen_ms=6000)

    visit = book(db, clock, family)
    hold_live(db, clock, settings, visit, stats_of=frozen_first_minute)
    settle(db, clock, settings)
    row = settled_row(db, visit)
    assert (row.credited_seconds, row.free_seconds_used, row.charge_cents) == (60, 29 * 60, 0)


def test_the_charge_never_exceeds_the_hold(db, clock, settings, family):
    visit = book(db, clock, family)
    visit.rate_cents_per_minute = Decimal("40")  # a correction after booking
    db.flush()
    hold_live(db, clock, settings, visit)
    settle(db, clock, settings)
    row = settled_row(db, visit)
    assert (row.held_cents, row.charge_cents, row.released_cents) == (450, 450, 0)
    assert revenue(db, family.facility.id) == 450
    assert billing.visit_hold_cents(db, visit.id) == 0
    assert entry_total(db) == 0


def test_charge_arithmetic_credits_then_free_time_then_rate_half_down_capped():
    charge = settlement.compute_charge(
        billable_seconds=1000,
        credited_seconds=120,
        free_seconds_available=600,
        rate_cents_per_minute=Decimal("15.5"),
        held_cents=465,
    )
    # 1000 - 120 credited - 600 free = 280 s; 280 x 15.5 / 60 = 72.33 c -> 72.
    assert (charge.charged_seconds, charge.charge_cents, charge.released_cents) == (280, 72, 393)
    capped = settlement.compute_charge(
        billable_seconds=1800,
        credited_seconds=0,
        free_seconds_available=-60,
        rate_cents_per_minute=Decimal(15),
        held_cents=300,
    )
    assert (capped.free_seconds_used, capped.charge_cents, capped.released_cents) == (0, 300, 0)
    free_visit = settlement.compute_charge(
        billable_seconds=600,
        credited_seconds=0,
        free_seconds_available=1200,
        rate_cents_per_minute=Decimal(0),
        held_cents=0,
    )
    assert (free_visit.free_seconds_used, free_visit.charge_cents) == (0, 0)
