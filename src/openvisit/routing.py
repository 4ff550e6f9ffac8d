"""Every domain's routers, mounted here and nowhere else.

Each domain has ``routes.py`` (the JSON API) and ``pages.py`` (HTML), each
exporting ``router``.
"""

from __future__ import annotations

from fastapi import FastAPI

from openvisit.approvals import pages as approvals_pages
from openvisit.approvals import routes as approvals_routes
from openvisit.audit import pages as audit_pages
from openvisit.audit import routes as audit_routes
from openvisit.billing import pages as billing_pages
from openvisit.billing import routes as billing_routes
from openvisit.facilities import kiosk_routes as kiosk_devices
from openvisit.facilities import routes as facilities
from openvisit.people import routes as people
from openvisit.people import staff_routes
from openvisit.residents import kiosk_routes as kiosk_residents
from openvisit.residents import routes as residents
from openvisit.scheduling import routes as scheduling
from openvisit.signaling import routes as signaling
from openvisit.visits import routes as visits
from openvisit.web import routes as web

# Mounted before the modules below: a literal path (/visits/find) must be tried before
# a parameter one (scheduling's /visits/{visit_id}).
ROUTERS = [
    audit_routes.router,
    audit_pages.router,
    approvals_routes.router,
    approvals_pages.router,
    billing_routes.router,
    billing_pages.router,
]


def include_routers(app: FastAPI) -> None:
    for router in ROUTERS:
        app.include_router(router)
    for module in (
        web,
        staff_routes,
        people,
        facilities,
        kiosk_devices,
        residents,
        kiosk_residents,
        scheduling,
        signaling,
        visits,
    ):
        app.include_router(module.api)
        app.include_router(module.pages)
