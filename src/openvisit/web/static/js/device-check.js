// Camera and microphone check before a visit: a preview, a microphone level, and
// plain help when the browser refuses or no device is found.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const join = $('join');
  let stream = null;
  let audio = null;
  const ready = (ok) => {
    if (!join) return;
    join.setAttribute('aria-disabled', ok ? 'false' : 'true');
    join.classList.toggle('disabled', !ok);
  };
  if (join) join.addEventListener('click', (e) => { if (join.getAttribute('aria-disabled') === 'true') e.preventDefault(); });

  const help = (text) => {
    $('check-help').textContent = text;
    $('check-help').hidden = !text;
    $('try-again').hidden = !text;
  };

  const meter = () => {
    const ctx = audio = new AudioContext();
    const analyser = ctx.createAnalyser();
    ctx.createMediaStreamSource(stream).connect(analyser);
    const data = new Uint8Array(analyser.fftSize);
    const draw = () => {
      analyser.getByteTimeDomainData(data);
      let peak = 0;
      for (const v of data) peak = Math.max(peak, Math.abs(v - 128) / 128);
      $('mic-level').value = peak;
      if (stream) requestAnimationFrame(draw);
    };
    draw();
  };

  const check = async () => {
    help('');
    $('check-status').textContent = 'Asking your browser for the camera and microphone…';
    try {
      stream = await navigator.mediaDevices.getUserMedia({video: true, audio: true});
    } catch (e) {
      stream = null;
      ready(false);
      $('check-status').textContent = 'Your camera or microphone is not working yet.';
      if (e.name === 'NotAllowedError' || e.name === 'SecurityError') {
        help('Your browser blocked the camera and microphone. Click the camera icon in the address bar (or open your browser settings for this site), allow both, then choose Try again.');
      } else if (e.name === 'NotFoundError' || e.name === 'OverconstrainedError') {
        help('We could not find a camera and microphone. Connect them (or use a phone or computer that has them), then choose Try again.');
      } else if (e.name === 'NotReadableError') {
        help('Another app is using your camera or microphone. Close it, then choose Try again.');
      } else {
        help('Your browser could not start the camera and microphone. Try again, or use another browser.');
      }
      return;
    }
    $('preview').srcObject = stream;
    $('check-status').textContent = 'Your camera and microphone work. Speak to see the level move.';
    ready(true);
    try { meter(); } catch (e) { /* the level meter is a nicety */ }
  };

  $('try-again').addEventListener('click', check);
  window.addEventListener('pagehide', () => {
    if (stream) for (const t of stream.getTracks()) t.stop();
    stream = null;
    if (audio) audio.close();
  });
  ready(false);
  check();
})();
