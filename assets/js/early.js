// The first script to run, while the rest of the UI loads: asks whether this browser is signed
// in (/api/session answers 200 either way) and, if this page was signed in when last used (a
// mark main.js keeps in localStorage), opens the socket, on /r/CODE asks to join that room, and
// asks for the rooms. main.js adopts the socket, the frames that came meanwhile and the answers
// (window.hearthEarly). Without the mark nothing that needs a session is asked, so a signed-out
// load logs no refused socket and no 401; a session made elsewhere (an OAuth sign-in) is found
// by /api/session, and main.js then opens the socket itself.
//
// A classic script, before the stylesheet in the page's head: the parser runs it as soon as it
// arrives, before the page first paints (laying out the first text loads the system font,
// tens of milliseconds on a busy machine) and before main.js (a module, so deferred), so the
// socket and the requests are on their way during that work. It arrives with the stylesheet,
// which holds the first paint anyway.
(() => {
  const room = location.pathname.match(/^\/r\/([A-Za-z0-9]{6})\/?$/);
  let signedIn = false;
  try {
    signedIn = localStorage.getItem('hearth.session') === '1';
  } catch {
    // Storage is off: ask the server first.
  }
  const ask = (path) => {
    const response = fetch(path, { credentials: 'same-origin', headers: { accept: 'application/json' } });
    // main.js sees a failure when it reads the answer; until then it is not an uncaught one.
    response.catch(() => {});
    return response;
  };
  const early = {
    ws: null, frames: [], room: room ? room[1].toUpperCase() : null, opened: false, closed: false,
    session: ask('/api/session'), rooms: signedIn ? ask('/api/rooms') : null,
  };
  window.hearthEarly = early;
  if (!signedIn) return;
  const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/ws`);
  early.ws = ws;
  ws.onopen = () => {
    early.opened = true;
    if (early.room) ws.send(JSON.stringify({ type: 'join', room: early.room, ref: 'early' }));
  };
  ws.onmessage = (event) => early.frames.push(event.data);
  ws.onclose = () => {
    early.closed = true;
  };
})();
