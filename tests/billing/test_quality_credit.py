"""Minutes with frozen video or heavy packet loss are credited, from the clients' stats."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from openvisit.billing.quality import credited_minutes, reason_words

START = dt.datetime(2026, 11, 27, 14, 0, tzinfo=dt.UTC)
END = START + dt.timedelta(minutes=30)


@dataclass
class Ev:
    at: dt.datetime
    party: str
    data: dict[str, Any] = field(default_factory=dict)
    kind: str = "stats"


def stats(
    party: str,
    seconds: float,
    frames: int,
    received: int = 0,
    lost: int = 0,
) -> Ev:
    return Ev(
        START + dt.timedelta(seconds=seconds),
        party,
        {"frames_decoded": frames, "packets_received": received, "packets_lost": lost},
    )


def smooth(party: str, until: int, every: int = 2, since: int = 0) -> list[Ev]:
    """Good reports: 30 frames and 100 packets a second, nothing lost."""
    return [stats(party, t, 30 * t, 100 * t) for t in range(since, until + 1, every)]


def minutes(credits) -> list[int]:
    return [c.minute for c in credits]


def test_no_stats_at_all_means_no_credit():
    assert credited_minutes([], START, END) == []


def test_good_video_on_both_sides_means_no_credit():
    events = smooth("visitor", 600) + smooth("resident", 600)
    assert credited_minutes(events, START, END) == []


def test_a_freeze_of_five_seconds_credits_its_minute():
    events = [
        stats("visitor", 120, 3600),
        stats("visitor", 122, 3660),
        stats("visitor", 124, 3660),
        stats("visitor", 126, 3660),
        stats("visitor", 127, 3660),
        stats("visitor", 129, 3660),
        stats("visitor", 131, 3720),
    ]
    credits = credited_minutes(events, START, END)
    assert minutes(credits) == [2]
    assert credits[0].reasons == [{"party": "visitor", "reason": "frozen", "seconds": 7}]


def test_a_freeze_just_under_five_seconds_is_not_credited():
    events = [
        stats("resident", 120, 3600),
        stats("resident", 122, 3660),
        stats("resident", 126, 3660, 0),
        stats("resident", 126.9, 3660),
        stats("resident", 128, 3720),
    ]
    assert credited_minutes(events, START, END) == []


def test_a_frozen_video_gap_across_a_minute_boundary_credits_both_minutes():
    events = [
        stats("resident", 56, 1680),
        stats("resident", 58, 1700),
        stats("resident", 60, 1700),
        stats("resident", 62, 1700),
        stats("resident", 64, 1700),
        stats("resident", 66, 1760),
    ]
    credits = credited_minutes(events, START, END)
    assert minutes(credits) == [0, 1]
    assert all(c.reasons[0]["party"] == "resident" for c in credits)


def test_a_freeze_that_ends_exactly_as_a_minute_begins_does_not_touch_that_minute():
    events = [stats("visitor", t, 900) for t in (54, 56, 58, 60)] + [stats("visitor", 62, 960)]
    assert minutes(credited_minutes(events, START, END)) == [0]


def test_loss_of_exactly_ten_percent_is_credited():
    # Minute 3: 90 packets received, 10 lost, reports at the minute's edges.
    events = [stats("visitor", 180, 100, 1000, 0), stats("visitor", 240, 1900, 1090, 10)]
    credits = credited_minutes(events, START, END)
    assert minutes(credits) == [3]
    assert credits[0].reasons == [{"party": "visitor", "reason": "packet_loss", "percent": 10}]


def test_loss_just_under_ten_percent_is_not_credited():
    events = [stats("visitor", 180, 100, 1000, 0), stats("visitor", 240, 1900, 1091, 10)]
    assert credited_minutes(events, START, END) == []


def test_loss_is_shared_between_minutes_in_proportion_to_time():
    # 4 s between reports, half in minute 0 and half in minute 1; all 20 lost packets
    # are shared 10/10; each minute also has 90 good packets of its own.
    events = [
        stats("resident", 2, 60, 0, 0),
        stats("resident", 58, 1740, 90, 0),
        stats("resident", 62, 1860, 90, 20),
        stats("resident", 118, 3540, 180, 20),
    ]
    assert minutes(credited_minutes(events, START, END)) == [0, 1]


def test_a_restart_of_the_counters_is_neither_a_freeze_nor_a_loss():
    events = [
        *smooth("visitor", 30),
        stats("visitor", 32, 0, 0, 0),
        stats("visitor", 34, 60, 200, 0),
        stats("visitor", 36, 120, 400, 0),
    ]
    assert credited_minutes(events, START, END) == []


def test_both_reasons_of_both_parties_are_listed_in_the_same_minute():
    events = [
        stats("visitor", 300, 100, 1000, 0),
        stats("visitor", 306, 100, 1050, 50),
        stats("resident", 300, 100, 1000, 0),
        stats("resident", 359, 1870, 1100, 0),
    ]
    (credit,) = credited_minutes(events, START, END)
    assert credit.minute == 5
    assert credit.reasons == [
        {"party": "visitor", "reason": "frozen", "seconds": 6},
        {"party": "visitor", "reason": "packet_loss", "percent": 50},
    ]


def test_reports_outside_the_visit_and_malformed_reports_are_ignored():
    events = [
        stats("visitor", -30, 0),
        stats("visitor", -20, 0),
        stats("visitor", -10, 0),
        Ev(START, "visitor", {"frames_decoded": "lots"}),
        Ev(START + dt.timedelta(seconds=2), "visitor", {"frames_decoded": True}),
        Ev(START, "monitor", {"frames_decoded": 1, "packets_received": 1, "packets_lost": 0}),
        stats("resident", 1800, 5),
        stats("resident", 1810, 5),
    ]
    assert credited_minutes(events, START, END) == []


def test_reasons_read_in_plain_words():
    assert reason_words({"party": "visitor", "reason": "frozen", "seconds": 6}) == (
        "Video froze on your screen for 6 seconds"
    )
    assert reason_words({"party": "resident", "reason": "packet_loss", "percent": 12}) == (
        "The resident's connection lost 12% of its packets"
    )
