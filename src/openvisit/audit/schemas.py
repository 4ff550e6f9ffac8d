"""The audit log's API shapes."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel

from openvisit.audit.models import AuditEvent


class AuditEventOut(BaseModel):
    id: int
    at: dt.datetime
    tag: str
    actor_type: str
    actor_id: int | None
    actor_label: str
    subject_type: str | None
    subject_id: int | None
    ip: str | None
    data: dict[str, Any]

    @classmethod
    def of(cls, event: AuditEvent) -> AuditEventOut:
        return cls(
            id=event.id,
            at=event.at,
            tag=event.tag,
            actor_type=event.actor_type,
            actor_id=event.actor_id,
            actor_label=event.actor_label,
            subject_type=event.subject_type,
            subject_id=event.subject_id,
            ip=event.ip,
            data=event.data or {},
        )


class AuditPageOut(BaseModel):
    events: list[AuditEventOut]
    older_before_id: int | None
