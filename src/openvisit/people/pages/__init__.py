"""The pages of people: signing up, in and out (visitors and staff), a visitor's account,
the staff console's home and review queues, and staff accounts.

Each page calls the service its JSON route (people.routes) calls. A refused action goes
to PageAnswer, which undoes the request's changes (a counted failed sign-in stays).
"""

from __future__ import annotations

from fastapi import APIRouter

from openvisit.people.pages import account, signing_in, staff, staff_admin

router = APIRouter(include_in_schema=False)
for part in (signing_in, account, staff, staff_admin):
    router.include_router(part.router)
