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
from openvisit.errors import ERROR_RESPONSES
from openvisit.facilities import pages as facilities_pages
from openvisit.facilities import routes as facilities_routes
from openvisit.people import pages as people_pages
from openvisit.people import routes as people_routes
from openvisit.residents import pages as residents_pages
from openvisit.residents import routes as residents_routes
from openvisit.scheduling import pages as scheduling_pages
from openvisit.scheduling import routes as scheduling_routes
from openvisit.signaling import routes as signaling_routes
from openvisit.visits import pages as visits_pages
from openvisit.visits import routes as visits_routes
from openvisit.web import pages as web_pages

# Order matters where paths overlap: a literal path must be tried before a parameter in
# its place (approvals' /visits/find before scheduling's /visits/{visit_id};
# scheduling's /staff/facilities/{facility_id}/visits/new before visits' /{visit_id}).
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
    approvals_routes.router,
    approvals_pages.router,
    scheduling_routes.router,
    scheduling_pages.router,
    billing_routes.router,
    billing_pages.router,
    signaling_routes.router,
    visits_routes.router,
    visits_pages.router,
]


def include_routers(app: FastAPI) -> None:
    for router in ROUTERS:
        app.include_router(router, responses=ERROR_RESPONSES)
