// The first script to run, while the rest of the UI loads: opens the socket and, on /r/CODE,
// asks to join that room; asks who is signed in and for their rooms. main.js adopts the socket,
// the frames that came meanwhile and both answers (window.hearthEarly). Signed out, the upgrade
// is refused and /api/me answers 401: main.js sees both and shows the sign-in page.
//
// A classic script, before the stylesheet in the page's head: the parser runs it as soon as it
// arrives, before the page first paints (laying out the first text loads the system font,
// tens of milliseconds on a busy machine) and before main.js (a module, so deferred), so the
// socket and the requests are on their way during that work. It arrives with the stylesheet,
// which holds the first paint anyway.
(() => {
  const room = location.pathname.match(/^\/r\/([A-Za-z0-9]{6})\/?$/);
  const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/ws`);
  const ask = (path) => {
    const response = fetch(path, { credentials: 'same-origin', headers: { accept: 'application/json' } });
    // main.js sees a failure when it reads the answer; until then it is not an uncaught one.
    response.catch(() => {});
    return response;
  };
  const early = {
    ws, frames: [], room: room ? room[1].toUpperCase() : null, opened: false, closed: false,
    me: ask('/api/me'), rooms: ask('/api/rooms'),
  };
  ws.onopen = () => {
    early.opened = true;
    if (early.room) ws.send(JSON.stringify({ type: 'join', room: early.room, ref: 'early' }));
  };
  ws.onmessage = (event) => early.frames.push(event.data);
  ws.onclose = () => {
    early.closed = true;
  };
  window.hearthEarly = early;
  // The page's first use of localStorage (unread counts, as the room is drawn) loads it, which
  // holds up the main thread for a few milliseconds in a new tab: done in the next task instead,
  // while the page waits for the network anyway.
  setTimeout(() => {
    try {
      localStorage.getItem('hearth');
    } catch {
      // Storage is off: nothing to load.
    }
  }, 0);
})();
