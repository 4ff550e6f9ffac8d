"""The audit log's API shapes."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, field_validator

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

    @field_validator("data", mode="before")
    @classmethod
    def _no_data_is_empty(cls, data: dict[str, Any] | None) -> dict[str, Any]:
        return data or {}

    @classmethod
    def of(cls, event: AuditEvent) -> AuditEventOut:
        return cls.model_validate(event, from_attributes=True)


class AuditPageOut(BaseModel):
    events: list[AuditEventOut]
    older_before_id: int | None
