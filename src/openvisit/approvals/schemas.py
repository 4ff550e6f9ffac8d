from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field

from openvisit.bounds import Id, Moment


class Minor(BaseModel):
    name: str = Field(max_length=120)
    date_of_birth: str = Field(max_length=10, description="YYYY-MM-DD")


class ResidentProof(BaseModel):
    """Whom a visitor means, the way the pages ask: the facility, and the resident's
    booking number and last name, both of which must match. Never a raw resident id."""

    facility_id: Id
    booking_number: str = Field(max_length=40)
    last_name: str = Field(max_length=100)


class ApprovalRequest(ResidentProof):
    relationship: str = Field(max_length=60)
    minors: list[Minor] = Field(default_factory=list, max_length=6)


class ResidentFound(BaseModel):
    """The resident a lookup found, without their id: asking to visit them takes the
    same booking number and last name again."""

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
    visitor_id: Id
    resident_id: Id | None = None
    reason: str = Field(max_length=500)
    until: Moment | None = None


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
