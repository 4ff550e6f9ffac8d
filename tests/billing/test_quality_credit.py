"""Minutes with frozen video or heavy packet loss are credited, from what the media
server measured of each party, minute by minute; never from what a client says."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select

from openvisit.billing.quality import credited_minutes, reason_words
from openvisit.media.backend import PartyMinute
from openvisit.signaling import service as signaling
from openvisit.signaling.service import Participant
from openvisit.visits.models import VisitEvent, VisitMediaMinute

from .test_capture import book, family, hold_live, measured, settle, settled_row  # noqa: F401

START = dt.datetime(2026, 11, 27, 14, 0, tzinfo=dt.UTC)
END = START + dt.timedelta(minutes=30)


@dataclass
class Row:
    party: str
    minute: int
    frozen_ms: int = 0
    packets_expected: int = 6000
    packets_lost: int = 0
    viewer_packets_expected: int = 6000
    viewer_packets_lost: int = 0


def good(party: str, minutes: int = 30) -> list[Row]:
    return [Row(party, n) for n in range(minutes)]


def minutes(credits) -> list[int]:
    return [c.minute for c in credits]


def test_no_measurements_at_all_means_no_credit():
    assert credited_minutes([], START, END) == []


def test_good_media_on_both_sides_means_no_credit():
    assert credited_minutes(good("visitor") + good("resident"), START, END) == []


def test_a_freeze_of_five_seconds_credits_its_minute_on_the_other_partys_screen():
    rows = [*good("visitor"), Row("resident", 2, frozen_ms=5000)]
    credits = credited_minutes(rows, START, END)
    assert minutes(credits) == [2]
    assert credits[0].reasons == [{"party": "visitor", "reason": "frozen", "seconds": 5}]


def test_a_freeze_just_under_five_seconds_is_not_credited():
    assert credited_minutes([Row("visitor", 4, frozen_ms=4999)], START, END) == []


def test_loss_of_exactly_ten_percent_on_the_way_in_is_credited():
    credits = credited_minutes(
        [Row("visitor", 3, packets_expected=100, packets_lost=10)], START, END
    )
    assert minutes(credits) == [3]
    assert credits[0].reasons == [{"party": "visitor", "reason": "packet_loss", "percent": 10}]


def test_loss_just_under_ten_percent_is_not_credited():
    rows = [
        Row("visitor", 3, packets_expected=1000, packets_lost=99),
        Row("resident", 3, viewer_packets_expected=1000, viewer_packets_lost=99),
    ]
    assert credited_minutes(rows, START, END) == []


def test_loss_toward_a_viewer_counts_the_worse_of_in_and_out():
    row = Row("resident", 9, packets_lost=600, viewer_packets_expected=200, viewer_packets_lost=50)
    (credit,) = credited_minutes([row], START, END)
    assert credit.reasons == [{"party": "resident", "reason": "packet_loss", "percent": 25}]


def test_a_minute_with_no_packets_due_has_no_loss():
    rows = [Row("visitor", 0, packets_expected=0, packets_lost=3, viewer_packets_expected=0)]
    assert credited_minutes(rows, START, END) == []


def test_both_reasons_of_both_parties_are_listed_in_the_same_minute_in_order():
    rows = [
        Row("resident", 5, frozen_ms=7200, packets_lost=1200),
        Row("visitor", 5, frozen_ms=6000, viewer_packets_lost=3000),
    ]
    (credit,) = credited_minutes(rows, START, END)
    assert credit.minute == 5
    assert credit.reasons == [
        {"party": "visitor", "reason": "frozen", "seconds": 7},
        {"party": "visitor", "reason": "packet_loss", "percent": 50},
        {"party": "resident", "reason": "frozen", "seconds": 6},
        {"party": "resident", "reason": "packet_loss", "percent": 20},
    ]


def test_minutes_outside_the_visit_and_other_parties_are_ignored():
    rows = [
        Row("visitor", -1, frozen_ms=9000),
        Row("visitor", 30, frozen_ms=9000),
        Row("monitor", 3, frozen_ms=9000, packets_lost=6000),
    ]
    assert credited_minutes(rows, START, END) == []
    # The last, partial minute of a 90-second visit counts.
    assert minutes(
        credited_minutes(
            [Row("visitor", 1, frozen_ms=5000)], START, START + dt.timedelta(seconds=90)
        )
    ) == [1]


def test_reasons_read_in_plain_words():
    assert reason_words({"party": "visitor", "reason": "frozen", "seconds": 6}) == (
        "Video froze on your screen for 6 seconds"
    )
    assert reason_words({"party": "resident", "reason": "packet_loss", "percent": 12}) == (
        "The resident's connection lost 12% of its packets"
    )


# --- stored measurements, on SQLite and PostgreSQL ---------------------------------------


def _fabricated_stats(db, clock, visit, party: str) -> None:
    """What a client that wants its money back sends: its picture frozen, its packets lost,
    every 2 s through the visit, stored by signaling like any report."""
    participant = Participant(visit.id, party, None)  # type: ignore[arg-type]
    for second in range(0, 30 * 60, 2):
        clock.set(visit.starts_at + dt.timedelta(seconds=second))
        signaling.record_stats(
            db,
            clock,
            participant,
            {
                "frames_decoded": 100,
                "packets_received": 1000 + second,
                "packets_lost": 500 * second,
            },
        )


def test_fabricated_client_stats_are_stored_but_move_no_money(
    db,
    clock,
    settings,
    family,  # noqa: F811
):
    def server_saw_good_media(visit):
        for minute in range(30):
            measured(db, visit, "visitor", minute)
            measured(db, visit, "resident", minute)
        _fabricated_stats(db, clock, visit, "visitor")

    visit = book(db, clock, family)
    hold_live(db, clock, settings, visit, stats_of=server_saw_good_media)
    settle(db, clock, settings)
    row = settled_row(db, visit)
    stored = db.scalar(
        select(func.count()).where(VisitEvent.visit_id == visit.id, VisitEvent.kind == "stats")
    )
    assert stored == 900  # kept, for diagnostics
    assert (row.credited_seconds, row.credits) == (0, [])
    assert row.charge_cents == 30 * 15  # every connected minute charged


def test_measurements_stored_by_signaling_credit_the_minutes_they_show(
    db,
    clock,
    settings,
    family,  # noqa: F811
):
    def reported(visit):
        # What the media backend reported, as signaling stores it: minute 4 twice (the
        # second report has the freeze grown to 8 s), minute 11's loss toward the visitor.
        clock.set(visit.starts_at + dt.timedelta(minutes=5))
        signaling.record_quality(
            db,
            clock,
            visit.id,
            (
                PartyMinute("resident", 4, video_frames=1500, frozen_ms=3000),
                PartyMinute("visitor", 4, video_frames=1790, packets_expected=4000),
            ),
        )
        signaling.record_quality(
            db, clock, visit.id, (PartyMinute("resident", 4, video_frames=1600, frozen_ms=8100),)
        )
        clock.set(visit.starts_at + dt.timedelta(minutes=12))
        signaling.record_quality(
            db,
            clock,
            visit.id,
            (
                PartyMinute(
                    "visitor",
                    11,
                    packets_expected=5000,
                    viewer_packets_expected=5000,
                    viewer_packets_lost=760,
                ),
                PartyMinute("monitor:1", 11, frozen_ms=60000),
            ),
        )

    visit = book(db, clock, family)
    hold_live(db, clock, settings, visit, stats_of=reported)
    stored = db.scalars(
        select(VisitMediaMinute)
        .where(VisitMediaMinute.visit_id == visit.id)
        .order_by(VisitMediaMinute.minute, VisitMediaMinute.party)
    ).all()
    assert [(r.party, r.minute, r.frozen_ms, r.video_frames) for r in stored] == [
        ("resident", 4, 8100, 1600),
        ("visitor", 4, 0, 1790),
        ("visitor", 11, 0, 0),
    ]
    settle(db, clock, settings)
    row = settled_row(db, visit)
    assert [(c["minute"], c["reasons"]) for c in row.credits] == [
        (4, [{"party": "visitor", "reason": "frozen", "seconds": 8}]),
        (11, [{"party": "visitor", "reason": "packet_loss", "percent": 15}]),
    ]
    assert (row.credited_seconds, row.charge_cents) == (120, 28 * 15)
