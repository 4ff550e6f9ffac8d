"""The media server's own bookkeeping of a party's quality (media.measure), minute by
minute: sequence numbers, freezes and receiver reports, without a network."""

from __future__ import annotations

from openvisit.media.backend import PartyMinute
from openvisit.media.measure import PartyMeter

ZERO = 1000.0  # the visit's start on the monotonic clock


def rows(meter: PartyMeter) -> dict[int, PartyMinute]:
    return {m.minute: m for m in meter.changed()}


def test_lost_packets_are_counted_from_sequence_numbers_across_the_wrap():
    meter = PartyMeter("visitor", ZERO)
    sent = [(65530 + i) % 65536 for i in range(20)]  # wraps after 65535
    for i, seq in enumerate(sent):
        if i % 5 != 2:  # one in five lost
            meter.rtp(1111, seq, ZERO + 10 + i * 0.02)
    (row,) = rows(meter).values()
    assert (row.packets_expected, row.packets_lost) == (20, 4)


def test_late_and_duplicate_packets_are_not_loss_and_streams_add_up():
    meter = PartyMeter("resident", ZERO)
    for seq in (10, 12, 11, 13, 13):  # 11 late, 13 twice
        meter.rtp(1, seq, ZERO + 1)
    for seq in (500, 501, 503):  # a new stream after a reload: 502 lost
        meter.rtp(2, seq, ZERO + 2)
    row = rows(meter)[0]
    assert (row.packets_expected, row.packets_lost) == (4 + 4, 1)


def test_packets_fall_into_the_minute_they_arrived_in_and_none_before_the_start():
    meter = PartyMeter("visitor", ZERO)
    meter.rtp(1, 1, ZERO - 5)
    for i in range(2, 12):
        meter.rtp(1, i, ZERO + 55 + i)
    got = rows(meter)
    assert sorted(got) == [0, 1]
    assert got[0].packets_expected + got[1].packets_expected == 10


def test_video_that_stops_while_the_media_flows_is_a_freeze_in_every_minute_it_touches():
    meter = PartyMeter("visitor", ZERO)
    t = ZERO + 50.0
    while t < ZERO + 56:
        meter.video_frame(t)
        meter.follow(t, flowing=True)
        t += 1 / 30
    stop = t - 1 / 30
    while t < ZERO + 64:  # audio still arrives: flowing, no video
        meter.follow(t, flowing=True)
        t += 0.25
    assert rows(meter)[1].frozen_ms >= 3000  # under way, already in the report
    meter.video_frame(t)
    got = rows(meter)
    length = int((t - stop) * 1000)
    assert got[0].frozen_ms == got[1].frozen_ms == length
    assert 7900 <= length <= 8300


def test_short_gaps_are_not_freezes_and_a_party_that_is_gone_is_not_frozen():
    meter = PartyMeter("resident", ZERO)
    for i in range(10):
        meter.video_frame(ZERO + i * 0.9)  # 0.9 s apart: jerky, not frozen
        meter.follow(ZERO + i * 0.9, flowing=True)
    meter.follow(ZERO + 10, flowing=False)  # nothing at all arrives: gone
    meter.follow(ZERO + 30, flowing=False)
    meter.video_frame(ZERO + 31)  # back: a new count, no freeze across the absence
    assert all(r.frozen_ms == 0 for r in rows(meter).values())


def test_receiver_reports_give_what_the_viewer_lost_of_what_it_was_sent():
    meter = PartyMeter("visitor", ZERO)
    audio, video = object(), object()
    meter.receiver_report(video, 70_000, 3, 4, ZERO + 1)  # the baseline
    meter.receiver_report(audio, 200, 0, 2, ZERO + 1)
    meter.receiver_report(video, 70_400, 43, 9, ZERO + 5)
    meter.receiver_report(audio, 300, 15, 3, ZERO + 5)
    meter.receiver_report(video, 70_500, 41, 6, ZERO + 61)  # a late packet came after all
    got = rows(meter)
    assert (got[0].viewer_packets_expected, got[0].viewer_packets_lost) == (500, 55)
    assert got[0].viewer_jitter_ms == 9
    assert (got[1].viewer_packets_expected, got[1].viewer_packets_lost) == (100, 0)


def test_a_report_repeats_only_the_minutes_that_changed():
    meter = PartyMeter("visitor", ZERO)
    meter.rtp(1, 1, ZERO + 1)
    meter.rtp(1, 2, ZERO + 61)
    assert sorted(rows(meter)) == [0, 1]
    meter.rtp(1, 3, ZERO + 62)
    assert sorted(rows(meter)) == [1]
    assert rows(meter) == {}
