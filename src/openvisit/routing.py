"""Every domain's routers, in one list."""

from __future__ import annotations

from fastapi import FastAPI


def include_routers(app: FastAPI) -> None:
    from openvisit.approvals import routes as approvals
    from openvisit.audit import routes as audit
    from openvisit.billing import routes as billing
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

    for module in (
        web,
        staff_routes,
        people,
        facilities,
        kiosk_devices,
        residents,
        kiosk_residents,
        audit,
        approvals,
        scheduling,
        billing,
        signaling,
        visits,
    ):
        app.include_router(module.api)
        app.include_router(module.pages)
