"""Annotated dependencies shared by every router."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from sqlalchemy.orm import Session
from starlette.requests import HTTPConnection

from openvisit.auth.addresses import client_address
from openvisit.auth.cookies import KIOSK_COOKIE, SESSION_COOKIE
from openvisit.auth.permissions import Permission

# Every id parameter is an ``Id``: 1..MAX_ID, ASCII digits (openvisit.bounds).
from openvisit.bounds import MAX_ID as MAX_ID
from openvisit.bounds import Id as Id
from openvisit.clock import Clock
from openvisit.config import Settings
from openvisit.db import request_transaction
from openvisit.errors import Forbidden, NotAuthenticated
from openvisit.facilities.models import Facility
from openvisit.facilities.service import access_facility
from openvisit.people.context import (
    KioskContext,
    StaffContext,
    VisitorContext,
    kiosk_signed_in,
    staff_signed_in,
    visitor_signed_in,
)


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_clock(request: Request) -> Clock:
    clock: Clock = request.app.state.clock
    return clock


async def get_db(request: Request) -> AsyncIterator[Session]:
    """The request's session, in a turn of the database gate (db.RequestGate: at most
    db_pool_size requests in the database at once, waiting bounded, 503 busy past it)."""
    state = request.app.state
    async with request_transaction(state.sessionmaker, state.db_gate) as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings)]
ClockDep = Annotated[Clock, Depends(get_clock)]
# scope="function": commit before the response is sent, so that a response
# never claims something that did not commit.
DbSession = Annotated[Session, Depends(get_db, scope="function")]


def client_ip(request: HTTPConnection) -> str:
    """The client's address: the peer's, or what a trusted proxy says (auth.addresses)."""
    peer = request.client.host if request.client else ""
    settings: Settings = request.app.state.settings
    header = request.headers.getlist(settings.trusted_proxy_header)
    return client_address(peer, header, settings)


def optional_visitor(request: Request, db: DbSession, clock: ClockDep) -> VisitorContext | None:
    token = request.cookies.get(SESSION_COOKIE)
    return visitor_signed_in(db, token, clock.now(), client_ip(request))


def current_visitor(
    ctx: Annotated[VisitorContext | None, Depends(optional_visitor)],
) -> VisitorContext:
    if ctx is None:
        raise NotAuthenticated("Please sign in to continue.", audience="visitor")
    return ctx


def optional_staff(request: Request, db: DbSession, clock: ClockDep) -> StaffContext | None:
    token = request.cookies.get(SESSION_COOKIE)
    return staff_signed_in(db, token, clock.now(), client_ip(request))


def current_staff(ctx: Annotated[StaffContext | None, Depends(optional_staff)]) -> StaffContext:
    if ctx is None:
        raise NotAuthenticated("Please sign in as staff to continue.", audience="staff")
    return ctx


def optional_kiosk(request: Request, db: DbSession, clock: ClockDep) -> KioskContext | None:
    token = request.cookies.get(KIOSK_COOKIE)
    return kiosk_signed_in(db, token, clock.now(), client_ip(request))


def current_kiosk(ctx: Annotated[KioskContext | None, Depends(optional_kiosk)]) -> KioskContext:
    if ctx is None:
        raise NotAuthenticated("This kiosk is not set up. Ask an officer.", audience="kiosk")
    return ctx


def current_resident(ctx: Annotated[KioskContext, Depends(current_kiosk)]) -> KioskContext:
    if ctx.resident_id is None:
        raise NotAuthenticated("Please sign in with your booking number and PIN.", audience="kiosk")
    return ctx


OptionalVisitor = Annotated[VisitorContext | None, Depends(optional_visitor)]
CurrentVisitor = Annotated[VisitorContext, Depends(current_visitor)]
OptionalStaff = Annotated[StaffContext | None, Depends(optional_staff)]
CurrentStaff = Annotated[StaffContext, Depends(current_staff)]
OptionalKiosk = Annotated[KioskContext | None, Depends(optional_kiosk)]
CurrentKiosk = Annotated[KioskContext, Depends(current_kiosk)]
CurrentResident = Annotated[KioskContext, Depends(current_resident)]


@dataclass(frozen=True)
class FacilityAccess:
    """The dependency behind ``FacilityFor``: its permission is what the route declares.

    The authorization matrix test finds it on every route (``declared_access``),
    so a facility-scoped route without one fails that test.
    """

    permission: Permission

    def __call__(
        self,
        facility_id: Id,
        staff: CurrentStaff,
        db: DbSession,
    ) -> Facility:
        return access_facility(db, staff, facility_id, self.permission)


@dataclass(frozen=True)
class StaffPermission:
    """A staff route that is not about one facility (creating facilities, the
    visitor review queues across facilities): the permission held anywhere."""

    permission: Permission

    def __call__(self, staff: CurrentStaff) -> StaffContext:
        if not any(staff.can(fid, self.permission) for fid in [None, *staff.roles]):
            raise Forbidden("Your role doesn't allow that.")
        return staff


def FacilityFor(permission: Permission) -> Any:
    """``facility: Annotated[Facility, FacilityFor(Permission.X)]`` declares the
    permission, authorizes the signed-in staff member at ``{facility_id}`` (another
    facility's id is "not found", a missing permission "forbidden", nobody signed
    in "please sign in") and hands the route its facility."""
    return Depends(FacilityAccess(permission))


def StaffWith(permission: Permission) -> Any:
    """``staff: Annotated[StaffContext, StaffWith(Permission.X)]`` for staff routes
    that are not scoped to one facility."""
    return Depends(StaffPermission(permission))


# The facility a route works on, authorized for one permission: one alias per permission,
# shared by every domain's routes and pages.
ViewedFacility = Annotated[Facility, FacilityFor(Permission.VIEW_FACILITY)]
ManagedFacility = Annotated[Facility, FacilityFor(Permission.MANAGE_FACILITY)]
ClosuresFacility = Annotated[Facility, FacilityFor(Permission.MANAGE_CLOSURES)]
ResidentsViewedFacility = Annotated[Facility, FacilityFor(Permission.VIEW_RESIDENTS)]
ResidentsManagedFacility = Annotated[Facility, FacilityFor(Permission.MANAGE_RESIDENTS)]
ReviewingFacility = Annotated[Facility, FacilityFor(Permission.REVIEW_VISITORS)]
VisitsFacility = Annotated[Facility, FacilityFor(Permission.MANAGE_VISITS)]
MonitoredFacility = Annotated[Facility, FacilityFor(Permission.MONITOR_VISITS)]
AuditedFacility = Annotated[Facility, FacilityFor(Permission.VIEW_AUDIT)]
BillingFacility = Annotated[Facility, FacilityFor(Permission.VIEW_BILLING)]
StaffingFacility = Annotated[Facility, FacilityFor(Permission.MANAGE_STAFF)]


def declared_access(dependant: Dependant) -> Permission | None:
    """The permission a route declares through FacilityFor or StaffWith, if any."""
    for dep in dependant.dependencies:
        if isinstance(dep.call, FacilityAccess | StaffPermission):
            return dep.call.permission
        found = declared_access(dep)
        if found is not None:
            return found
    return None
