// Loaded first and run as soon as it arrives (async): opens the socket and, on /r/CODE, asks to
// join that room while the rest of the UI is still loading. main.js adopts the socket and the
// frames that came meanwhile (window.hearthEarly). Signed out, the upgrade is refused: main.js
// sees the closed socket and ignores it.
const room = location.pathname.match(/^\/r\/([A-Za-z0-9]{6})\/?$/);
const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/ws`);
const early = { ws, frames: [], room: room ? room[1].toUpperCase() : null, opened: false, closed: false };
ws.onopen = () => {
  early.opened = true;
  if (early.room) ws.send(JSON.stringify({ type: 'join', room: early.room, ref: 'early' }));
};
ws.onmessage = (event) => early.frames.push(event.data);
ws.onclose = () => {
  early.closed = true;
};
window.hearthEarly = early;
