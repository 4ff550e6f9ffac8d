"""The front door: the home page sends signed-in people to their own start page."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from openvisit.deps import OptionalStaff, OptionalVisitor
from openvisit.web.render import redirect, render

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def home(request: Request, visitor: OptionalVisitor, staff: OptionalStaff) -> Response:
    if staff is not None:
        return redirect("/staff")
    if visitor is not None:
        return redirect("/account")
    return render(request, "home.html")
