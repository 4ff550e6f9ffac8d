from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from openvisit.db import Base, BigId, enum_column, intpk


class VisitType(enum.StrEnum):
    REMOTE = "remote"
    ONSITE = "onsite"
    PRIVILEGED = "privileged"


class VisitState(enum.StrEnum):
    REQUESTED = "requested"
    SCHEDULED = "scheduled"
    OPEN = "open"
    LIVE = "live"
    COMPLETED = "completed"
    MISSED = "missed"
    TERMINATED = "terminated"
    FAILED = "failed"
    DENIED = "denied"
    CANCELLED = "cancelled"


class Visit(Base):
    __tablename__ = "visits"
    __table_args__ = (
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        CheckConstraint(
            "(visit_type = 'onsite') = (lobby_kiosk_id IS NOT NULL)", name="lobby_kiosk_onsite"
        ),
        Index("ix_visits_kiosk_time", "resident_kiosk_id", "starts_at"),
        Index("ix_visits_resident_time", "resident_id", "starts_at"),
        Index("ix_visits_visitor_time", "visitor_id", "starts_at"),
        Index("ix_visits_facility_time", "facility_id", "starts_at"),
        Index("ix_visits_next_deadline_at", "next_deadline_at"),
    )

    id: Mapped[intpk]
    facility_id: Mapped[int] = mapped_column(ForeignKey("facilities.id"))
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"))
    visitor_id: Mapped[int] = mapped_column(ForeignKey("visitors.id"))
    visit_type: Mapped[VisitType] = enum_column(VisitType)
    resident_kiosk_id: Mapped[int] = mapped_column(ForeignKey("kiosks.id"))
    lobby_kiosk_id: Mapped[int | None] = mapped_column(ForeignKey("kiosks.id"))
    starts_at: Mapped[dt.datetime]
    ends_at: Mapped[dt.datetime]
    state: Mapped[VisitState] = enum_column(VisitState)
    # Children declared for this visit (from the approval): [{"name", "date_of_birth"}]
    participants: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    rate_cents_per_minute: Mapped[Decimal] = mapped_column(Numeric(8, 2))
    recorded: Mapped[bool] = mapped_column(Boolean)
    reference: Mapped[str] = mapped_column(String(16), unique=True)
    booked_by_type: Mapped[str] = mapped_column(String(16))  # visitor | staff
    booked_by_id: Mapped[int] = mapped_column(BigId)
    created_at: Mapped[dt.datetime]
    ended_reason: Mapped[str] = mapped_column(String(500), default="")
    # Durable deadlines (DESIGN §4), set at booking by visits.deadlines.schedule_deadlines.
    # Nullable only for visits booked before they existed; the migration fills those.
    opens_at: Mapped[dt.datetime | None]
    warn_5_at: Mapped[dt.datetime | None]
    warn_1_at: Mapped[dt.datetime | None]
    warned_5: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    warned_1: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Set when a party drops from a live visit, cleared when both are back.
    reconnect_deadline_at: Mapped[dt.datetime | None]
    # The earliest deadline the worker still has to act on; None once nothing is pending.
    next_deadline_at: Mapped[dt.datetime | None]


class VisitEvent(Base):
    """What happened during a visit, as reported by the media plane, the clients
    and the worker: the source of metering and of the visit's timeline."""

    __tablename__ = "visit_events"
    __table_args__ = (Index("ix_visit_events_visit_at", "visit_id", "at"),)

    id: Mapped[intpk]
    visit_id: Mapped[int] = mapped_column(ForeignKey("visits.id"))
    at: Mapped[dt.datetime]
    # joined | left | media_up | media_down | stats | warning | ...
    kind: Mapped[str] = mapped_column(String(24))
    # visitor | resident | monitor | system
    party: Mapped[str] = mapped_column(String(16))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class VisitMediaMinute(Base):
    """What the media server measured of one party in one minute of a visit (minute 0
    starts at the visit's start): the only source of fair-quality credits (billing.quality).
    Written as the visit runs, from the media backend's quality reports
    (media.backend.PartyMinute has what each field means)."""

    __tablename__ = "visit_media_minutes"

    visit_id: Mapped[int] = mapped_column(ForeignKey("visits.id"), primary_key=True)
    party: Mapped[str] = mapped_column(String(16), primary_key=True)  # visitor | resident
    minute: Mapped[int] = mapped_column(Integer, primary_key=True)
    video_frames: Mapped[int] = mapped_column(Integer, default=0)
    frozen_ms: Mapped[int] = mapped_column(Integer, default=0)
    packets_expected: Mapped[int] = mapped_column(Integer, default=0)
    packets_lost: Mapped[int] = mapped_column(Integer, default=0)
    viewer_packets_expected: Mapped[int] = mapped_column(Integer, default=0)
    viewer_packets_lost: Mapped[int] = mapped_column(Integer, default=0)
    viewer_jitter_ms: Mapped[int] = mapped_column(Integer, default=0)
    measured_at: Mapped[dt.datetime]


class VisitMeter(Base):
    """The metered result of a visit that ended: seconds with both parties' media
    flowing, and those intervals, ready for billing."""

    __tablename__ = "visit_meters"

    visit_id: Mapped[int] = mapped_column(ForeignKey("visits.id"), primary_key=True)
    billable_seconds: Mapped[int] = mapped_column(Integer)
    # [[start ISO, end ISO], ...] in UTC
    intervals: Mapped[list[list[str]]] = mapped_column(JSON, default=list)
    metered_at: Mapped[dt.datetime]


class VisitTransition(Base):
    """Every change of a visit's state: who, when, why. The outbox for later work
    (notifications, billing) which marks a row handled by its own key."""

    __tablename__ = "visit_transitions"

    id: Mapped[intpk]
    visit_id: Mapped[int] = mapped_column(ForeignKey("visits.id"), index=True)
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    at: Mapped[dt.datetime]
    actor_type: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[int | None] = mapped_column(BigId)
    reason: Mapped[str] = mapped_column(String(500), default="")
    # what caused it, for hooks: "visitor", "staff", "lockdown", "release", "transfer", ...
    cause: Mapped[str] = mapped_column(String(24), default="")


class VisitRecording(Base):
    """One party's recording of a visit (DESIGN §4): a WebM file under the private
    recordings directory, finalized with its SHA-256. Never served statically."""

    __tablename__ = "recordings"
    __table_args__ = (
        Index("ix_recordings_visit", "visit_id"),
        CheckConstraint("party IN ('visitor', 'resident')", name="party_known"),
        CheckConstraint("size_bytes >= 0 AND duration_ms >= 0", name="sizes_nonnegative"),
    )

    id: Mapped[intpk]
    visit_id: Mapped[int] = mapped_column(ForeignKey("visits.id"))
    facility_id: Mapped[int] = mapped_column(ForeignKey("facilities.id"))
    party: Mapped[str] = mapped_column(String(16))
    # relative to the recordings directory (Settings.recordings_dir)
    path: Mapped[str] = mapped_column(String(300), unique=True)
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigId)
    duration_ms: Mapped[int] = mapped_column(Integer)
    video_codec: Mapped[str] = mapped_column(String(16))
    audio_codec: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[dt.datetime]
    ended_at: Mapped[dt.datetime]
    created_at: Mapped[dt.datetime]
    # finished after the server stopped mid-recording (a crash): its last seconds may be lost
    recovered: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
