// The visit page of a visitor or a resident at a kiosk (DESIGN §5): publishes the
// camera and microphone, receives the other side, shows time left, warnings, the
// other side's status and the end. Reconnects by itself: a failed connection is
// set up again, a closed socket is opened again, within the reconnect grace.
'use strict';

(() => {
  const cfg = JSON.parse(document.getElementById('visit-config').textContent);
  const $ = (id) => document.getElementById(id);
  const remote = $('remote-video');
  const self = $('self-video');
  const remoteStream = new MediaStream();
  let link = null;  // the signaling socket (OV.connect)
  let pub = null;
  let sub = null;
  let local = null;
  let ended = false;
  let endsAt = null;
  let peerHere = false;
  let restartTimer = null;
  // For tests and support: what the page has seen.
  const R = window.ovVisit = {state: null, peer: null, warnings: [], errors: [], ended: null, reconnects: 0};

  const status = (text) => { $('peer-status').textContent = text; };
  const send = (msg) => { if (link) link.send(msg); };

  const tick = () => {
    if (endsAt === null || ended) return;
    const left = Math.max(0, Math.round((endsAt - Date.now()) / 1000));
    $('time-left').textContent = `${Math.floor(left / 60)}:${String(left % 60).padStart(2, '0')}`;
  };
  setInterval(tick, 1000);

  const showWaiting = (on) => { $('waiting').hidden = !on; };

  const closeMedia = () => {
    for (const pc of [pub, sub]) if (pc) pc.close();
    pub = sub = null;
  };

  const finish = (reason) => {
    if (ended) return;
    ended = true;
    R.ended = reason;
    closeMedia();
    if (local) for (const t of local.getTracks()) t.stop();
    if (link) link.close();
    $('visit-live').hidden = true;
    $('end-reason').textContent = reason || 'The visit has ended.';
    $('visit-ended').hidden = false;
    $('visit-ended').focus();
  };

  const publish = async () => {
    const pc = pub = new RTCPeerConnection(OV.ICE);
    for (const track of local.getTracks()) {
      const tr = pc.addTransceiver(track, {direction: 'sendonly', streams: [local]});
      if (track.kind === 'video') {
        const vp8 = RTCRtpSender.getCapabilities('video').codecs.filter((c) => /vp8|rtx/i.test(c.mimeType));
        tr.setCodecPreferences(vp8);
        const p = tr.sender.getParameters();
        p.degradationPreference = 'maintain-framerate';
        if (p.encodings && p.encodings[0]) p.encodings[0].maxBitrate = cfg.maxBitrate;
        tr.sender.setParameters(p).catch((e) => R.errors.push('bitrate ' + e));
      }
    }
    OV.trickle(pc, send, 'publish');
    pc.onconnectionstatechange = () => watchConnection(pc);
    await pc.setLocalDescription(await pc.createOffer());
    await OV.gathered(pc, 500);
    send({type: 'offer', pc: 'publish', sdp: pc.localDescription.sdp});
    pc.ovDescriptionSent = true;
  };

  const onTrack = (party, kind, track) => {
    for (const old of remoteStream.getTracks().filter((t) => t.kind === track.kind)) remoteStream.removeTrack(old);
    remoteStream.addTrack(track);
    if (remote.srcObject !== remoteStream) remote.srcObject = remoteStream;
    remote.play().catch(() => {});
  };

  const watchConnection = (pc) => {
    if (ended || pc !== pub && pc !== sub) return;
    if (pc.connectionState === 'failed') restartMedia();
    if (pc.connectionState === 'disconnected') {
      clearTimeout(restartTimer);
      restartTimer = setTimeout(() => { if (pc.connectionState !== 'connected') restartMedia(); }, 3000);
    }
  };

  // Set the media up again on a fresh connection (aiortc has no ICE restart of its own).
  const restartMedia = () => {
    if (ended) return;
    R.reconnects += 1;
    status('Reconnecting…');
    closeMedia();
    if (link && link.isOpen()) startMedia();
  };

  const startMedia = () => {
    send({type: 'subscribe'});
    publish().catch((e) => { R.errors.push('publish ' + e); });
  };

  const onMessage = async (msg) => {
    switch (msg.type) {
      case 'state':
        R.state = msg.state;
        endsAt = Date.now() + msg.seconds_left * 1000;
        tick();
        if (msg.state === 'live' && peerHere) status('Connected');
        break;
      case 'peer':
        R.peer = msg.status;
        peerHere = msg.status === 'joined';
        if (msg.status === 'joined') { status(R.state === 'live' ? 'Connected' : 'The other side is here. Connecting…'); showWaiting(false); }
        if (msg.status === 'reconnecting') { status('Waiting for the other side to reconnect…'); showWaiting(true); }
        if (msg.status === 'left') { status('The other side left the visit.'); showWaiting(true); }
        break;
      case 'warning':
        R.warnings.push(msg.text);
        $('warning').textContent = msg.text;
        $('warning').hidden = false;
        break;
      case 'ended':
        finish(msg.reason);
        break;
      case 'answer':
        if (pub && msg.pc === 'publish') await pub.setRemoteDescription({type: 'answer', sdp: msg.sdp});
        break;
      case 'offer':
        if (sub) sub.close();
        sub = await OV.subscribe(msg, send, onTrack);
        sub.onconnectionstatechange = () => watchConnection(sub);
        break;
      case 'error':
        R.errors.push(msg.code + ': ' + msg.message);
        if (msg.code === 'replaced') finish('This visit was opened in another window.');
        else if (['visit_not_open', 'visit_not_found', 'sign_in_expired'].includes(msg.code)) finish(msg.message);
        break;
    }
  };

  const connect = () => {
    link = OV.connect({
      visitId: cfg.visitId,
      onOpen: startMedia,
      onMessage: (msg) => { onMessage(msg).catch((err) => R.errors.push(String(err))); },
      onDrop: () => {
        status('Reconnecting…');
        R.reconnects += 1;
        closeMedia();
      },
      stopped: () => ended,
    });
  };

  setInterval(async () => {
    if (ended || !sub) return;
    const s = await OV.receiveStats(sub);
    R.stats = s;
    send({type: 'stats', ...s, jitter_ms: s.jitter_ms ?? undefined, rtt_ms: s.rtt_ms ?? undefined});
  }, 3000);

  $('leave').addEventListener('click', () => {
    send({type: 'leave'});
    finish('You left the visit.');
  });

  remote.addEventListener('playing', () => showWaiting(false));

  const start = async () => {
    try {
      local = await navigator.mediaDevices.getUserMedia({video: {width: 640, height: 480, frameRate: 30}, audio: true});
      self.srcObject = local;
    } catch (e) {
      const p = $('media-problem');
      p.textContent = e.name === 'NotAllowedError'
        ? 'Your browser blocked the camera and microphone. Allow them for this site, then reload the page.'
        : 'We could not use a camera and microphone on this device. Check they are connected, then reload the page.';
      p.hidden = false;
      local = new MediaStream();
    }
    connect();
  };
  start();
})();
