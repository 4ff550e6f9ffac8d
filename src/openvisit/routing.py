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
from openvisit.facilities import pages as facilities_pages
from openvisit.facilities import routes as facilities_routes
from openvisit.people import routes as people
from openvisit.people import staff_routes
from openvisit.residents import pages as residents_pages
from openvisit.residents import routes as residents_routes
from openvisit.scheduling import routes as scheduling
from openvisit.signaling import routes as signaling
from openvisit.visits import routes as visits
from openvisit.web import routes as web

ROUTERS = [
    audit_routes.router,
    audit_pages.router,
    facilities_routes.router,
    facilities_pages.router,
    residents_routes.router,
    residents_pages.router,
]


def include_routers(app: FastAPI) -> None:
    for module in (
        web,
        staff_routes,
        people,
        approvals,
        scheduling,
        billing,
        signaling,
        visits,
    ):
        app.include_router(module.api)
        app.include_router(module.pages)
    for router in ROUTERS:
        app.include_router(router)
