"""The API shapes of live visits: the monitoring wall's list, warnings, termination
and who monitored a visit (visits.service builds the lists in these shapes)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from openvisit.visits.models import Visit


class LiveVisitOut(BaseModel):
    """A tile of the monitoring wall: a visit whose join window is open, or live."""

    id: int
    state: str
    privileged: bool
    starts_at: dt.datetime
    ends_at: dt.datetime
    resident: str
    visitor: str
    kiosk: str


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
    """An officer who watched a visit, and when they started."""

    staff_id: int | None
    name: str
    at: dt.datetime
