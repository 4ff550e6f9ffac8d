"""How a page answers: a done action, or a refused one.

A handler raises or returns; when a service refuses (a ``DomainError``), the
page hands it to ``PageAnswer`` and nothing else: ``PageAnswer`` undoes the
request's changes (unless the error says they must stay, like a counted failed
sign-in), then either shows the same form again with the error summary and what
was typed, or goes back to a page with the message as a flash. No page calls
``rollback()`` or ``commit()`` itself; the session dependency commits what is
left at the end of the request.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session

from openvisit.clock import Clock
from openvisit.config import Settings
from openvisit.deps import ClockDep, DbSession, SettingsDep
from openvisit.errors import DomainError
from openvisit.web.render import flash_redirect, render


@dataclass(frozen=True)
class FormPage:
    """The page a refused form goes back to.

    ``context`` is called after the undo, so what it reads is what the database
    holds, not the half-done change. ``field`` is where a message that names no
    field is shown; ``rename`` maps a service's field names to the form's.
    """

    template: str
    context: Callable[[], Mapping[str, Any]]
    field: str = "form"
    rename: Mapping[str, str] = dataclasses.field(default_factory=dict)


class PageAnswer:
    """What a page handler works with: its request, the request's one transaction, the
    clock and the settings (as warehouse's handlers find them on the request), and the
    ways a page answers: render, done, refused."""

    def __init__(self, request: Request, db: Session, clock: Clock, settings: Settings) -> None:
        self.request = request
        self.db = db
        self.clock = clock
        self.settings = settings

    def render(
        self, template: str, context: Mapping[str, Any] | None = None, status_code: int = 200
    ) -> HTMLResponse:
        return render(self.request, template, dict(context or {}), status_code=status_code)

    def _undo(self, exc: DomainError) -> None:
        if not exc.keep_changes:
            self.db.rollback()

    def refused(self, exc: DomainError, page: FormPage) -> HTMLResponse:
        """The same form again, with the error summary, the fields' messages and
        what was typed, under the error's HTTP status."""
        self._undo(exc)
        ctx = dict(page.context())
        fields = {page.rename.get(name, name): text for name, text in exc.fields.items()}
        ctx["errors"] = fields or {page.field: exc.message}
        ctx.setdefault("error_message", exc.message)
        return render(self.request, page.template, ctx, status_code=exc.http_status)

    def refused_to(
        self, exc: DomainError, url: str, *, prefix: str = "", kind: str = "error"
    ) -> RedirectResponse:
        """Back to ``url`` with the refusal as a message shown once (``kind="info"`` when
        the refusal is news rather than a fault, like "already confirmed")."""
        self._undo(exc)
        return flash_redirect(self.request, url, f"{prefix}{exc.message}", kind=kind)

    def done(self, url: str, message: str) -> RedirectResponse:
        """Post/redirect/get with a success message shown once."""
        return flash_redirect(self.request, url, message)


def page_answer(
    request: Request, db: DbSession, clock: ClockDep, settings: SettingsDep
) -> PageAnswer:
    return PageAnswer(request, db, clock, settings)


Page = Annotated[PageAnswer, Depends(page_answer)]
