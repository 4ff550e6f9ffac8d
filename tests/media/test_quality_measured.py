"""Fair-quality credits come from what the media server measures, with real media in the
test's network namespaces (issue 10, item 1; DESIGN §4): a page that lies about its
picture gets nothing back, a picture that really stops and a connection that really
loses packets do.

The pages here are instrumented before their own scripts run (``INSTRUMENT``): the test
reaches their signaling socket and their peer connections as the person at the keyboard
could from the browser's console, and can keep the page's own stats reports to itself,
so that a credit can only come from the server's measurements. Rows are read with plain
SQL: these tests must also run (and fail) against code without the measurements table.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import select, text

from openvisit.billing.models import BillingSettlement
from openvisit.visits.models import VisitEvent, VisitMeter

from .conftest import (
    MediaServer,
    kiosk_page,
    more_video,
    stage_visit,
    video_rising,
    visitor_page,
    wait_for,
)
from .test_live_visits import _charge, _live_both, wait_for_row

INSTRUMENT = """
(() => {
  const T = window.ovTest = {sockets: [], pcs: [], quiet: false, stopped: null};
  const WS = window.WebSocket;
  window.WebSocket = class extends WS {
    constructor(...args) { super(...args); T.sockets.push(this); }
    send(data) {
      // quiet: the page's own stats reports stay in the page.
      if (T.quiet && typeof data === 'string' && data.startsWith('{"type":"stats"')) return;
      return super.send(data);
    }
  };
  const PC = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends PC {
    constructor(...args) { super(...args); T.pcs.push(this); }
  };
  T.say = (msg) => {
    const ws = T.sockets.filter((s) => s.readyState === WS.OPEN).pop();
    WS.prototype.send.call(ws, JSON.stringify(msg));
  };
  T.videoSender = () => {
    for (const pc of T.pcs.slice().reverse())
      for (const s of pc.getSenders()) if (s.track && s.track.kind === 'video') return s;
    return null;
  };
  T.stopVideo = async () => {
    const sender = T.videoSender();
    T.stopped = {sender, track: sender.track};
    await sender.replaceTrack(null);
  };
  T.restoreVideo = async () => { await T.stopped.sender.replaceTrack(T.stopped.track); };
})();
"""
QUIET = INSTRUMENT + "window.ovTest.quiet = true;\n"


def measured(server: MediaServer, visit_id: int) -> list[Any]:
    """What the server stored of its own measurements, minute by minute."""
    with server.db() as db:
        return list(
            db.execute(
                text(
                    "SELECT party, minute, video_frames, frozen_ms, packets_expected,"
                    " packets_lost, viewer_packets_expected, viewer_packets_lost"
                    " FROM visit_media_minutes WHERE visit_id = :v ORDER BY minute, party"
                ),
                {"v": visit_id},
            ).all()
        )


def loss_of(rows: list[Any], party: str, viewer: bool = False) -> float:
    expected = sum(r.viewer_packets_expected if viewer else r.packets_expected for r in rows
                   if r.party == party)  # fmt: skip
    lost = sum(r.viewer_packets_lost if viewer else r.packets_lost for r in rows
               if r.party == party)  # fmt: skip
    assert expected > 0, (party, viewer, rows)
    return lost / expected


def settled(server: MediaServer, visit_id: int) -> BillingSettlement:
    return wait_for_row(server, BillingSettlement, BillingSettlement.visit_id == visit_id, 20)


def stats_sent(server: MediaServer, visit_id: int, party: str) -> list[dict[str, Any]]:
    """The stats reports the server stored from ``party``'s page, in order."""
    with server.db() as db:
        return list(
            db.scalars(
                select(VisitEvent.data)
                .where(
                    VisitEvent.visit_id == visit_id,
                    VisitEvent.kind == "stats",
                    VisitEvent.party == party,
                )
                .order_by(VisitEvent.id)
            )
        )


def test_a_visitor_who_fakes_frozen_stats_while_its_media_flows_gets_no_credit(
    media_server, chromium_in_netns
):
    stage = stage_visit(media_server, rate="15.5")
    visitor = visitor_page(chromium_in_netns, media_server, stage, INSTRUMENT)
    kiosk = kiosk_page(chromium_in_netns, media_server, stage)
    _live_both(visitor, kiosk)
    # The visitor's page stops its true reports and claims, every 2 s, that its picture
    # is stuck on frame 100 and that most of its packets are lost.
    visitor.evaluate(
        """() => { const T = window.ovTest; T.quiet = true; let k = 0;
        T.liar = setInterval(() => { k += 1; T.say({type: 'stats', frames_decoded: 100,
            packets_received: 1000 + 10 * k, packets_lost: 400 + 90 * k}); }, 2050); }"""
    )
    wait_for(
        lambda: sum(
            1 for d in stats_sent(media_server, stage.visit_id, "visitor")
            if d.get("frames_decoded") == 100
        ) >= 5,
        30,
        "five fabricated reports, 8 s of a 'frozen' picture",
    )  # fmt: skip
    # Meanwhile the media flowed normally both ways.
    assert video_rising(visitor) and video_rising(kiosk)
    visitor.get_by_role("button", name="Leave the visit").click()
    kiosk.locator("#visit-ended").wait_for(state="visible", timeout=20000)

    row = settled(media_server, stage.visit_id)
    meter = wait_for_row(media_server, VisitMeter, VisitMeter.visit_id == stage.visit_id)
    assert row.billable_seconds == meter.billable_seconds > 10
    assert (row.credited_seconds, row.credits) == (0, [])
    assert row.charge_cents == _charge(row.billable_seconds, "15.5") > 0
    # The server measured what really happened: video all along, nothing lost.
    rows = measured(media_server, stage.visit_id)
    assert {r.party for r in rows} == {"visitor", "resident"}
    assert all(r.frozen_ms < 5000 for r in rows), rows
    assert loss_of(rows, "visitor") < 0.02 and loss_of(rows, "resident") < 0.02
    assert sum(r.video_frames for r in rows if r.party == "visitor") > 20 * 10


def _stalled_for(page: Any, seconds: float) -> bool:
    """The page's remote video decoded no new frame for ``seconds`` (polled)."""
    state = page.evaluate(
        """() => { const n = document.getElementById('remote-video')
            .getVideoPlaybackQuality().totalVideoFrames;
        const s = window.ovStall = window.ovStall || {n: -1, since: 0};
        if (n !== s.n) { s.n = n; s.since = performance.now(); }
        return (performance.now() - s.since) / 1000; }"""
    )
    return float(state) >= seconds


def test_a_publisher_whose_video_stops_for_8_s_while_audio_goes_on_gets_that_minute_credited(
    media_server, chromium_in_netns
):
    stage = stage_visit(media_server, rate="15.5")
    # Neither page says anything about its picture: only the server can see the freeze.
    visitor = visitor_page(chromium_in_netns, media_server, stage, QUIET)
    kiosk = kiosk_page(chromium_in_netns, media_server, stage, QUIET)
    _live_both(visitor, kiosk)
    more_video(kiosk, 2)
    stopped_at = time.monotonic()
    visitor.evaluate("() => window.ovTest.stopVideo()")
    wait_for(lambda: _stalled_for(kiosk, 8.0), 20, "8 s without the visitor's video", every=0.2)
    visitor.evaluate("() => window.ovTest.restoreVideo()")
    more_video(kiosk, 3)  # the visitor's picture is back on the kiosk
    stopped_for = time.monotonic() - stopped_at
    visitor.get_by_role("button", name="Leave the visit").click()
    kiosk.locator("#visit-ended").wait_for(state="visible", timeout=20000)

    row = settled(media_server, stage.visit_id)
    # Audio went on: the visitor's media never went down, so the time stayed billed.
    with media_server.db() as db:
        kinds = db.scalars(
            select(VisitEvent.kind).where(VisitEvent.visit_id == stage.visit_id)
        ).all()
    assert "media_down" not in kinds and "stats" not in kinds, kinds
    froze = [
        (c["minute"], r)
        for c in row.credits
        for r in c["reasons"]
        if r["reason"] == "frozen" and r["party"] == "resident"
    ]
    assert froze, row.credits
    assert all(8 <= r["seconds"] <= stopped_for + 1 for _, r in froze), (froze, stopped_for)
    assert row.credited_seconds > 0
    assert row.charge_cents == _charge(row.billable_seconds - row.credited_seconds, "15.5")
    rows = measured(media_server, stage.visit_id)
    frozen = [r for r in rows if r.frozen_ms >= 5000]
    assert frozen and {r.party for r in frozen} == {"visitor"}, rows
    receipt = visitor.context.new_page()
    receipt.goto(f"{media_server.url}/visits/{stage.visit_id}/receipt")
    assert "Video froze on the resident's screen" in receipt.locator("main").inner_text()


def test_15_percent_packet_loss_on_one_party_is_measured_and_credited(
    lossy_link, chromium_in_netns, chromium_far
):
    server = lossy_link.server
    stage = stage_visit(server, rate="15.5")
    # The visitor is at home behind the lossy link; the kiosk is on the server's network.
    visitor = visitor_page(chromium_far, server, stage, QUIET)
    kiosk = kiosk_page(chromium_in_netns, server, stage, QUIET)
    _live_both(visitor, kiosk)
    more_video(kiosk, 10)  # about a thousand of the visitor's packets
    visitor.get_by_role("button", name="Leave the visit").click()
    kiosk.locator("#visit-ended").wait_for(state="visible", timeout=20000)

    row = settled(server, stage.visit_id)
    lost = [r for c in row.credits for r in c["reasons"] if r["reason"] == "packet_loss"]
    assert lost and {r["party"] for r in lost} == {"visitor"}, row.credits
    assert all(10 <= r["percent"] <= 25 for r in lost), lost
    assert row.credited_seconds == row.billable_seconds > 0  # every minute had the loss
    assert row.charge_cents == 0
    rows = measured(server, stage.visit_id)
    up = loss_of(rows, "visitor")
    down = loss_of(rows, "visitor", viewer=True)
    print(f"visitor loss in {up:.3f}, out {down:.3f}; resident in {loss_of(rows, 'resident'):.3f}")
    assert 0.11 <= up <= 0.19, rows  # the link drops 15 % of the RTP packets both ways
    assert down > 0.05, rows  # what the visitor's receiver reports say (after repairs)
    assert loss_of(rows, "resident") < 0.02 and loss_of(rows, "resident", viewer=True) < 0.02
