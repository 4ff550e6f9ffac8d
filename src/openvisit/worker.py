"""The worker loop that `openvisit serve` runs beside the web app.

Each job runs in its own transaction in a thread, so the event loop that
serves pages and WebSockets is never blocked by it. Jobs must be safe to run
on several nodes at once and after a restart (they act on stored state with
compare-and-set updates), so a missed or repeated tick changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from openvisit.clock import Clock
from openvisit.config import Settings
from openvisit.db import transaction

log = logging.getLogger(__name__)

Job = Callable[[Session, Clock, Settings], Any]


def _deliver_mail(session: Session, clock: Clock, settings: Settings) -> Any:
    from openvisit.notifications import service as notifications

    return notifications.deliver_pending(session, clock, settings)


def _advance_visits(session: Session, clock: Clock, settings: Settings) -> Any:
    from openvisit.visits import service as visits

    return visits.advance_visits(session, clock, settings)


def _settle_visit_money(session: Session, clock: Clock, settings: Settings) -> Any:
    from openvisit.billing import service as billing

    return billing.settle_pending(session, clock, settings)


_last_inactivity_scan: list[float] = []


def _refund_inactive_wallets(session: Session, clock: Clock, settings: Settings) -> Any:
    """Hourly at most: it scans every wallet. A restart simply scans again (it is idempotent)."""
    from openvisit.billing import service as billing
    from openvisit.billing.gateway import SandboxGateway

    if settings.env == "production":
        return 0  # no real payment gateway is wired yet; nothing is taken meanwhile either
    now = clock.now().timestamp()
    if _last_inactivity_scan and now - _last_inactivity_scan[0] < 3600:
        return 0
    _last_inactivity_scan[:] = [now]
    return billing.refund_inactive_wallets(session, clock, settings, SandboxGateway())


# Visits move first, so that money settles for what just ended in the same tick.
JOBS: list[tuple[str, Job]] = [
    ("advance visits", _advance_visits),
    ("settle visit money", _settle_visit_money),
    ("refund inactive wallets", _refund_inactive_wallets),
    ("deliver mail", _deliver_mail),
]


def run_jobs_once(sessionmaker: Any, clock: Clock, settings: Settings) -> None:
    for name, job in JOBS:
        try:
            with transaction(sessionmaker) as session:
                job(session, clock, settings)
        except Exception:
            log.exception("worker job %r failed; it will run again at the next tick", name)


async def run_forever(sessionmaker: Any, clock: Clock, settings: Settings) -> None:
    while True:
        await asyncio.to_thread(run_jobs_once, sessionmaker, clock, settings)
        await asyncio.sleep(settings.worker_interval_seconds)
