"""The pure scheduling rules, with instants written out in UTC."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from openvisit.scheduling import rules
from openvisit.scheduling.rules import Busy, HoursRule, Interval

NY = ZoneInfo("America/New_York")
LONDON = ZoneInfo("Europe/London")
UTC = dt.UTC


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def every_day(start: dt.time, end: dt.time) -> list[HoursRule]:
    return [HoursRule(d, start, end) for d in range(7)]


def constraints(**overrides) -> rules.Constraints:
    base = dict(
        length=dt.timedelta(minutes=30),
        step=dt.timedelta(minutes=30),
        not_before=utc(2000, 1, 1),
        not_after=utc(2100, 1, 1),
        tz=NY,
        closures=Busy(),
        resident=Busy(),
        visitor=Busy(),
        kiosks={1: Busy()},
        lobby_kiosks=None,
        quota_used={},
        quota=99,
    )
    base.update(overrides)
    return rules.Constraints(**base)


def local_starts(slots, tz=NY) -> list[str]:
    return [s.start.astimezone(tz).strftime("%H:%M %Z") for s in slots]


def test_an_ordinary_day_offers_every_step_whose_whole_visit_fits():
    day = dt.date(2026, 12, 1)
    windows = rules.windows(every_day(dt.time(9), dt.time(17)), NY, day, day)
    slots = rules.available_slots(windows, constraints(step=dt.timedelta(minutes=10)))
    assert len(slots) == 46  # 9:00 .. 16:30
    assert local_starts(slots)[0] == "09:00 EST" and local_starts(slots)[-1] == "16:30 EST"


def test_the_spring_forward_day_in_new_york_loses_the_missing_hour():
    day = dt.date(2026, 3, 8)  # 02:00 EST jumps to 03:00 EDT
    windows = rules.windows(every_day(dt.time(1), dt.time(4)), NY, day, day)
    assert windows == [Interval(utc(2026, 3, 8, 6), utc(2026, 3, 8, 8))]  # two real hours
    slots = rules.available_slots(windows, constraints())
    assert local_starts(slots) == ["01:00 EST", "01:30 EST", "03:00 EDT", "03:30 EDT"]
    assert all(s.end - s.start == dt.timedelta(minutes=30) for s in slots)


def test_the_fall_back_day_in_new_york_offers_the_repeated_hour_twice():
    day = dt.date(2026, 11, 1)  # 02:00 EDT falls back to 01:00 EST
    windows = rules.windows(every_day(dt.time(1), dt.time(3)), NY, day, day)
    assert windows == [Interval(utc(2026, 11, 1, 5), utc(2026, 11, 1, 8))]  # three real hours
    slots = rules.available_slots(windows, constraints())
    assert local_starts(slots) == [
        "01:00 EDT",
        "01:30 EDT",
        "01:00 EST",
        "01:30 EST",
        "02:00 EST",
        "02:30 EST",
    ]


def test_a_facility_in_london_changes_clocks_on_its_own_date():
    # New York is still on summer time on 25 October; London is not.
    day = dt.date(2026, 10, 25)
    windows = rules.windows(every_day(dt.time(9), dt.time(10)), LONDON, day, day)
    assert windows == [Interval(utc(2026, 10, 25, 9), utc(2026, 10, 25, 10))]
    before = rules.windows(
        every_day(dt.time(9), dt.time(10)), LONDON, day - dt.timedelta(1), day - dt.timedelta(1)
    )
    assert before == [Interval(utc(2026, 10, 24, 8), utc(2026, 10, 24, 9))]


def test_a_visit_must_end_inside_visiting_hours():
    day = dt.date(2026, 12, 1)
    windows = rules.windows([HoursRule(day.weekday(), dt.time(9), dt.time(10))], NY, day, day)
    slots = rules.available_slots(
        windows, constraints(length=dt.timedelta(minutes=45), step=dt.timedelta(minutes=10))
    )
    assert local_starts(slots) == ["09:00 EST", "09:10 EST"]


def test_a_blackout_starting_mid_visit_removes_every_slot_it_touches():
    day = dt.date(2026, 12, 1)
    windows = rules.windows(every_day(dt.time(9), dt.time(11)), NY, day, day)
    closure = Busy([Interval(utc(2026, 12, 1, 14, 45), utc(2026, 12, 1, 15, 15))])  # 9:45-10:15
    slots = rules.available_slots(windows, constraints(closures=closure))
    assert local_starts(slots) == ["09:00 EST", "10:30 EST"]


def test_an_open_ended_lockdown_closes_everything_after_it_starts():
    day = dt.date(2026, 12, 1)
    windows = rules.windows(every_day(dt.time(9), dt.time(11)), NY, day, day)
    lockdown = Busy([Interval(utc(2026, 12, 1, 15), rules.FOREVER)])
    slots = rules.available_slots(windows, constraints(closures=lockdown))
    assert local_starts(slots) == ["09:00 EST", "09:30 EST"]


def test_a_slot_needs_one_free_kiosk_for_the_whole_span():
    day = dt.date(2026, 12, 1)
    windows = rules.windows(every_day(dt.time(9), dt.time(10)), NY, day, day)
    k1 = Busy([Interval(utc(2026, 12, 1, 14), utc(2026, 12, 1, 14, 30))])
    k2 = Busy([Interval(utc(2026, 12, 1, 14, 15), utc(2026, 12, 1, 14, 45))])
    slots = rules.available_slots(windows, constraints(kiosks={1: k1, 2: k2}))
    # 9:00 -> kiosk 1 busy, kiosk 2 busy from 9:15; 9:30 -> kiosk 1 free
    assert [(s.start.astimezone(NY).strftime("%H:%M"), s.kiosk_id) for s in slots] == [("09:30", 1)]
    assert rules.available_slots(windows, constraints(kiosks={})) == []


def test_the_resident_and_the_visitor_may_not_be_double_booked():
    day = dt.date(2026, 12, 1)
    windows = rules.windows(every_day(dt.time(9), dt.time(10)), NY, day, day)
    other_visit = Busy([Interval(utc(2026, 12, 1, 14, 20), utc(2026, 12, 1, 14, 40))])
    assert local_starts(rules.available_slots(windows, constraints(resident=other_visit))) == []
    assert local_starts(rules.available_slots(windows, constraints(visitor=other_visit))) == []


def test_notice_and_horizon_bound_the_starts():
    day = dt.date(2026, 12, 1)
    windows = rules.windows(every_day(dt.time(9), dt.time(11)), NY, day, day)
    c = constraints(not_before=utc(2026, 12, 1, 14, 30), not_after=utc(2026, 12, 1, 15))
    assert local_starts(rules.available_slots(windows, c)) == ["09:30 EST", "10:00 EST"]
    assert rules.slot_problem(c, utc(2026, 12, 1, 14)) == "too_soon"
    assert rules.slot_problem(c, utc(2026, 12, 1, 15, 30)) == "beyond_horizon"


def test_the_weekly_quota_counts_facility_weeks_monday_to_sunday():
    # Sunday 6 Dec 23:30 in New York is Monday 04:30 UTC: it belongs to the week of 30 Nov.
    late_sunday = utc(2026, 12, 7, 4, 30)
    c = constraints(quota=1, quota_used={dt.date(2026, 11, 30): 1})
    assert rules.slot_problem(c, late_sunday) == "weekly_quota_reached"
    assert rules.slot_problem(c, utc(2026, 12, 7, 15)) is None  # Monday morning: a new week


def test_fits_hours_accepts_only_offered_starts():
    day = dt.date(2026, 12, 1)
    windows = rules.windows(every_day(dt.time(9), dt.time(10)), NY, day, day)
    length, step = dt.timedelta(minutes=30), dt.timedelta(minutes=10)
    assert rules.fits_hours(windows, utc(2026, 12, 1, 14, 10), length, step)
    assert not rules.fits_hours(windows, utc(2026, 12, 1, 14, 5), length, step)  # off the grid
    assert not rules.fits_hours(windows, utc(2026, 12, 1, 14, 40), length, step)  # ends late
