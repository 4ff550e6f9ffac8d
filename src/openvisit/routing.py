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
from openvisit.people import pages as people_pages
from openvisit.people import routes as people_routes
from openvisit.residents import pages as residents_pages
from openvisit.residents import routes as residents_routes
from openvisit.scheduling import pages as scheduling_pages
from openvisit.scheduling import routes as scheduling_routes
from openvisit.signaling import routes as signaling
from openvisit.visits import routes as visits
from openvisit.web import pages as web_pages

ROUTERS = [
    web_pages.router,
    people_routes.router,
    people_pages.router,
    facilities_routes.router,
    facilities_pages.router,
    residents_routes.router,
    residents_pages.router,
    audit_routes.router,
    audit_pages.router,
    scheduling_routes.router,
    scheduling_pages.router,
]


def include_routers(app: FastAPI) -> None:
    # The converted routers go first: a path with literals ("/visits/new") must be
    # mounted before one with a parameter in its place ("/visits/{visit_id}").
    for router in ROUTERS:
        app.include_router(router)
    for module in (
        approvals,
        billing,
        signaling,
        visits,
    ):
        app.include_router(module.api)
        app.include_router(module.pages)
