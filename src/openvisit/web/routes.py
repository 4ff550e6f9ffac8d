from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from openvisit.deps import OptionalStaff, OptionalVisitor
from openvisit.web.render import redirect, render

api = APIRouter(prefix="/api/v1", tags=["site"])
pages = APIRouter(include_in_schema=False)


@pages.get("/", response_class=HTMLResponse)
def home(request: Request, visitor: OptionalVisitor, staff: OptionalStaff) -> HTMLResponse:
    if staff is not None:
        return redirect("/staff")  # type: ignore[return-value]
    if visitor is not None:
        return redirect("/account")  # type: ignore[return-value]
    return render(request, "home.html")
