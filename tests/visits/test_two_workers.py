"""Two worker nodes at once act on each visit deadline exactly once (PostgreSQL).

Runs against a database of its own, with committed data and two threads, each
with its own connection and transaction, released together.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from openvisit.audit.service import AuditActor
from openvisit.clock import FrozenClock
from openvisit.config import Settings
from openvisit.db import make_engine, make_sessionmaker
from openvisit.scheduling import service as scheduling
from openvisit.visits import service
from openvisit.visits.models import Visit, VisitEvent, VisitState, VisitTransition, VisitType
from tests.pg import ADMIN_URL, throwaway_database

from ..scheduling.test_booking_race import NOW, START, _world

VISITS = 12


@pytest.fixture
def pg_own_db(pg_url) -> Iterator[str]:
    """A database of its own (``pg_url`` only to skip, or fail in CI, without PostgreSQL)."""
    with throwaway_database(ADMIN_URL, prefix="openvisit_nodes") as url:
        yield url


def _book_visits(url: str) -> None:
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    with factory() as session:
        residents, visitors = _world(
            session,
            units=1,
            kiosks_per_unit=VISITS,
            residents=VISITS,
            visitors=VISITS,
            pairs=[(i, i) for i in range(VISITS)],
        )
    with factory() as session:
        for i in range(VISITS):
            scheduling.book(
                session,
                FrozenClock(NOW),
                AuditActor("visitor", visitors[i], "v"),
                resident_id=residents[i],
                visitor_id=visitors[i],
                visit_type=VisitType.REMOTE,
                start=START,
                length_minutes=30,
            )
        session.commit()
    engine.dispose()


def _two_nodes_tick(url: str, at: dt.datetime, settings: Settings) -> list[int]:
    engine = make_engine(url, pool_size=2, max_overflow=0)
    factory = make_sessionmaker(engine)
    barrier = threading.Barrier(2)
    acted = [0, 0]
    errors: list[BaseException] = []

    def node(index: int) -> None:
        session = factory()
        try:
            barrier.wait()
            acted[index] = service.advance_visits(session, FrozenClock(at), settings)
            session.commit()
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)
            session.rollback()
        finally:
            session.close()

    threads = [threading.Thread(target=node, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    engine.dispose()
    assert errors == []
    return acted


def _count(url: str, query) -> int:
    engine = make_engine(url)
    with make_sessionmaker(engine)() as session:
        value = session.scalar(query)
    engine.dispose()
    return value


def test_two_worker_nodes_open_warn_and_end_each_visit_exactly_once(pg_own_db, settings):
    _book_visits(pg_own_db)
    opens = START - dt.timedelta(minutes=10)
    ends = START + dt.timedelta(minutes=30)
    for at in (opens, opens, ends - dt.timedelta(minutes=5), ends, ends):
        _two_nodes_tick(pg_own_db, at, settings)
    for to_state in ("open", "missed"):
        assert (
            _count(
                pg_own_db,
                select(func.count())
                .select_from(VisitTransition)
                .where(VisitTransition.to_state == to_state),
            )
            == VISITS
        )
    assert (
        _count(
            pg_own_db,
            select(func.count()).select_from(VisitEvent).where(VisitEvent.kind == "warning"),
        )
        == VISITS
    )
    assert (
        _count(
            pg_own_db,
            select(func.count()).select_from(Visit).where(Visit.state == VisitState.MISSED),
        )
        == VISITS
    )
