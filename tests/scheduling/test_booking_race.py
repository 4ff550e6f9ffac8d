"""Never double-booked: 32 clients race for the same time, each in its own transaction.

Runs against a database of its own (committed data, real concurrency), on
PostgreSQL (exclusion constraints) and on SQLite (one writer at a time).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from openvisit.approvals.models import Approval, ApprovalStatus
from openvisit.audit.service import AuditActor
from openvisit.clock import FrozenClock
from openvisit.db import make_engine, make_sessionmaker
from openvisit.dbadmin import upgrade
from openvisit.errors import DomainError
from openvisit.facilities.models import (
    Facility,
    FacilityKind,
    FacilitySettings,
    HousingUnit,
    Kiosk,
    KioskLocation,
    VisitingHours,
)
from openvisit.people.models import IdentityStatus, Visitor
from openvisit.people.verifications import record_verification
from openvisit.residents.models import Resident
from openvisit.scheduling import service
from openvisit.visits.models import Visit, VisitType
from openvisit.visits.states import ACTIVE_STATES
from tests.billing.helpers import fund
from tests.pg import ADMIN_URL, throwaway_database
from tests.support.burst import count_overlaps

CLIENTS = 32
NOW = dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC)
START = dt.datetime(2026, 12, 3, 15, tzinfo=dt.UTC)  # 10:00 in New York


@pytest.fixture(params=["sqlite", "postgresql"])
def race_db(request, tmp_path) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'race.db'}"
        upgrade(url)
        yield url
        return
    request.getfixturevalue("pg_url")  # skipped (or failed in CI) without PostgreSQL
    with throwaway_database(ADMIN_URL, prefix="openvisit_race") as url:
        yield url


def _world(
    session: Session,
    *,
    units: int,
    kiosks_per_unit: int,
    residents: int,
    visitors: int,
    pairs: list[tuple[int, int]],
) -> tuple[list[int], list[int]]:
    facility = Facility(
        name="Race County Jail",
        timezone="America/New_York",
        kind=FacilityKind.JAIL,
        average_daily_population=500,
        created_at=NOW,
    )
    session.add(facility)
    session.flush()
    session.add(
        FacilitySettings(
            facility_id=facility.id,
            min_notice_minutes=0,
            weekly_remote_visits=50,
            approved_visitors_per_resident=50,
        )
    )
    unit_ids = []
    for u in range(units):
        unit = HousingUnit(facility_id=facility.id, name=f"Unit {u}", created_at=NOW)
        session.add(unit)
        session.flush()
        unit_ids.append(unit.id)
        for weekday in range(7):
            session.add(
                VisitingHours(
                    unit_id=unit.id, weekday=weekday, start_time=dt.time(8), end_time=dt.time(18)
                )
            )
        for k in range(kiosks_per_unit):
            session.add(
                Kiosk(
                    facility_id=facility.id,
                    unit_id=unit.id,
                    name=f"U{u} K{k}",
                    location=KioskLocation.HOUSING,
                    created_at=NOW,
                )
            )
    resident_ids, visitor_ids = [], []
    for r in range(residents):
        resident = Resident(
            facility_id=facility.id,
            booking_number=f"R{r}",
            first_name="R",
            last_name=str(r),
            date_of_birth=dt.date(1990, 1, 1),
            unit_id=unit_ids[r % units],
            created_at=NOW,
            updated_at=NOW,
        )
        session.add(resident)
        session.flush()
        resident_ids.append(resident.id)
    for v in range(visitors):
        visitor = Visitor(
            email=f"v{v}@example.com",
            password_hash="x",
            legal_name=f"V {v}",
            date_of_birth=dt.date(1980, 1, 1),
            email_verified_at=NOW,
            identity_status=IdentityStatus.VERIFIED,
            created_at=NOW,
        )
        session.add(visitor)
        session.flush()
        record_verification(session, visitor_id=visitor.id, facility_id=facility.id, at=NOW)
        fund(session, visitor.id)
        visitor_ids.append(visitor.id)
    for r, v in pairs:
        session.add(
            Approval(
                facility_id=facility.id,
                visitor_id=visitor_ids[v],
                resident_id=resident_ids[r],
                relationship="sister",
                status=ApprovalStatus.APPROVED,
                requested_at=NOW,
            )
        )
    session.commit()
    return resident_ids, visitor_ids


def _race(url: str, attempts: list[tuple[int, int, dt.datetime]]) -> list[str]:
    """Every attempt books in its own thread and transaction, released together."""
    engine = (
        make_engine(url, pool_size=CLIENTS, max_overflow=0)
        if url.startswith("postgresql")
        else make_engine(url)
    )
    factory = make_sessionmaker(engine)
    barrier = threading.Barrier(len(attempts))
    outcomes: list[str] = [""] * len(attempts)

    def attempt(index: int, resident_id: int, visitor_id: int, start: dt.datetime) -> None:
        session = factory()
        barrier.wait()
        try:
            service.book(
                session,
                FrozenClock(NOW),
                AuditActor("visitor", visitor_id, "v"),
                resident_id=resident_id,
                visitor_id=visitor_id,
                visit_type=VisitType.REMOTE,
                start=start,
                length_minutes=30,
            )
            session.commit()
            outcomes[index] = "booked"
        except DomainError as exc:
            session.rollback()
            outcomes[index] = exc.code
        finally:
            session.close()

    threads = [threading.Thread(target=attempt, args=(i, *a)) for i, a in enumerate(attempts)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    engine.dispose()
    return outcomes


def _overlaps(url: str) -> int:
    engine = make_engine(url)
    with Session(engine) as session:
        visits = session.scalars(select(Visit).where(Visit.state.in_(ACTIVE_STATES))).all()
    engine.dispose()
    return count_overlaps(visits)


def _setup(url: str, **world) -> tuple[list[int], list[int]]:
    engine = make_engine(url)
    with make_sessionmaker(engine)() as session:
        ids = _world(session, **world)
    engine.dispose()
    return ids


def test_32_clients_racing_for_one_kiosk_slot_book_it_exactly_once(race_db):
    residents, visitors = _setup(
        race_db,
        units=1,
        kiosks_per_unit=1,
        residents=CLIENTS,
        visitors=CLIENTS,
        pairs=[(i, i) for i in range(CLIENTS)],
    )
    outcomes = _race(race_db, [(residents[i], visitors[i], START) for i in range(CLIENTS)])
    assert outcomes.count("booked") == 1
    assert outcomes.count("slot_taken") == CLIENTS - 1
    assert _overlaps(race_db) == 0


def test_32_visitors_racing_for_one_resident_at_overlapping_times_book_once(race_db):
    residents, visitors = _setup(
        race_db,
        units=1,
        kiosks_per_unit=4,
        residents=1,
        visitors=CLIENTS,
        pairs=[(0, v) for v in range(CLIENTS)],
    )
    starts = [START + dt.timedelta(minutes=10 * (i % 3)) for i in range(CLIENTS)]
    outcomes = _race(race_db, [(residents[0], visitors[i], starts[i]) for i in range(CLIENTS)])
    assert outcomes.count("booked") == 1
    assert outcomes.count("slot_taken") == CLIENTS - 1
    assert _overlaps(race_db) == 0


def test_one_visitor_racing_for_32_residents_at_overlapping_times_books_once(race_db):
    residents, visitors = _setup(
        race_db,
        units=CLIENTS,
        kiosks_per_unit=1,
        residents=CLIENTS,
        visitors=1,
        pairs=[(r, 0) for r in range(CLIENTS)],
    )
    starts = [START + dt.timedelta(minutes=10 * (i % 3)) for i in range(CLIENTS)]
    outcomes = _race(race_db, [(residents[i], visitors[0], starts[i]) for i in range(CLIENTS)])
    assert outcomes.count("booked") == 1
    assert outcomes.count("slot_taken") == CLIENTS - 1
    assert _overlaps(race_db) == 0
