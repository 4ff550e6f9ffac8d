"""Small helpers the people pages share."""

from __future__ import annotations

from typing import Annotated

import segno
from fastapi import Form, Request
from fastapi.responses import HTMLResponse

from openvisit.web.answers import FormPage
from openvisit.web.render import render

Email = Annotated[str, Form(max_length=254)]
Password = Annotated[str, Form(max_length=256)]
TotpCode = Annotated[str, Form(max_length=12)]
Next = Annotated[str, Form(max_length=500)]


def show(request: Request, page: FormPage) -> HTMLResponse:
    """A form page as first shown: the context a refusal would show it again with."""
    return render(request, page.template, dict(page.context()))


def qr_svg(uri: str) -> str:
    """An otpauth URI as a QR code to scan, inline SVG."""
    svg: str = segno.make(uri).svg_inline(scale=4)
    return svg
