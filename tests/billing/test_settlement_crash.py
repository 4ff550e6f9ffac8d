"""A settlement killed half-way completes exactly once when it runs again (PostgreSQL).

A real `python` process runs the worker's settlement job against a database of its own and
stops at a pause point between two steps (the test patches it in, in that process only);
the test kills it there with SIGKILL, as a crash or an OOM kill would, then runs the job
again in a fresh process. The ledger must then show one capture and one release, no hold
left, and every invariant intact.
"""

from __future__ import annotations

import datetime as dt
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, text
from sqlalchemy import select as sql_select

import openvisit
from openvisit.audit.service import AuditActor
from openvisit.billing import ledger
from openvisit.billing import service as billing
from openvisit.billing.models import AccountKind, BillingSettlement, LedgerTransaction
from openvisit.clock import FrozenClock
from openvisit.config import Settings
from openvisit.db import make_engine, make_sessionmaker
from openvisit.scheduling import service as scheduling
from openvisit.visits import service as visits
from openvisit.visits.models import Visit, VisitState, VisitType
from tests.scheduling.test_booking_race import NOW, START, _world
from tests.visits.test_two_workers import pg_own_db  # noqa: F401 - a fixture

pytestmark = pytest.mark.postgres

SETTLED_AT = START + dt.timedelta(hours=6)
# The worker's job, in a process of its own. With a pause step n > 0, the n-th time a visit
# is about to be marked settled (its ledger transaction already posted, in the job's open
# transaction), the process says PAUSED and waits to be killed.
CHILD = """
import datetime as dt, sys, time
from openvisit.billing import settlement
from openvisit.clock import FrozenClock
from openvisit.config import Settings
from openvisit.db import make_engine, make_sessionmaker

url, pause_at, at, var_dir = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
if pause_at:
    mark, calls = settlement._mark_settled, []

    def mark_after_a_pause(*args, **kwargs):
        calls.append(1)
        if len(calls) == pause_at:
            print("PAUSED", flush=True)
            time.sleep(600)  # until the test kills this process
        return mark(*args, **kwargs)

    settlement._mark_settled = mark_after_a_pause
settings = Settings(env="test", database_url=url, secret_key="crash-test", var_dir=var_dir)
engine = make_engine(url)
with make_sessionmaker(engine)() as session:
    done = settlement.settle_pending(session, FrozenClock(dt.datetime.fromisoformat(at)), settings)
    session.commit()
print(f"SETTLED {done}", flush=True)
"""


def _child(url: str, pause_at: int, var_dir: Path) -> subprocess.Popen[str]:
    src = str(Path(openvisit.__file__).resolve().parents[1])  # this checkout's package
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, url, str(pause_at), SETTLED_AT.isoformat(), str(var_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": src},
    )


def _read_line(proc: subprocess.Popen[str], deadline_s: float = 60) -> str:
    """The child's next line of output, waiting at most ``deadline_s``."""
    assert proc.stdout is not None
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], deadline - time.monotonic())
        if ready:
            line = proc.stdout.readline()
            if line or proc.poll() is not None:
                return line.strip()
    raise AssertionError("the settlement process said nothing in time")


def _one_visit_live_and_one_cancelled(url: str) -> tuple[int, int]:
    """Visit A went live (the resident joined 20 minutes late: 600 s connected) and completed;
    visit B was cancelled by the family. Both hold $4.50; neither is settled yet."""
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    settings = Settings(env="test", database_url=url, secret_key="crash-test")
    with factory() as session:
        residents, visitors = _world(
            session, units=1, kiosks_per_unit=2, residents=2, visitors=2, pairs=[(0, 0), (1, 1)]
        )
    clock = FrozenClock(NOW)
    with factory() as session:
        ids = []
        for i, start in enumerate((START, START + dt.timedelta(days=1))):
            visit = scheduling.book(
                session,
                clock,
                AuditActor("visitor", visitors[i], "v"),
                resident_id=residents[i],
                visitor_id=visitors[i],
                visit_type=VisitType.REMOTE,
                start=start,
                length_minutes=30,
            )
            ids.append(visit.id)
        session.commit()
    a, b = ids
    with factory() as session:
        clock.set(START - dt.timedelta(minutes=10))
        visits.advance_visits(session, clock, settings)
        live = session.get(Visit, a)
        visits.record_event(session, live, kind="media_up", party="visitor", at=START)
        late = START + dt.timedelta(minutes=20)
        visits.record_event(session, live, kind="media_up", party="resident", at=late)
        clock.set(START + dt.timedelta(minutes=30))
        visits.advance_visits(session, clock, settings)
        assert session.get(Visit, a).state == VisitState.COMPLETED
        scheduling.cancel(
            session,
            clock,
            AuditActor("visitor", visitors[1], "v"),
            session.get(Visit, b),
            cause="visitor",
            reason="Sick",
        )
        session.commit()
    engine.dispose()
    return a, b


def _writing_transactions(url: str) -> int:
    """Open transactions on this database that have written something (PostgreSQL gives a
    transaction an id at its first write)."""
    engine = make_engine(url)
    with engine.connect() as conn:
        found = conn.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND state = 'idle in transaction' AND backend_xid IS NOT NULL"
            )
        ).scalar_one()
    engine.dispose()
    return int(found)


def _money(url: str, a: int, b: int) -> dict:
    engine = make_engine(url)
    with make_sessionmaker(engine)() as session:
        kinds = session.execute(
            sql_select(LedgerTransaction.visit_id, LedgerTransaction.kind).where(
                LedgerTransaction.visit_id.in_([a, b])
            )
        ).all()
        facility_id = session.get(Visit, a).facility_id
        revenue = ledger.find_account(session, AccountKind.FACILITY_REVENUE, facility_id)
        result = {
            "a": sorted(k for v, k in kinds if v == a),
            "b": sorted(k for v, k in kinds if v == b),
            "settlements": session.scalar(sql_select(func.count()).select_from(BillingSettlement)),
            "held": (billing.visit_hold_cents(session, a), billing.visit_hold_cents(session, b)),
            "revenue": ledger.balance(session, revenue.id if revenue else None),
            "report": ledger.check_invariants(session),
        }
    engine.dispose()
    return result


@pytest.mark.parametrize(
    "pause_at",
    [
        pytest.param(1, id="killed after A's capture was posted, before A was marked settled"),
        pytest.param(2, id="killed after A settled and B's release was posted, before B's mark"),
    ],
)
def test_a_settlement_killed_between_steps_completes_exactly_once_on_restart(
    pg_own_db,  # noqa: F811
    tmp_path,
    pause_at,
):
    a, b = _one_visit_live_and_one_cancelled(pg_own_db)

    crashed = _child(pg_own_db, pause_at, tmp_path)
    try:
        assert _read_line(crashed) == "PAUSED"
        # Half-way: it has written (its transaction has an id) but not committed, so what
        # it wrote is invisible to everyone else and not durable.
        assert _writing_transactions(pg_own_db) == 1
        assert _money(pg_own_db, a, b)["settlements"] == 0
        crashed.send_signal(signal.SIGKILL)
        assert crashed.wait(timeout=30) == -signal.SIGKILL
    finally:
        if crashed.poll() is None:
            crashed.kill()
    after_crash = _money(pg_own_db, a, b)
    assert (after_crash["a"], after_crash["b"], after_crash["settlements"]) == (
        ["hold"],
        ["hold"],
        0,
    )
    assert after_crash["held"] == (450, 450)

    restarted = _child(pg_own_db, 0, tmp_path)
    assert _read_line(restarted) == "SETTLED 2", restarted.stderr.read() if restarted.stderr else ""
    assert restarted.wait(timeout=30) == 0
    again = _child(pg_own_db, 0, tmp_path)
    assert _read_line(again) == "SETTLED 0"  # and a third run finds nothing left to do
    assert again.wait(timeout=30) == 0

    money = _money(pg_own_db, a, b)
    assert money["a"] == ["capture", "hold"]  # exactly one capture
    assert money["b"] == ["hold", "release"]  # exactly one release
    assert money["settlements"] == 2
    assert money["held"] == (0, 0)
    assert money["revenue"] == 150  # 600 s x 15 c / 60
    assert money["report"].ok, money["report"].problems
