"""Annotated dependencies shared by every router."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from openvisit.auth import service as auth
from openvisit.auth.context import (
    KIOSK_COOKIE,
    SESSION_COOKIE,
    KioskContext,
    StaffContext,
    VisitorContext,
)
from openvisit.clock import Clock
from openvisit.config import Settings
from openvisit.errors import DomainError, NotAuthenticated
from openvisit.facilities.models import Kiosk
from openvisit.people.models import StaffMember, StaffRole, Visitor

# How often a session's last_seen_at is refreshed (it costs a write).
_TOUCH_EVERY = dt.timedelta(minutes=5)


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_clock(request: Request) -> Clock:
    return request.app.state.clock


def get_db(request: Request) -> Iterator[Session]:
    session: Session = request.app.state.sessionmaker()
    try:
        yield session
        session.commit()
    except DomainError as exc:
        if exc.keep_changes:
            session.commit()
        else:
            session.rollback()
        raise
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


SettingsDep = Annotated[Settings, Depends(get_settings)]
ClockDep = Annotated[Clock, Depends(get_clock)]
# scope="function": commit before the response is sent, so that a response
# never claims something that did not commit.
DbSession = Annotated[Session, Depends(get_db, scope="function")]


def client_ip(request: Request) -> str:
    return request.client.host if request.client else ""


def _touch(row, now: dt.datetime) -> None:  # type: ignore[no-untyped-def]
    if now - row.last_seen_at > _TOUCH_EVERY:
        row.last_seen_at = now


def optional_visitor(request: Request, db: DbSession, clock: ClockDep) -> VisitorContext | None:
    now = clock.now()
    row = auth.find_session(db, request.cookies.get(SESSION_COOKIE), now)
    if row is None or row.actor_type != "visitor" or row.second_factor_pending:
        return None
    visitor = db.get(Visitor, row.actor_id)
    if visitor is None or visitor.closed_at is not None:
        return None
    _touch(row, now)
    return VisitorContext(visitor=visitor, session=row, ip=client_ip(request))


def current_visitor(
    ctx: Annotated[VisitorContext | None, Depends(optional_visitor)],
) -> VisitorContext:
    if ctx is None:
        raise NotAuthenticated("Please sign in to continue.", audience="visitor")
    return ctx


def load_staff(db: Session, row, ip: str) -> StaffContext | None:  # type: ignore[no-untyped-def]
    member = db.get(StaffMember, row.actor_id)
    if member is None or not member.is_active:
        return None
    roles: dict[int | None, set] = {}
    for role in db.scalars(select(StaffRole).where(StaffRole.staff_id == member.id)):
        roles.setdefault(role.facility_id, set()).add(role.role)
    return StaffContext(member=member, session=row, ip=ip, roles=roles)


def optional_staff(request: Request, db: DbSession, clock: ClockDep) -> StaffContext | None:
    now = clock.now()
    row = auth.find_session(db, request.cookies.get(SESSION_COOKIE), now)
    if row is None or row.actor_type != "staff" or row.second_factor_pending:
        return None
    ctx = load_staff(db, row, client_ip(request))
    if ctx is not None:
        _touch(row, now)
    return ctx


def current_staff(ctx: Annotated[StaffContext | None, Depends(optional_staff)]) -> StaffContext:
    if ctx is None:
        raise NotAuthenticated("Please sign in as staff to continue.", audience="staff")
    return ctx


def optional_kiosk(request: Request, db: DbSession, clock: ClockDep) -> KioskContext | None:
    now = clock.now()
    row = auth.find_session(db, request.cookies.get(KIOSK_COOKIE), now)
    if row is None or row.actor_type != "kiosk":
        return None
    kiosk = db.get(Kiosk, row.actor_id)
    if kiosk is None or kiosk.credential_hash is None:
        return None
    _touch(row, now)
    return KioskContext(
        kiosk_id=kiosk.id,
        facility_id=kiosk.facility_id,
        session=row,
        ip=client_ip(request),
        resident_id=row.resident_id,
    )


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


def enforce_declared_permission(request: Request, db: DbSession, clock: ClockDep) -> None:
    """Authorize every route that declares ``openapi_extra={"x-permission": ...}``.

    Runs as an app-wide dependency, before the body is even validated, so a
    request to another facility answers 404 and a missing permission 403 no
    matter what it carries. Routes still fetch their facility with
    ``access_facility``; this makes forgetting it harmless.
    """
    route = request.scope.get("route")
    permission = (getattr(route, "openapi_extra", None) or {}).get("x-permission")
    if not permission:
        return
    from openvisit.auth.permissions import Permission
    from openvisit.errors import Forbidden, NotFound
    from openvisit.facilities.service import access_facility

    staff = optional_staff(request, db, clock)
    if staff is None:
        raise NotAuthenticated("Please sign in as staff to continue.", audience="staff")
    raw = request.path_params.get("facility_id")
    if raw is None:
        if not staff.can(None, Permission(permission)):
            raise Forbidden("Your role doesn't allow that.")
        return
    try:
        facility_id = int(raw)
    except ValueError:
        raise NotFound("We couldn't find that facility.") from None
    access_facility(db, staff, facility_id, Permission(permission))
