"""Pure scheduling rules (DESIGN §4): which start times a visit may take.

Everything here works on aware UTC datetimes and plain data, so the rules can
be tested with a frozen clock and no database. Visiting hours are wall-clock
times in the facility's zone; they are turned into real instants day by day,
so a window on a daylight-saving day is as long as it really is.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from openvisit.errors import Code

UTC = dt.UTC
# The end of an open-ended closure (a lockdown not yet lifted).
FOREVER = dt.datetime(9999, 12, 31, tzinfo=UTC)


@dataclass(frozen=True, order=True)
class Interval:
    start: dt.datetime
    end: dt.datetime

    def overlaps(self, start: dt.datetime, end: dt.datetime) -> bool:
        return self.start < end and start < self.end


@dataclass(frozen=True)
class HoursRule:
    weekday: int  # Monday = 0
    start: dt.time
    end: dt.time


@dataclass(frozen=True)
class Slot:
    start: dt.datetime
    end: dt.datetime
    kiosk_id: int
    lobby_kiosk_id: int | None = None


def local_instant(day: dt.date, wall: dt.time, tz: ZoneInfo) -> dt.datetime:
    """The real instant of a wall-clock time on a day.

    A time in the spring-forward gap (02:30 that never happens) means the
    instant an hour later on the clock (03:30); an ambiguous fall-back time
    means its first occurrence.
    """
    return dt.datetime.combine(day, wall, tzinfo=tz).astimezone(UTC)


def local_day(instant: dt.datetime, tz: ZoneInfo) -> dt.date:
    return instant.astimezone(tz).date()


def week_start(day: dt.date) -> dt.date:
    """Weeks run Monday to Sunday, in the facility's own calendar."""
    return day - dt.timedelta(days=day.weekday())


def windows(
    hours: Iterable[HoursRule], tz: ZoneInfo, first_day: dt.date, last_day: dt.date
) -> list[Interval]:
    by_weekday: dict[int, list[HoursRule]] = {}
    for rule in hours:
        by_weekday.setdefault(rule.weekday, []).append(rule)
    out = []
    day = first_day
    while day <= last_day:
        for rule in by_weekday.get(day.weekday(), ()):
            start, end = local_instant(day, rule.start, tz), local_instant(day, rule.end, tz)
            if end > start:
                out.append(Interval(start, end))
        day += dt.timedelta(days=1)
    out.sort()
    return out


def starts_in(window: Interval, length: dt.timedelta, step: dt.timedelta) -> Iterable[dt.datetime]:
    """Start times from the window's opening, every ``step``, whose whole visit fits."""
    start = window.start
    while start + length <= window.end:
        yield start
        start += step


class Busy:
    """Sorted, possibly overlapping intervals with a fast "anything overlaps?" test."""

    def __init__(self, intervals: Iterable[Interval] = ()) -> None:
        self._items = sorted(intervals)
        self._starts = [i.start for i in self._items]
        # longest interval, to bound how far back an overlapping one can start
        self._longest = max((i.end - i.start for i in self._items), default=dt.timedelta(0))

    def add(self, interval: Interval) -> None:
        index = bisect.bisect(self._starts, interval.start)
        self._items.insert(index, interval)
        self._starts.insert(index, interval.start)
        self._longest = max(self._longest, interval.end - interval.start)

    def overlaps(self, start: dt.datetime, end: dt.datetime) -> bool:
        try:
            lo = bisect.bisect_left(self._starts, start - self._longest)
        except OverflowError:  # an open-ended interval is in the list
            lo = 0
        hi = bisect.bisect_left(self._starts, end)
        return any(self._items[i].end > start for i in range(lo, hi))


@dataclass
class Constraints:
    """Everything that stands between a window and a bookable slot."""

    length: dt.timedelta
    step: dt.timedelta
    not_before: dt.datetime  # now + minimum notice (and restriction end)
    not_after: dt.datetime  # now + horizon (latest start)
    tz: ZoneInfo
    closures: Busy
    resident: Busy
    visitor: Busy
    kiosks: dict[int, Busy]  # in-service kiosks of the resident's unit
    lobby_kiosks: dict[int, Busy] | None  # on-site visits only
    quota_used: dict[dt.date, int]  # resident's visits of this type by local week start
    quota: int


def _free(kiosks: dict[int, Busy], start: dt.datetime, end: dt.datetime) -> int | None:
    for kiosk_id in sorted(kiosks):
        if not kiosks[kiosk_id].overlaps(start, end):
            return kiosk_id
    return None


def slot_problem(c: Constraints, start: dt.datetime) -> Code | None:
    """Why a start time inside visiting hours can't be booked, or None if it can:
    the error code booking answers with."""
    end = start + c.length
    if start < c.not_before:
        return Code.TOO_SOON
    if start > c.not_after:
        return Code.BEYOND_HORIZON
    if c.closures.overlaps(start, end):
        return Code.FACILITY_CLOSED
    if c.quota_used.get(week_start(local_day(start, c.tz)), 0) >= c.quota:
        return Code.WEEKLY_QUOTA_REACHED
    if c.resident.overlaps(start, end) or c.visitor.overlaps(start, end):
        return Code.SLOT_TAKEN
    if not c.kiosks or (c.lobby_kiosks is not None and not c.lobby_kiosks):
        return Code.NO_KIOSK
    if _free(c.kiosks, start, end) is None:
        return Code.SLOT_TAKEN
    if c.lobby_kiosks is not None and _free(c.lobby_kiosks, start, end) is None:
        return Code.SLOT_TAKEN
    return None


def available_slots(hours_windows: Sequence[Interval], c: Constraints) -> list[Slot]:
    slots = []
    for window in hours_windows:
        if window.end <= c.not_before or window.start > c.not_after:
            continue
        for start in starts_in(window, c.length, c.step):
            if slot_problem(c, start) is None:
                end = start + c.length
                kiosk = _free(c.kiosks, start, end)
                lobby = _free(c.lobby_kiosks, start, end) if c.lobby_kiosks is not None else None
                assert kiosk is not None
                slots.append(Slot(start, end, kiosk, lobby))
    return slots


def fits_hours(
    hours_windows: Sequence[Interval], start: dt.datetime, length: dt.timedelta, step: dt.timedelta
) -> bool:
    """Is ``start`` one of the offered start times (inside hours, on the step grid)?"""
    for window in hours_windows:
        if window.start <= start and start + length <= window.end:
            return (start - window.start) % step == dt.timedelta(0)
    return False
