"""The API shapes of live visits: the monitoring wall's list, warnings, termination
and who monitored a visit."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from openvisit.visits.models import Visit
from openvisit.visits.service import LiveVisit, Monitor


class LiveVisitOut(BaseModel):
    id: int
    state: str
    privileged: bool
    starts_at: dt.datetime
    ends_at: dt.datetime
    resident: str
    visitor: str
    kiosk: str

    @classmethod
    def of(cls, row: LiveVisit) -> LiveVisitOut:
        return cls(
            id=row.id,
            state=row.state.value,
            privileged=row.privileged,
            starts_at=row.starts_at,
            ends_at=row.ends_at,
            resident=row.resident,
            visitor=row.visitor,
            kiosk=row.kiosk,
        )


class WarningIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: Annotated[str, Field(min_length=1, max_length=300)]


class TerminateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Annotated[str, Field(min_length=3, max_length=300)]


class VisitActionOut(BaseModel):
    visit_id: int
    state: str

    @classmethod
    def of(cls, visit: Visit) -> VisitActionOut:
        return cls(visit_id=visit.id, state=visit.state.value)


class MonitorOut(BaseModel):
    staff_id: int | None
    name: str
    at: dt.datetime

    @classmethod
    def of(cls, row: Monitor) -> MonitorOut:
        return cls(staff_id=row.staff_id, name=row.name, at=row.at)
