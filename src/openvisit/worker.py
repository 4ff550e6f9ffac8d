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
from functools import partial
from typing import Any

from sqlalchemy.orm import Session

from openvisit.billing import refunds, settlement
from openvisit.billing.gateway import PaymentGateway
from openvisit.clock import Clock
from openvisit.config import Settings
from openvisit.db import transaction
from openvisit.notifications import service as notifications
from openvisit.people import identity
from openvisit.visits import service as visits

log = logging.getLogger(__name__)

Job = Callable[[Session, Clock, Settings], Any]


def _deliver_mail(session: Session, clock: Clock, settings: Settings) -> Any:
    return notifications.deliver_pending(session, clock, settings)


def _advance_visits(session: Session, clock: Clock, settings: Settings) -> Any:
    return visits.advance_visits(session, clock, settings)


def _purge_identity_documents(session: Session, clock: Clock, settings: Settings) -> Any:
    return identity.purge_expired_documents(session, clock, settings)


def _settle_visit_money(session: Session, clock: Clock, settings: Settings) -> Any:
    return settlement.settle_pending(session, clock, settings)


_last_inactivity_scan: list[float] = []


def _refund_inactive_wallets(
    session: Session, clock: Clock, settings: Settings, *, gateway: PaymentGateway | None
) -> Any:
    """Hourly at most: it scans every wallet. A restart simply scans again (it is idempotent)."""
    if gateway is None:
        return 0  # no payment gateway is wired; nothing is taken meanwhile either
    now = clock.now().timestamp()
    if _last_inactivity_scan and now - _last_inactivity_scan[0] < 3600:
        return 0
    _last_inactivity_scan[:] = [now]
    return refunds.refund_inactive_wallets(session, clock, settings, gateway)


def jobs(gateway: PaymentGateway | None) -> list[tuple[str, Job]]:
    """One tick's jobs, in order; ``gateway`` is the app's payment gateway, chosen at
    start-up (none: no money is paid out). Visits move first, so that money settles for
    what just ended in the same tick."""
    return [
        ("advance visits", _advance_visits),
        ("settle visit money", _settle_visit_money),
        ("refund inactive wallets", partial(_refund_inactive_wallets, gateway=gateway)),
        ("deliver mail", _deliver_mail),
        ("purge identity documents", _purge_identity_documents),
    ]


def run_jobs_once(
    sessionmaker: Any, clock: Clock, settings: Settings, gateway: PaymentGateway | None = None
) -> None:
    for name, job in jobs(gateway):
        try:
            with transaction(sessionmaker) as session:
                job(session, clock, settings)
        except Exception:
            log.exception("worker job %r failed; it will run again at the next tick", name)


async def run_forever(
    sessionmaker: Any, clock: Clock, settings: Settings, *, gateway: PaymentGateway | None
) -> None:
    while True:
        await asyncio.to_thread(run_jobs_once, sessionmaker, clock, settings, gateway)
        await asyncio.sleep(settings.worker_interval_seconds)
