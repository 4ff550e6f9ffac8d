// Shared by the visit page and the monitoring wall: the signaling socket and the
// subscribe connection (the server offers the other party's audio and video).
'use strict';

window.OV = window.OV || {};

OV.ICE = {iceServers: []};  // no STUN server: the media server announces its own addresses

OV.socketUrl = (visitId) =>
  `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws/visits/${visitId}`;

// Wait before the nth attempt to open a dropped socket again: 0.5 s, doubling, at most 3 s.
OV.backoff = (attempt) => Math.min(3000, 250 * 2 ** Math.min(attempt, 4));

// The visit's signaling socket, opened again with backoff whenever it drops, until
// `stopped()` says the page is done with it. `onOpen()` on every (re)open (set the
// media up there), `onMessage(msg)` for each message, `onDrop()` when it drops.
// Returns {send, close, socket}: `close` is for a page that is done (make `stopped()`
// true first); `socket()` is the current WebSocket, for tests and support.
OV.connect = ({visitId, onOpen, onMessage, onDrop, stopped}) => {
  let ws = null;
  let attempt = 0;
  const open = () => {
    if (stopped()) return;
    ws = new WebSocket(OV.socketUrl(visitId));
    ws.onopen = () => { attempt = 0; onOpen(); };
    ws.onmessage = (e) => onMessage(JSON.parse(e.data));
    ws.onclose = () => {
      if (stopped()) return;
      onDrop();
      attempt += 1;
      setTimeout(open, OV.backoff(attempt));
    };
  };
  open();
  return {
    send: (msg) => { if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(msg)); },
    isOpen: () => ws !== null && ws.readyState === WebSocket.OPEN,
    close: () => { if (ws) ws.close(); },
    socket: () => ws,
  };
};

// Wait until the browser has gathered its candidates, or at most `ms`: the rest trickle.
OV.gathered = (pc, ms) => new Promise((resolve) => {
  if (pc.iceGatheringState === 'complete') return resolve();
  const done = () => { if (pc.iceGatheringState === 'complete') { clearTimeout(timer); resolve(); } };
  const timer = setTimeout(() => { pc.removeEventListener('icegatheringstatechange', done); resolve(); }, ms);
  pc.addEventListener('icegatheringstatechange', done);
});

// Candidates found after the offer or answer went out (those before are in its SDP).
OV.trickle = (pc, send, which) => {
  pc.onicecandidate = (e) => {
    const c = e.candidate;
    if (c && c.candidate && pc.ovDescriptionSent) {
      send({type: 'ice', pc: which, candidate: c.candidate, sdp_mid: c.sdpMid, sdp_mline_index: c.sdpMLineIndex});
    }
  };
};

// Answer the server's subscribe offer; `onTrack(party, kind, track)` for each track.
OV.subscribe = async (offer, send, onTrack) => {
  const pc = new RTCPeerConnection(OV.ICE);
  const byMid = {};
  for (const t of offer.tracks || []) byMid[t.mid] = t;
  pc.ontrack = (e) => {
    const info = byMid[e.transceiver.mid] || {party: 'other', kind: e.track.kind};
    onTrack(info.party, info.kind, e.track);
  };
  OV.trickle(pc, send, 'subscribe');
  await pc.setRemoteDescription({type: 'offer', sdp: offer.sdp});
  await pc.setLocalDescription(await pc.createAnswer());
  await OV.gathered(pc, 500);
  send({type: 'answer', pc: 'subscribe', sdp: pc.localDescription.sdp});
  pc.ovDescriptionSent = true;
  return pc;
};

// What this page receives, for quality credits (DESIGN §4) and for tests.
OV.receiveStats = async (pc) => {
  const out = {frames_decoded: 0, packets_received: 0, packets_lost: 0, jitter_ms: null, rtt_ms: null};
  if (!pc) return out;
  const report = await pc.getStats();
  report.forEach((s) => {
    if (s.type === 'inbound-rtp') {
      if (s.kind === 'video') {
        out.frames_decoded += s.framesDecoded || 0;
        if (s.jitter != null) out.jitter_ms = Math.round(s.jitter * 1000);
      }
      out.packets_received += s.packetsReceived || 0;
      out.packets_lost += Math.max(0, s.packetsLost || 0);
    }
    if (s.type === 'candidate-pair' && s.nominated && s.currentRoundTripTime != null) {
      out.rtt_ms = Math.round(s.currentRoundTripTime * 1000);
    }
  });
  return out;
};
