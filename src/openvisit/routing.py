"""Every domain's routers, mounted here and nowhere else.

Each domain has ``routes.py`` (the JSON API) and ``pages.py`` (HTML), each
exporting ``router``.
"""

from __future__ import annotations

from fastapi import FastAPI

from openvisit.approvals import routes as approvals
from openvisit.audit import pages as audit_pages
from openvisit.audit import routes as audit_routes
from openvisit.billing import routes as billing
from openvisit.facilities import kiosk_routes as kiosk_devices
from openvisit.facilities import routes as facilities
from openvisit.people import routes as people
from openvisit.people import staff_routes
from openvisit.residents import kiosk_routes as kiosk_residents
from openvisit.residents import routes as residents
from openvisit.scheduling import routes as scheduling
from openvisit.signaling import routes as signaling
from openvisit.visits import pages as visits_pages
from openvisit.visits import routes as visits_routes
from openvisit.web import routes as web

ROUTERS = [
    audit_routes.router,
    audit_pages.router,
    signaling.router,
    visits_routes.router,
    # After scheduling's pages: /staff/facilities/{id}/visits/new is matched before
    # the staff visit page's /staff/facilities/{id}/visits/{visit_id}.
    visits_pages.router,
]


def include_routers(app: FastAPI) -> None:
    for module in (
        web,
        staff_routes,
        people,
        facilities,
        kiosk_devices,
        residents,
        kiosk_residents,
        approvals,
        scheduling,
        billing,
    ):
        app.include_router(module.api)
        app.include_router(module.pages)
    for router in ROUTERS:
        app.include_router(router)
