from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field


class Minor(BaseModel):
    name: str = Field(max_length=120)
    date_of_birth: str = Field(max_length=10, description="YYYY-MM-DD")


class ApprovalRequest(BaseModel):
    resident_id: int
    relationship: str = Field(max_length=60)
    minors: list[Minor] = Field(default_factory=list, max_length=6)


class ResidentFound(BaseModel):
    id: int
    first_name: str
    last_initial: str
    facility_id: int
    facility_name: str


class ApprovalOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    facility_id: int
    visitor_id: int
    resident_id: int
    relationship: str
    minors: list[dict[str, str]]
    status: str
    reason: str
    requested_at: dt.datetime
    decided_at: dt.datetime | None


class Decision(BaseModel):
    reason: str = Field(default="", max_length=500)


class BlockIn(BaseModel):
    visitor_id: int
    resident_id: int | None = None
    reason: str = Field(max_length=500)
    until: dt.datetime | None = None


class BlockOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    facility_id: int
    visitor_id: int
    resident_id: int | None
    reason: str
    until: dt.datetime | None
    created_at: dt.datetime
    lifted_at: dt.datetime | None
