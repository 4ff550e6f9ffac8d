"""How visits and slots are shown: facility-local labels and the .ics calendar file."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from icalendar import Calendar, Event

from openvisit.facilities.models import Facility
from openvisit.scheduling import rules
from openvisit.visits.models import Visit, VisitState, VisitType

TYPE_NAMES = {
    VisitType.REMOTE: "Video visit from home",
    VisitType.ONSITE: "Video visit at the lobby",
    VisitType.PRIVILEGED: "Privileged (legal) visit",
}
# A visit's state as a tag: its words and its colour.
STATE_TAGS = {
    VisitState.REQUESTED: ("Awaiting review", "yellow"),
    VisitState.SCHEDULED: ("Booked", "green"),
    VisitState.OPEN: ("Open to join", "green"),
    VisitState.LIVE: ("In progress", "green"),
    VisitState.COMPLETED: ("Completed", "grey"),
    VisitState.MISSED: ("Missed", "grey"),
    VisitState.TERMINATED: ("Ended by staff", "red"),
    VisitState.FAILED: ("Failed", "red"),
    VisitState.DENIED: ("Not approved", "red"),
    VisitState.CANCELLED: ("Cancelled", "grey"),
}


def span_label(start: dt.datetime, end: dt.datetime, tz: str) -> str:
    zone = ZoneInfo(tz)
    first = format_datetime(start, "EEE d MMM, h:mm a", tzinfo=zone, locale="en_US")
    last = format_datetime(end, "h:mm a zzz", tzinfo=zone, locale="en_US")
    minutes = int((end - start).total_seconds() // 60)
    return f"{first} to {last} ({minutes} minutes)"


def days(slots: list[rules.Slot], tz: str) -> list[tuple[dt.date, list[rules.Slot]]]:
    """Slots grouped by the facility-local day they start on."""
    zone = ZoneInfo(tz)
    grouped: dict[dt.date, list[rules.Slot]] = {}
    for slot in slots:
        grouped.setdefault(slot.start.astimezone(zone).date(), []).append(slot)
    return sorted(grouped.items())


def ics(visit: Visit, facility: Facility, resident_name: str, base_url: str) -> bytes:
    calendar = Calendar()
    calendar.add("prodid", "-//OpenVisit//visits//EN")
    calendar.add("version", "2.0")
    event = Event()
    event.add("uid", f"visit-{visit.reference}@openvisit")
    event.add("dtstamp", visit.created_at)
    event.add("dtstart", visit.starts_at)
    event.add("dtend", visit.ends_at)
    event.add("summary", f"{TYPE_NAMES[visit.visit_type]} with {resident_name}")
    event.add("location", facility.name)
    event.add(
        "description",
        f"Reference {visit.reference}. Join from {base_url}/visits/"
        f"{visit.id} up to a few minutes before the start.",
    )
    calendar.add_component(event)
    ical: bytes = calendar.to_ical()
    return ical
