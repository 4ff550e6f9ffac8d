"""The regulator's rate caps, as dated data (DESIGN §4).

US FCC caps for video visits, per minute, compliance from 2026-04-06: prisons
25 cents; jails by average daily population (ADP). A new order is a new set
of records with its own effective date; the old ones stay, so a past rate can
still be checked against the cap of its day.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from openvisit.errors import Code, InvalidInput
from openvisit.facilities.models import Facility, FacilityKind


@dataclass(frozen=True)
class RateCap:
    effective: dt.date
    kind: FacilityKind
    adp_min: int  # inclusive
    adp_max: int | None  # inclusive; None: no upper bound
    cents_per_minute: Decimal
    label: str  # "jails with 350 to 999 people", for messages

    def covers(self, kind: FacilityKind, adp: int) -> bool:
        return (
            kind == self.kind
            and self.adp_min <= adp
            and (self.adp_max is None or adp <= self.adp_max)
        )


FCC_2026 = dt.date(2026, 4, 6)
CAPS: tuple[RateCap, ...] = (
    RateCap(FCC_2026, FacilityKind.PRISON, 0, None, Decimal("25"), "prisons"),
    RateCap(
        FCC_2026, FacilityKind.JAIL, 1000, None, Decimal("19"), "jails of 1,000 or more people"
    ),
    RateCap(FCC_2026, FacilityKind.JAIL, 350, 999, Decimal("19"), "jails of 350 to 999 people"),
    RateCap(FCC_2026, FacilityKind.JAIL, 100, 349, Decimal("21"), "jails of 100 to 349 people"),
    RateCap(FCC_2026, FacilityKind.JAIL, 50, 99, Decimal("25"), "jails of 50 to 99 people"),
    RateCap(FCC_2026, FacilityKind.JAIL, 0, 49, Decimal("44"), "jails of fewer than 50 people"),
)


def cap_for(kind: FacilityKind | str, adp: int, on_date: dt.date) -> RateCap | None:
    """The cap in force on ``on_date`` for this kind and size of facility (None: no cap yet)."""
    kind = FacilityKind(kind)
    in_force = [c for c in CAPS if c.effective <= on_date and c.covers(kind, adp)]
    return max(in_force, key=lambda c: c.effective) if in_force else None


def _cents(value: Decimal) -> str:
    return f"{value.normalize():f}"


def check_rate(facility: Facility, rate: Decimal, today: dt.date) -> None:
    """Refuse a remote-visit rate above the cap for this facility's tier, naming the cap."""
    cap = cap_for(facility.kind, facility.average_daily_population, today)
    if cap is None or Decimal(rate) <= cap.cents_per_minute:
        return
    message = (
        f"The rate may not be more than {_cents(cap.cents_per_minute)} cents a minute: "
        f"the FCC cap for video visits in {cap.label}, in force since "
        f"{cap.effective:%d %B %Y}."
    )
    raise InvalidInput(
        message,
        code=Code.RATE_ABOVE_CAP,
        fields={
            "remote_rate_cents_per_minute": (
                f"Enter at most {_cents(cap.cents_per_minute)} cents (FCC cap for {cap.label})"
            )
        },
        cap_cents_per_minute=_cents(cap.cents_per_minute),
        cap_effective=cap.effective.isoformat(),
    )
