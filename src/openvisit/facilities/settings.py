"""A facility's visiting settings: one row per facility, replaced as a whole and audited."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from openvisit.audit.service import AuditActor
from openvisit.clock import Clock
from openvisit.errors import Code, InvalidInput
from openvisit.facilities import caps
from openvisit.facilities.models import Facility, FacilitySettings
from openvisit.facilities.schemas import SettingsBody
from openvisit.facilities.service import record_event

MAX_LOBBY_DAILY_CAP_CENTS = 10_000_000

# (minimum, maximum, message) for each whole-number setting.
_INT_RULES: dict[str, tuple[int, int, str]] = {
    "slot_step_minutes": (5, 120, "Enter a slot step from 5 to 120 minutes"),
    "min_notice_minutes": (0, 30 * 24 * 60, "Enter a notice from 0 to 43200 minutes (30 days)"),
    "booking_horizon_days": (1, 90, "Enter a booking horizon from 1 to 90 days"),
    "weekly_remote_visits": (0, 50, "Enter from 0 to 50 visits a week"),
    "weekly_onsite_visits": (0, 50, "Enter from 0 to 50 visits a week"),
    "weekly_privileged_visits": (0, 50, "Enter from 0 to 50 visits a week"),
    "approved_visitors_per_resident": (0, 50, "Enter from 0 to 50 approved visitors"),
    "visitors_per_visit": (1, 10, "Enter from 1 to 10 visitors per visit"),
    "join_window_minutes": (0, 60, "Enter a join window from 0 to 60 minutes"),
    "reconnect_grace_seconds": (15, 600, "Enter a reconnect grace from 15 to 600 seconds"),
    "recording_retention_days": (1, 3650, "Enter a retention from 1 to 3650 days"),
    "free_minutes_per_week": (0, 10080, "Enter from 0 to 10080 free minutes a week"),
    "lobby_deposit_daily_cap_cents": (
        0,
        MAX_LOBBY_DAILY_CAP_CENTS,
        "Enter a daily limit from 0 to 10000000 cents ($100,000)",
    ),
}
BOOL_SETTINGS = ("bookings_need_approval", "onsite_visits_free", "accepts_other_identity_checks")
INT_SETTINGS = tuple(_INT_RULES)
SETTING_NAMES = (
    "visit_lengths_minutes",
    *INT_SETTINGS,
    *BOOL_SETTINGS,
    "remote_rate_cents_per_minute",
)
_MAX_RATE = Decimal("1000")


def facility_settings(session: Session, facility: Facility) -> FacilitySettings:
    row = session.get(FacilitySettings, facility.id)
    if row is None:  # a facility made before settings existed: give it the defaults
        row = FacilitySettings(facility_id=facility.id)
        session.add(row)
        session.flush()
    return row


def check_settings(values: SettingsBody) -> dict[str, Any]:
    """Every problem at once, as field -> message; the cleaned values if none."""
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {}
    lengths = values.visit_lengths_minutes
    if not 1 <= len(lengths) <= 6:
        errors["visit_lengths_minutes"] = "Offer from 1 to 6 visit lengths"
    elif len(set(lengths)) != len(lengths):
        errors["visit_lengths_minutes"] = "Offer each visit length once"
    elif any(not 5 <= n <= 240 for n in lengths):
        errors["visit_lengths_minutes"] = "Visit lengths must be from 5 to 240 minutes"
    else:
        clean["visit_lengths_minutes"] = sorted(lengths)
    for name, (low, high, message) in _INT_RULES.items():
        value = getattr(values, name)
        if not low <= value <= high:
            errors[name] = message
        else:
            clean[name] = value
    for name in BOOL_SETTINGS:
        clean[name] = bool(getattr(values, name))
    rate = values.remote_rate_cents_per_minute
    if not rate.is_finite() or not 0 <= rate <= _MAX_RATE:
        errors["remote_rate_cents_per_minute"] = "Enter a rate from 0 to 1000 cents a minute"
    elif rate != rate.quantize(Decimal("0.01")):
        errors["remote_rate_cents_per_minute"] = "Enter a rate with at most 2 decimal places"
    else:
        clean["remote_rate_cents_per_minute"] = rate.quantize(Decimal("0.01"))
    if errors:
        raise InvalidInput(
            "Some settings are not valid.", code=Code.INVALID_SETTINGS, fields=errors
        )
    return clean


def settings_data(row: FacilitySettings) -> dict[str, Any]:
    data = {name: getattr(row, name) for name in SETTING_NAMES}
    data["visit_lengths_minutes"] = list(row.visit_lengths_minutes)
    data["remote_rate_cents_per_minute"] = str(
        Decimal(row.remote_rate_cents_per_minute).quantize(Decimal("0.01"))
    )
    return data


def update_settings(
    session: Session, clock: Clock, actor: AuditActor, facility: Facility, values: SettingsBody
) -> FacilitySettings:
    """Replace every setting at once; audited with the values before and after."""
    clean = check_settings(values)
    today = clock.now().astimezone(ZoneInfo(facility.timezone)).date()
    caps.check_rate(facility, clean["remote_rate_cents_per_minute"], today)
    row = facility_settings(session, facility)
    before = settings_data(row)
    for name, value in clean.items():
        setattr(row, name, value)
    session.flush()
    after = settings_data(row)
    changed = {k: {"before": before[k], "after": after[k]} for k in after if before[k] != after[k]}
    if changed:
        record_event(
            session,
            "facility:settings_changed",
            actor,
            clock.now(),
            facility,
            {"before": before, "after": after, "changed": sorted(changed)},
        )
    return row
