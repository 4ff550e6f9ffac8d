"""What facility staff see of the money (issue 5's staff pages): a visit's money trail,
revenue per facility-local day, and the refunds paid to the facility's families.

Read-only. Every figure is a sum over ledger entries, as everywhere else; times are UTC
here and shown in the facility's zone by the pages.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from openvisit import bounds
from openvisit.approvals import service as approvals
from openvisit.billing import ledger
from openvisit.billing.models import (
    AccountKind,
    BillingSettlement,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
)
from openvisit.billing.refunds import REFUND_REASONS, payout_reference
from openvisit.billing.settlement import CreditedMinute, credited_minutes
from openvisit.errors import Code, InvalidInput
from openvisit.facilities.models import Facility
from openvisit.people.models import Visitor
from openvisit.residents.models import Resident
from openvisit.visits.models import Visit, VisitTransition

DEFAULT_DAYS = 30
MAX_DAYS = 366

# --- a range of facility-local days ---------------------------------------------------


@dataclass(frozen=True)
class DateRange:
    first: dt.date
    last: dt.date  # included
    timezone: str

    @property
    def days(self) -> list[dt.date]:
        return [self.first + dt.timedelta(days=n) for n in range((self.last - self.first).days + 1)]

    def utc_bounds(self) -> tuple[dt.datetime, dt.datetime]:
        """Local midnight starting ``first`` to local midnight ending ``last``, in UTC."""
        tz = ZoneInfo(self.timezone)
        lo = dt.datetime.combine(self.first, dt.time(0), tzinfo=tz)
        hi = dt.datetime.combine(self.last + dt.timedelta(days=1), dt.time(0), tzinfo=tz)
        return lo.astimezone(dt.UTC), hi.astimezone(dt.UTC)


def _parse_day(value: str, field: str, label: str, errors: dict[str, str]) -> dt.date | None:
    try:
        return bounds.parse_date(value)
    except ValueError:
        errors[field] = f"Enter the {label} date as year-month-day, for example 2026-11-01"
        return None


def date_range(facility: Facility, now: dt.datetime, first: str = "", last: str = "") -> DateRange:
    """The days asked for, in the facility's zone: by default the last 30 days up to today.
    A bad date, an end before the start or more than 366 days is ``invalid_date_range``."""
    errors: dict[str, str] = {}
    today = now.astimezone(ZoneInfo(facility.timezone)).date()
    end = _parse_day(last, "to", "end", errors) if last.strip() else today
    start = (
        _parse_day(first, "from", "start", errors)
        if first.strip()
        else (end or today) - dt.timedelta(days=DEFAULT_DAYS - 1)
    )
    if not errors and start is not None and end is not None:
        if start > end:
            errors["from"] = "The start date must be on or before the end date"
        elif (end - start).days + 1 > MAX_DAYS:
            errors["to"] = f"Choose at most {MAX_DAYS} days"
    if errors or start is None or end is None:
        raise InvalidInput(
            " ".join(f"{message}." for message in errors.values()),
            code=Code.INVALID_DATE_RANGE,
            fields=errors,
        )
    return DateRange(start, end, facility.timezone)


# --- revenue per day --------------------------------------------------------------------


@dataclass(frozen=True)
class RevenueDay:
    day: dt.date
    visits: int  # visits charged (captured) that day
    cents: int


@dataclass(frozen=True)
class Revenue:
    span: DateRange
    days: list[RevenueDay]

    @property
    def total_cents(self) -> int:
        return sum(d.cents for d in self.days)

    @property
    def total_visits(self) -> int:
        return sum(d.visits for d in self.days)

    @property
    def best(self) -> RevenueDay | None:
        return max(self.days, key=lambda d: (d.cents, d.day)) if self.total_cents else None


def revenue_by_day(session: Session, facility: Facility, span: DateRange) -> Revenue:
    """What the facility's revenue account received on each local day of ``span``, from the
    entries of captured visits, dated when the money moved."""
    tz = ZoneInfo(facility.timezone)
    cents = dict.fromkeys(span.days, 0)
    visits: dict[dt.date, set[int]] = {d: set() for d in span.days}
    account = ledger.find_account(session, AccountKind.FACILITY_REVENUE, facility.id)
    if account is not None:
        lo, hi = span.utc_bounds()
        rows = session.execute(
            select(
                LedgerTransaction.created_at, LedgerTransaction.visit_id, LedgerEntry.amount_cents
            )
            .join(LedgerEntry, LedgerEntry.transaction_id == LedgerTransaction.id)
            .where(
                LedgerEntry.account_id == account.id,
                LedgerTransaction.created_at >= lo,
                LedgerTransaction.created_at < hi,
            )
        )
        for at, visit_id, amount in rows:
            day = at.astimezone(tz).date()
            if day in cents:  # always, unless the zone's rules changed under us
                cents[day] += amount
                if visit_id is not None:
                    visits[day].add(visit_id)
    return Revenue(span, [RevenueDay(d, len(visits[d]), cents[d]) for d in span.days])


@dataclass(frozen=True)
class Bar:
    day: dt.date
    cents: int
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class Chart:
    """A bar chart's geometry in SVG user units; the template draws it."""

    width: int
    height: int
    plot_left: int
    plot_bottom: int
    bars: list[Bar]
    gridlines: list[tuple[float, int]]  # (y, cents)
    day_labels: list[tuple[float, dt.date]]  # (x of the bar's middle, day)


def _nice_step(top: int) -> int:
    """A round gridline step (1, 2 or 5 x 10^n cents) giving at most four steps to ``top``."""
    step = 1
    while True:
        for factor in (1, 2, 5):
            if step * factor * 4 >= top:
                return step * factor
        step *= 10


def revenue_chart(days: list[RevenueDay], width: int = 720, height: int = 260) -> Chart:
    left, right, top, bottom = 72, 8, 12, 32
    plot_w, plot_h = width - left - right, height - top - bottom
    step = _nice_step(max((d.cents for d in days), default=0) or 1)
    axis_top = step * 4
    slot = plot_w / max(len(days), 1)
    bar_w = max(slot * 0.7, 1.0)
    bars = []
    for n, d in enumerate(days):
        h = plot_h * d.cents / axis_top if d.cents > 0 else 0.0
        x = left + n * slot + (slot - bar_w) / 2
        bars.append(
            Bar(
                d.day,
                d.cents,
                round(x, 2),
                round(top + plot_h - h, 2),
                round(bar_w, 2),
                round(h, 2),
            )
        )
    every = max(1, -(-len(days) // 6))  # at most about six dates under the bars
    labels = [(round(b.x + b.width / 2, 2), b.day) for n, b in enumerate(bars) if n % every == 0]
    grid = [(round(top + plot_h - plot_h * k / 4, 2), step * k) for k in range(5)]
    return Chart(width, height, left, top + plot_h, bars, grid, labels)


# --- a visit's money trail --------------------------------------------------------------


@dataclass(frozen=True)
class TrailEntry:
    account: str  # in plain words: "Maria Lopez's wallet"
    amount_cents: int  # + into that account, - out of it


@dataclass(frozen=True)
class TrailStep:
    at: dt.datetime
    transaction_id: int
    kind: str  # hold | release | capture
    title: str
    memo: str
    entries: list[TrailEntry]
    held_after_cents: int  # still set aside for this visit after this step


@dataclass(frozen=True)
class MoneyTrail:
    visit: Visit
    visitor_name: str
    resident_name: str
    booked_minutes: int
    rate_cents_per_minute: Decimal
    steps: list[TrailStep]
    held_now_cents: int
    settlement: BillingSettlement | None
    credits: list[CreditedMinute]
    ended_by: VisitTransition | None  # how the visit reached its present state


_TITLES = {
    "hold": "Set aside when the visit was booked",
    "capture": "Charged for the connected time; the rest given back",
    "release": "Given back in full",
}


def _account_words(account: LedgerAccount, names: dict[int, str], facility: Facility) -> str:
    who = names.get(account.visitor_id or 0, "the visitor")
    return {
        AccountKind.VISITOR_WALLET: f"{who}'s wallet",
        AccountKind.VISITOR_HOLD: f"Set aside for {who}'s visits",
        AccountKind.FACILITY_REVENUE: f"{facility.name} revenue",
        AccountKind.PAYMENTS_RECEIVED: "Payments received",
        AccountKind.REFUNDS_PAID: "Refunds paid out",
    }[account.kind]


def money_trail(session: Session, facility: Facility, visit: Visit) -> MoneyTrail:
    """Every ledger entry of ``visit`` (its hold, capture or release), oldest first, with
    what was still set aside after each step, and the settlement's split and credits.
    The caller has checked that the visit is the facility's."""
    visitor = session.get(Visitor, visit.visitor_id)
    resident = session.get(Resident, visit.resident_id)
    names = {visit.visitor_id: visitor.legal_name if visitor else "the visitor"}
    txns = session.scalars(
        select(LedgerTransaction)
        .where(LedgerTransaction.visit_id == visit.id)
        .order_by(LedgerTransaction.id)
    ).all()
    rows = session.execute(
        select(LedgerEntry.transaction_id, LedgerEntry.amount_cents, LedgerAccount)
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .where(LedgerEntry.transaction_id.in_([t.id for t in txns]))
        .order_by(LedgerEntry.id)
    ).all()
    by_txn: dict[int, list[tuple[int, LedgerAccount]]] = {}
    for txn_id, amount, account in rows:
        by_txn.setdefault(txn_id, []).append((amount, account))
    steps, held = [], 0
    for txn in txns:
        entries = by_txn.get(txn.id, [])
        held += sum(a for a, acct in entries if acct.kind == AccountKind.VISITOR_HOLD)
        steps.append(
            TrailStep(
                at=txn.created_at,
                transaction_id=txn.id,
                kind=txn.kind,
                title=_TITLES.get(txn.kind, txn.kind),
                memo=txn.memo,
                entries=[
                    TrailEntry(_account_words(acct, names, facility), amount)
                    for amount, acct in entries
                ],
                held_after_cents=held,
            )
        )
    settlement = session.get(BillingSettlement, visit.id)
    ended_by = session.scalar(
        select(VisitTransition)
        .where(VisitTransition.visit_id == visit.id, VisitTransition.to_state == visit.state.value)
        .order_by(VisitTransition.id.desc())
        .limit(1)
    )
    return MoneyTrail(
        visit=visit,
        visitor_name=names[visit.visitor_id],
        resident_name=f"{resident.first_name} {resident.last_name}" if resident else "",
        booked_minutes=int((visit.ends_at - visit.starts_at).total_seconds() // 60),
        rate_cents_per_minute=Decimal(visit.rate_cents_per_minute),
        steps=steps,
        held_now_cents=held,
        settlement=settlement,
        credits=credited_minutes(visit, settlement, for_staff=True),
        ended_by=ended_by,
    )


# --- refunds issued -----------------------------------------------------------------------


@dataclass(frozen=True)
class RefundLine:
    at: dt.datetime
    transaction_id: int
    visitor_id: int
    visitor_name: str
    visitor_email: str
    amount_cents: int  # paid out (positive)
    reason: str  # on_request | inactivity | account_closure
    reason_words: str
    payout: str


@dataclass(frozen=True)
class Refunds:
    span: DateRange
    lines: list[RefundLine]  # newest first

    @property
    def total_cents(self) -> int:
        return sum(line.amount_cents for line in self.lines)

    def totals_by_reason(self) -> list[tuple[str, int, int]]:
        """(reason in words, how many, cents) for each reason, in a fixed order."""
        out = []
        for _prefix, (reason, words) in REFUND_REASONS.items():
            mine = [line for line in self.lines if line.reason == reason]
            out.append((words, len(mine), sum(line.amount_cents for line in mine)))
        return out


def _linked_visitor_ids(facility_id: int) -> Select[Any]:
    """Visitors linked to the facility: they asked to visit someone there. A wallet is the
    family's, not a facility's, so a family linked to two facilities is listed by both.
    Money moved by a facility is no link: before lobby deposits were limited to linked
    families, another facility's staff could put money into any wallet, and their refunds
    list then showed that family (issue 10, item 2)."""
    return approvals.visitor_ids_at(facility_id)


def refunds_for_facility(session: Session, facility: Facility, span: DateRange) -> Refunds:
    """Refunds paid out to the facility's families on the days of ``span``: who, when, how
    much, and why (on request, after 180 days unused, on account closure)."""
    lo, hi = span.utc_bounds()
    rows = session.execute(
        select(
            LedgerTransaction,
            LedgerAccount.visitor_id,
            LedgerEntry.amount_cents,
            Visitor.legal_name,
            Visitor.email,
        )
        .join(LedgerEntry, LedgerEntry.transaction_id == LedgerTransaction.id)
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .join(Visitor, Visitor.id == LedgerAccount.visitor_id)
        .where(
            LedgerTransaction.kind == "refund",
            LedgerAccount.kind == AccountKind.VISITOR_WALLET,
            LedgerTransaction.created_at >= lo,
            LedgerTransaction.created_at < hi,
            LedgerAccount.visitor_id.in_(_linked_visitor_ids(facility.id)),
        )
        .order_by(LedgerTransaction.created_at.desc(), LedgerTransaction.id.desc())
    ).all()
    lines = []
    for txn, visitor_id, amount, name, email in rows:
        reason, words = REFUND_REASONS.get(txn.idempotency_key.split(":", 1)[0], ("other", "Other"))
        lines.append(
            RefundLine(
                at=txn.created_at,
                transaction_id=txn.id,
                visitor_id=int(visitor_id or 0),  # never 0: the join is on the visitor
                visitor_name=name,
                visitor_email=email,
                amount_cents=-amount,
                reason=reason,
                reason_words=words,
                payout=payout_reference(txn),
            )
        )
    return Refunds(span, lines)
