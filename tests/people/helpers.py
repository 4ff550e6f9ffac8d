"""Small helpers for the visitor-account tests: read the outbox, sign up through the API."""

from __future__ import annotations

import io
import re

from PIL import Image
from sqlalchemy import select

from openvisit.notifications.models import Notification

STRONG = "a long enough passphrase"


def mails_to(db, address: str) -> list[Notification]:  # type: ignore[no-untyped-def]
    db.expire_all()
    return list(
        db.scalars(
            select(Notification).where(Notification.to_address == address).order_by(Notification.id)
        )
    )


def link_token(mail: Notification, path: str) -> str:
    match = re.search(rf"https?://\S+{re.escape(path)}\?token=(\S+)", mail.body)
    assert match, mail.body
    return match.group(1)


def sign_up(client, email: str = "ana@example.com", **overrides) -> dict:  # type: ignore[no-untyped-def]
    body = {
        "email": email,
        "password": STRONG,
        "legal_name": "Ana Diaz",
        "date_of_birth": "1990-04-02",
        "phone": "555 010 0101",
    } | overrides
    return client.post("/api/v1/visitors", json=body)  # type: ignore[no-any-return]


def image_bytes(fmt: str = "PNG", size: tuple[int, int] = (40, 30), noisy: bool = False) -> bytes:
    buffer = io.BytesIO()
    image = (
        Image.effect_noise(size, 80).convert("RGB")
        if noisy
        else Image.new("RGB", size, (200, 120, 40))
    )
    image.save(buffer, format=fmt)
    return buffer.getvalue()
