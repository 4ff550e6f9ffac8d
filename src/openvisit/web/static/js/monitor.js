// The monitoring wall: a tile per open or live visit of the facility, with the
// parties' video muted until "Listen"; a warning to both screens; ending a visit
// with a reason. Privileged visits are tiles without media (the server refuses them).
// A tile's socket that drops is opened again with backoff (OV.connect), as on the
// visit page, and its video comes back.
'use strict';

(() => {
  const wall = document.getElementById('wall');
  const facility = wall.dataset.facility;
  const template = document.getElementById('tile-template');
  const tiles = new Map();  // visit id -> {el, link, pc, ended, refused, reconnects}
  window.ovWall = {tiles, errors: []};
  // Refusals that trying again would not change: the tile stops reconnecting.
  const FINAL = new Set(['visit_not_found', 'privileged_visit', 'not_authenticated', 'forbidden', 'bad_origin']);

  const api = async (path, body) => {
    const res = await fetch(path, {
      method: body ? 'POST' : 'GET',
      headers: body ? {'Content-Type': 'application/json', 'X-CSRF-Token': wall.dataset.csrf} : {},
      body: body ? JSON.stringify(body) : undefined,
      credentials: 'same-origin',
    });
    const data = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error((data.error && data.error.message) || `Error ${res.status}`);
    return data;
  };

  const showState = (tile, state) => {
    tile.el.querySelector('.tile-state').textContent = state === 'live' ? 'Live' : 'Waiting for both sides';
  };

  const connect = (tile, visit) => {
    let streams = {};
    const send = (m) => tile.link.send(m);
    const onMessage = async (msg) => {
      if (msg.type === 'offer') {
        if (tile.pc) tile.pc.close();
        streams = {};
        tile.pc = await OV.subscribe(msg, send, (party, kind, track) => {
          const video = tile.el.querySelector(`video[data-party="${party}"]`);
          if (!video) return;
          const s = streams[party] = streams[party] || new MediaStream();
          s.addTrack(track);
          video.srcObject = s;
          video.play().catch(() => {});
        });
      } else if (msg.type === 'state') {
        showState(tile, msg.state);
      } else if (msg.type === 'ended') {
        ended(tile, msg.reason);
      } else if (msg.type === 'error') {
        tile.el.querySelector('.tile-message').textContent = msg.message;
        window.ovWall.errors.push(msg.code);
        if (FINAL.has(msg.code)) tile.refused = true;
      }
    };
    tile.link = OV.connect({
      visitId: visit.id,
      onOpen: () => send({type: 'subscribe'}),
      onMessage: (msg) => { onMessage(msg).catch((err) => window.ovWall.errors.push(String(err))); },
      onDrop: () => {
        tile.reconnects += 1;
        if (tile.pc) tile.pc.close();
        tile.pc = null;
        tile.el.querySelector('.tile-state').textContent = 'Reconnecting…';
      },
      stopped: () => tile.ended || tile.refused,
    });
  };

  const ended = (tile, reason) => {
    tile.ended = true;
    if (tile.link) tile.link.close();
    if (tile.pc) tile.pc.close();
    tile.el.querySelector('.tile-state').textContent = 'Ended: ' + (reason || '');
    tile.el.querySelector('.tile-actions').hidden = true;
    for (const v of tile.el.querySelectorAll('video')) v.srcObject = null;
  };

  const add = (visit) => {
    const el = template.content.firstElementChild.cloneNode(true);
    el.dataset.visit = visit.id;
    el.setAttribute('aria-label', `Visit of ${visit.resident}`);
    el.querySelector('.tile-title').textContent = `${visit.resident} · ${visit.visitor}`;
    const tile = {el, link: null, pc: null, ended: false, refused: false, reconnects: 0};
    showState(tile, visit.state);
    tiles.set(visit.id, tile);
    wall.appendChild(el);
    if (visit.privileged) {
      el.querySelector('.tile-media').hidden = true;
      el.querySelector('.tile-actions').hidden = true;
      el.querySelector('.tile-privileged').hidden = false;
      return;
    }
    const listen = el.querySelector('.listen');
    listen.addEventListener('click', () => {
      const on = listen.getAttribute('aria-pressed') !== 'true';
      listen.setAttribute('aria-pressed', String(on));
      listen.textContent = on ? 'Stop listening' : 'Listen';
      for (const v of el.querySelectorAll('video')) v.muted = !on;
    });
    const message = el.querySelector('.tile-message');
    el.querySelector('.warn-form').addEventListener('submit', async (e) => {
      e.preventDefault();
      const text = e.target.elements.text.value.trim();
      if (!text) { message.textContent = 'Write the warning first.'; return; }
      try {
        await api(`/api/v1/facilities/${facility}/visits/${visit.id}/warnings`, {text});
        message.textContent = 'Warning sent.';
        e.target.reset();
      } catch (err) { message.textContent = err.message; }
    });
    el.querySelector('.end-form').addEventListener('submit', async (e) => {
      e.preventDefault();
      const reason = e.target.elements.reason.value.trim();
      if (reason.length < 3) { message.textContent = 'Give the reason for ending the visit.'; return; }
      try {
        await api(`/api/v1/facilities/${facility}/visits/${visit.id}/terminate`, {reason});
        message.textContent = 'The visit was ended.';
      } catch (err) { message.textContent = err.message; }
    });
    connect(tile, visit);
  };

  const refresh = async () => {
    let visits;
    try { visits = await api(`/api/v1/facilities/${facility}/live-visits`); } catch (e) { window.ovWall.errors.push(String(e)); return; }
    const ids = new Set(visits.map((v) => v.id));
    for (const v of visits) if (!tiles.has(v.id)) add(v);
    for (const [id, tile] of tiles) {
      if (!ids.has(id) && tile.ended) { tile.el.remove(); tiles.delete(id); }
    }
    document.getElementById('wall-empty').hidden = tiles.size > 0;
  };
  refresh();
  setInterval(refresh, 5000);
})();
