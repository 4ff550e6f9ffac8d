"""Settling an ended visit's money, exactly once (DESIGN §4, Metering and billing), and
the receipt that shows it.

A visit that went live and ended (completed or terminated) is charged for its metered
seconds, less fair-quality credited minutes (billing.quality: from the media server's
per-party, per-minute measurements, never the clients' stats) and the resident's weekly
free minutes; every other ended visit gets its whole hold back. ``settle_pending`` (the
worker job) does both, exactly once per visit, and stores what the receipt shows.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from openvisit.billing import ledger, quality
from openvisit.billing.ledger import dollars
from openvisit.billing.models import AccountKind, BillingSettlement, LedgerTransaction
from openvisit.billing.service import (
    release_hold,
    visit_hold_cents,
    visit_time_words,
    wallet_change,
)
from openvisit.clock import Clock
from openvisit.config import Settings
from openvisit.errors import Code, Conflict, NotFound
from openvisit.facilities.models import Facility, FacilitySettings
from openvisit.residents.models import Resident
from openvisit.visits.models import Visit, VisitMediaMinute, VisitMeter, VisitTransition

log = logging.getLogger(__name__)

# A visit that ends in one of these states gets its whole hold back (a missed visit was
# never connected: nothing to charge).
RELEASE_STATES = ("cancelled", "denied", "failed", "missed")
# A visit that went live and ended in one of these is charged for what was metered.
CAPTURE_STATES = ("completed", "terminated")


# --- the settlement mark -------------------------------------------------------------

# Built once (a settlement is one of many the worker does in a row): the first settlement
# of a visit wins, a second one (another worker's) changes nothing.
_INSERT_SETTLEMENT = {
    name: dialect.insert(BillingSettlement).on_conflict_do_nothing(index_elements=["visit_id"])
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}


def _mark_settled(
    session: Session,
    clock: Clock,
    visit_id: int,
    txn: LedgerTransaction | None,
    *,
    outcome: str,
    **values: object,
) -> None:
    conn = session.connection()
    conn.execute(
        _INSERT_SETTLEMENT[conn.dialect.name],
        {
            "visit_id": visit_id,
            "outcome": outcome if txn is not None else "nothing_held",
            "transaction_id": txn.id if txn is not None else None,
            "settled_at": clock.now(),
            **values,
        },
    )


def is_settled(session: Session, visit_id: int) -> bool:
    """Whether the visit's money is settled (by this node or another)."""
    return (
        session.scalar(
            select(BillingSettlement.visit_id).where(BillingSettlement.visit_id == visit_id)
        )
        is not None
    )


def release_and_settle(session: Session, clock: Clock, visit: Visit) -> bool:
    """Give a visit that ended without going live its whole hold back and mark it settled,
    exactly once; False when it was settled already."""
    if is_settled(session, visit.id):
        return False
    txn = release_hold(session, clock, visit)
    amount = wallet_change(session, txn.id, visit.visitor_id) if txn is not None else 0
    meter = session.get(VisitMeter, visit.id)
    _mark_settled(
        session,
        clock,
        visit.id,
        txn,
        outcome="released",
        held_cents=max(amount, 0),
        released_cents=max(amount, 0),
        billable_seconds=meter.billable_seconds if meter else 0,
        credits=[],
    )
    return True


# --- capture of a visit that went live and ended ----------------------------------------


def week_bounds(starts_at: dt.datetime, timezone: str) -> tuple[dt.datetime, dt.datetime]:
    """The facility-local Monday 00:00 to the next Monday 00:00 around ``starts_at``, in UTC
    (a week with a DST change is 167 or 169 hours long)."""
    tz = ZoneInfo(timezone)
    monday = starts_at.astimezone(tz).date()
    monday -= dt.timedelta(days=monday.weekday())
    lo = dt.datetime.combine(monday, dt.time(0), tzinfo=tz)
    hi = dt.datetime.combine(monday + dt.timedelta(days=7), dt.time(0), tzinfo=tz)
    return lo.astimezone(dt.UTC), hi.astimezone(dt.UTC)


def _free_used_elsewhere(visit: Visit, timezone: str) -> Select[int]:
    lo, hi = week_bounds(visit.starts_at, timezone)
    return (
        select(func.coalesce(func.sum(BillingSettlement.free_seconds_used), 0))
        .join(Visit, Visit.id == BillingSettlement.visit_id)
        .where(
            Visit.resident_id == visit.resident_id,
            Visit.starts_at >= lo,
            Visit.starts_at < hi,
            Visit.id != visit.id,
        )
    )


def free_seconds_used_elsewhere(session: Session, visit: Visit, timezone: str) -> int:
    """The resident's weekly free time already used by their other settled visits that
    started in the same facility-local week as ``visit``."""
    return int(session.execute(_free_used_elsewhere(visit, timezone)).scalar_one())


def _intervals(stored: list[list[str]] | None) -> list[tuple[dt.datetime, dt.datetime]]:
    return [
        (dt.datetime.fromisoformat(lo), dt.datetime.fromisoformat(hi)) for lo, hi in stored or []
    ]


def _billed_in(
    intervals: list[tuple[dt.datetime, dt.datetime]], lo: dt.datetime, hi: dt.datetime
) -> int:
    """Seconds of [lo, hi) that were billed, a part second counting as a whole one
    (a credit rounds in the family's favour)."""
    total = sum(
        (max(dt.timedelta(), min(b, hi) - max(a, lo)) for a, b in intervals), dt.timedelta()
    )
    return -(-total // dt.timedelta(seconds=1))


@dataclass(frozen=True)
class Charge:
    """How a settled visit's hold is split (all pure arithmetic, see ``compute_charge``)."""

    billable_seconds: int
    credited_seconds: int
    free_seconds_used: int
    charged_seconds: int
    charge_cents: int
    held_cents: int

    @property
    def released_cents(self) -> int:
        return self.held_cents - self.charge_cents


def compute_charge(
    *,
    billable_seconds: int,
    credited_seconds: int,
    free_seconds_available: int,
    rate_cents_per_minute: Decimal,
    held_cents: int,
) -> Charge:
    """Credited minutes come off first (they never use up free minutes), then the weekly
    free time, then the rest is charged: seconds x rate / 60, rounded half down to the
    cent, and never more than was held. A visit with nothing held (free) uses no free time.
    """
    credited = min(max(credited_seconds, 0), billable_seconds)
    chargeable = billable_seconds - credited
    paid = held_cents > 0 and rate_cents_per_minute > 0
    free = min(chargeable, max(free_seconds_available, 0)) if paid else 0
    charged = chargeable - free
    cents = ledger.cents_half_down(Decimal(charged) * Decimal(rate_cents_per_minute) / 60)
    return Charge(
        billable_seconds=billable_seconds,
        credited_seconds=credited,
        free_seconds_used=free,
        charged_seconds=charged,
        charge_cents=min(cents, max(held_cents, 0)) if paid else 0,
        held_cents=max(held_cents, 0),
    )


def _lock_resident(session: Session, resident_id: int) -> None:
    """Settlements of one resident's visits take turns (PostgreSQL row lock; SQLite has one
    writer), so two workers can't both spend the same free minutes."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(Resident.id).where(Resident.id == resident_id).with_for_update())


def _duration_words(seconds: int) -> str:
    minutes, rest = divmod(seconds, 60)
    return f"{minutes} min {rest:02d} s" if minutes else f"{rest} s"


def capture_visit(session: Session, clock: Clock, visit: Visit) -> bool:
    """Settle a visit that went live and ended (completed or terminated), exactly once:
    charge what was metered, less credited minutes and free time, from the hold to the
    facility's revenue, and give the rest back, in one ledger transaction. Returns False
    when it was settled already (by an earlier run or another worker)."""
    _lock_resident(session, visit.resident_id)
    facility = session.get(Facility, visit.facility_id)
    timezone = facility.timezone if facility else "UTC"
    # One statement for the rest, read after the resident's lock: whether it is settled
    # already, the weekly free time and how much of it the resident's other visits used,
    # and the meter (one settlement is a few round trips: the worker settles many).
    facts = session.execute(
        select(
            select(BillingSettlement.visit_id)
            .where(BillingSettlement.visit_id == visit.id)
            .scalar_subquery()
            .label("settled"),
            select(FacilitySettings.free_minutes_per_week)
            .where(FacilitySettings.facility_id == visit.facility_id)
            .scalar_subquery()
            .label("free_minutes"),
            _free_used_elsewhere(visit, timezone).scalar_subquery().label("free_used"),
            select(VisitMeter.billable_seconds)
            .where(VisitMeter.visit_id == visit.id)
            .scalar_subquery()
            .label("billable"),
            select(VisitMeter.intervals)
            .where(VisitMeter.visit_id == visit.id)
            .scalar_subquery()
            .label("intervals"),
        )
    ).one()
    if facts.settled is not None:
        return False
    weekly_free = (facts.free_minutes or 0) * 60
    billable = facts.billable or 0
    intervals = _intervals(facts.intervals)
    # What the media server measured, one row per party and minute (never the clients'
    # own stats); plain rows: only these fields are read.
    measured = session.execute(
        select(
            VisitMediaMinute.party,
            VisitMediaMinute.minute,
            VisitMediaMinute.frozen_ms,
            VisitMediaMinute.packets_expected,
            VisitMediaMinute.packets_lost,
            VisitMediaMinute.viewer_packets_expected,
            VisitMediaMinute.viewer_packets_lost,
        ).where(VisitMediaMinute.visit_id == visit.id)
    ).all()
    credits: list[dict[str, Any]] = []
    credited_total = 0
    for credit in quality.credited_minutes(measured, visit.starts_at, visit.ends_at):
        lo = visit.starts_at + credit.minute * quality.MINUTE
        seconds = _billed_in(intervals, lo, min(lo + quality.MINUTE, visit.ends_at))
        if seconds > 0:  # a minute nobody was billed for needs no credit
            credits.append({"minute": credit.minute, "seconds": seconds, "reasons": credit.reasons})
            credited_total += seconds
    held = visit_hold_cents(session, visit.id)
    charge = compute_charge(
        billable_seconds=billable,
        credited_seconds=credited_total,
        free_seconds_available=weekly_free - int(facts.free_used),
        rate_cents_per_minute=Decimal(visit.rate_cents_per_minute),
        held_cents=held,
    )
    txn = None
    if charge.held_cents > 0:
        hold, purse = ledger.accounts(
            session,
            clock,
            [
                (AccountKind.VISITOR_HOLD, visit.visitor_id),
                (AccountKind.VISITOR_WALLET, visit.visitor_id),
            ],
        )
        postings = [(hold, -charge.held_cents)]
        if charge.charge_cents:
            revenue = ledger.account(
                session, clock, AccountKind.FACILITY_REVENUE, facility_id=visit.facility_id
            )
            postings.append((revenue, charge.charge_cents))
        if charge.released_cents:
            postings.append((purse, charge.released_cents))
        txn = ledger.post(
            session,
            clock,
            f"visit:{visit.id}:capture",
            "capture",
            postings,
            f"Your visit on {visit_time_words(session, visit)} (ref {visit.reference}): "
            f"{_duration_words(charge.billable_seconds)} connected, "
            f"charged {dollars(charge.charge_cents)}; "
            f"{dollars(charge.released_cents)} back in your wallet",
            visit_id=visit.id,
            facility_id=visit.facility_id,
        )
    _mark_settled(
        session,
        clock,
        visit.id,
        txn,
        outcome="captured",
        held_cents=charge.held_cents,
        charge_cents=charge.charge_cents,
        released_cents=charge.released_cents,
        billable_seconds=charge.billable_seconds,
        credited_seconds=charge.credited_seconds,
        credits=credits,
        free_seconds_used=charge.free_seconds_used,
    )
    session.flush()
    return True


def settle_pending(session: Session, clock: Clock, settings: Settings, *, limit: int = 200) -> int:
    """The worker job, reading the stored transitions (the outbox): a visit that went live
    and ended (completed, terminated) is charged and the rest of its hold released
    (``capture_visit``); one that was cancelled, denied, missed or failed gets its whole
    hold back. Safe to run twice or on two nodes at once: the idempotency keys, the
    settlement's primary key and the resident lock see to it."""
    visit_ids = session.scalars(
        select(VisitTransition.visit_id)
        .outerjoin(BillingSettlement, BillingSettlement.visit_id == VisitTransition.visit_id)
        .where(
            VisitTransition.to_state.in_(RELEASE_STATES + CAPTURE_STATES),
            BillingSettlement.visit_id.is_(None),
        )
        .order_by(VisitTransition.id)
        .limit(limit)
    ).all()
    done = 0
    for visit_id in dict.fromkeys(visit_ids):
        visit = session.get(Visit, visit_id)
        if visit is None:  # pragma: no cover - visits are never deleted
            continue
        # One visit's problem must not hold up everyone else's money.
        try:
            with session.begin_nested():
                settled = settle_visit(session, clock, visit)
        except Exception:
            log.exception("could not settle visit %s; will retry at the next tick", visit_id)
            continue
        if settled:
            done += 1
    return done


def settle_visit(session: Session, clock: Clock, visit: Visit) -> bool:
    """Settle one ended visit's money, exactly once: capture what a visit that went live
    and ended was connected for, or give a cancelled, denied, missed or failed visit its
    whole hold back. False when it was settled already, or has not ended."""
    if visit.state.value in CAPTURE_STATES:
        return capture_visit(session, clock, visit)
    if visit.state.value in RELEASE_STATES:
        return release_and_settle(session, clock, visit)
    return False


# --- receipts ----------------------------------------------------------------------------


class NotSettled(Conflict):
    code = Code.NOT_SETTLED
    message = (
        "This visit's money is not settled yet. The receipt is ready a minute or two "
        "after the visit ends."
    )


@dataclass(frozen=True)
class CreditedMinute:
    minute: int  # 0 is the visit's first minute
    starts_at: dt.datetime
    seconds: int  # connected seconds of that minute not charged
    reasons: list[str]


def credited_minutes(
    visit: Visit, row: BillingSettlement | None, *, for_staff: bool = False
) -> list[CreditedMinute]:
    """The minutes the settlement ``row`` did not charge, and why, in words for the family
    (or for staff)."""
    return [
        CreditedMinute(
            minute=c["minute"],
            starts_at=visit.starts_at + c["minute"] * quality.MINUTE,
            seconds=c["seconds"],
            reasons=[quality.reason_words(r, for_staff=for_staff) for r in c["reasons"]],
        )
        for c in (row.credits or [] if row else [])
    ]


@dataclass(frozen=True)
class Receipt:
    visit_id: int
    reference: str
    state: str
    timezone: str
    starts_at: dt.datetime
    booked_minutes: int
    connected_seconds: int
    credited_minutes: list[CreditedMinute]
    credited_seconds: int
    rate_cents_per_minute: Decimal
    free_seconds_used: int
    charge_cents: int
    held_cents: int
    released_cents: int
    settled_at: dt.datetime


def receipt(session: Session, visit_id: int, *, visitor_id: int | None = None) -> Receipt:
    """What a settled visit cost and why. ``visitor_id``: only that visitor's own visit
    (anyone else's, or a missing one, is ``visit_not_found``)."""
    visit = session.get(Visit, visit_id)
    if visit is None or (visitor_id is not None and visit.visitor_id != visitor_id):
        raise NotFound("We couldn't find that visit.", code=Code.VISIT_NOT_FOUND)
    row = session.get(BillingSettlement, visit.id)
    if row is None:
        raise NotSettled(visit_id=visit.id)
    facility = session.get(Facility, visit.facility_id)
    return Receipt(
        visit_id=visit.id,
        reference=visit.reference,
        state=visit.state.value,
        timezone=facility.timezone if facility else "UTC",
        starts_at=visit.starts_at,
        booked_minutes=int((visit.ends_at - visit.starts_at).total_seconds() // 60),
        connected_seconds=row.billable_seconds,
        credited_minutes=credited_minutes(visit, row),
        credited_seconds=row.credited_seconds,
        rate_cents_per_minute=Decimal(visit.rate_cents_per_minute),
        free_seconds_used=row.free_seconds_used,
        charge_cents=row.charge_cents,
        held_cents=row.held_cents,
        released_cents=row.released_cents,
        settled_at=row.settled_at,
    )
