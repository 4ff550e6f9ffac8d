"""20 bookings at once, in their own threads and transactions, draining one wallet:
exactly as many succeed as the money covers, and the wallet never goes below zero."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import select, update

from openvisit.billing import service as billing
from openvisit.billing.models import LedgerEntry
from openvisit.db import make_engine, make_sessionmaker
from openvisit.facilities.models import FacilitySettings
from openvisit.visits.models import Visit
from tests.scheduling.test_booking_race import START, _race, _setup, race_db  # noqa: F401

BOOKINGS = 20


def test_20_concurrent_bookings_never_drive_one_wallet_below_zero(race_db):  # noqa: F811
    residents, visitors = _setup(
        race_db,
        units=BOOKINGS,
        kiosks_per_unit=1,
        residents=BOOKINGS,
        visitors=1,
        pairs=[(r, 0) for r in range(BOOKINGS)],
    )
    engine = make_engine(race_db)
    factory = make_sessionmaker(engine)
    with factory() as session:
        # The wallet holds $100 (see _setup); at 33.33 cents a minute a 30-minute visit
        # sets aside 999.9 -> $10.00, so ten bookings fit and the eleventh does not.
        session.execute(
            update(FacilitySettings).values(remote_rate_cents_per_minute=Decimal("33.33"))
        )
        session.commit()
    first = START - dt.timedelta(hours=2)  # 08:00 in New York
    attempts = [
        (residents[i], visitors[0], first + dt.timedelta(minutes=30 * i)) for i in range(BOOKINGS)
    ]
    outcomes = _race(race_db, attempts)
    assert outcomes.count("booked") == 10, outcomes
    assert outcomes.count("insufficient_funds") == 10, outcomes
    with factory() as session:
        summary = billing.wallet_summary(session, visitors[0])
        assert summary.available_cents == 0
        assert summary.held_cents == 10_000
        assert len(session.scalars(select(Visit)).all()) == 10
        amounts = session.scalars(select(LedgerEntry.amount_cents)).all()
        assert sum(amounts) == 0
    engine.dispose()
