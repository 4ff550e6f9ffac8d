"""Billable time is when both parties' media flowed, within the scheduled time."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from openvisit.visits.metering import billable_seconds, both_up_intervals, media_up

START = dt.datetime(2026, 11, 27, 14, 0, tzinfo=dt.UTC)
END = START + dt.timedelta(minutes=30)


@dataclass
class Ev:
    at: dt.datetime
    kind: str
    party: str


def at(minutes: float) -> dt.datetime:
    return START + dt.timedelta(minutes=minutes)


def ev(minutes: float, kind: str, party: str) -> Ev:
    return Ev(at(minutes), kind, party)


def meter(events: list[Ev]) -> tuple[list[tuple[dt.datetime, dt.datetime]], int]:
    intervals = both_up_intervals(events, START, END)
    return intervals, billable_seconds(intervals)


def test_time_is_billed_only_once_both_parties_have_media():
    intervals, seconds = meter(
        [
            ev(0, "joined", "visitor"),
            ev(0.5, "media_up", "visitor"),
            ev(2, "media_up", "resident"),
            ev(12, "media_down", "visitor"),
            ev(12, "media_down", "resident"),
        ]
    )
    assert intervals == [(at(2), at(12))]
    assert seconds == 600


def test_a_drop_and_a_reconnect_leave_the_gap_unbilled():
    intervals, seconds = meter(
        [
            ev(0, "media_up", "visitor"),
            ev(0, "media_up", "resident"),
            ev(10, "media_down", "resident"),
            ev(11, "media_up", "resident"),
            ev(20, "left", "visitor"),
        ]
    )
    assert intervals == [(at(0), at(10)), (at(11), at(20))]
    assert seconds == 19 * 60


def test_a_party_that_never_had_media_means_nothing_is_billed():
    intervals, seconds = meter(
        [ev(0, "joined", "visitor"), ev(0, "media_up", "visitor"), ev(1, "joined", "resident")]
    )
    assert intervals == []
    assert seconds == 0


def test_media_before_the_start_and_after_the_end_is_not_billed():
    intervals, seconds = meter(
        [
            ev(-8, "media_up", "visitor"),
            ev(-5, "media_up", "resident"),
            ev(35, "media_down", "resident"),
            ev(40, "media_up", "resident"),
        ]
    )
    assert intervals == [(START, END)]
    assert seconds == 30 * 60


def test_media_still_flowing_at_the_end_is_billed_up_to_the_end_only():
    intervals, seconds = meter([ev(25, "media_up", "visitor"), ev(25.5, "media_up", "resident")])
    assert intervals == [(at(25.5), END)]
    assert seconds == 270


def test_repeated_media_reports_and_monitors_change_nothing():
    intervals, _ = meter(
        [
            ev(0, "media_up", "visitor"),
            ev(1, "media_up", "visitor"),
            ev(2, "media_up", "resident"),
            ev(3, "media_up", "monitor"),
            ev(4, "media_down", "monitor"),
            ev(4, "media_up", "resident"),
            ev(5, "stats", "visitor"),
            ev(6, "media_down", "visitor"),
            ev(7, "media_down", "visitor"),
        ]
    )
    assert intervals == [(at(2), at(6))]


def test_events_out_of_order_are_read_in_time_order():
    intervals, _ = meter(
        [
            ev(10, "media_down", "visitor"),
            ev(0, "media_up", "resident"),
            ev(1, "media_up", "visitor"),
        ]
    )
    assert intervals == [(at(1), at(10))]


def test_a_part_second_is_not_billed():
    intervals = [(START, START + dt.timedelta(seconds=59, milliseconds=999))]
    assert billable_seconds(intervals) == 59


def test_who_has_media_is_read_from_the_last_report_of_each_party():
    assert media_up([ev(0, "media_up", "visitor"), ev(1, "media_up", "resident")]) == {
        "visitor": True,
        "resident": True,
    }
    assert media_up([ev(0, "media_up", "visitor"), ev(1, "left", "visitor")]) == {
        "visitor": False,
        "resident": False,
    }
