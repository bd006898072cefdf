// Hearth's web UI: boot, routes, the sidebar, and the socket's frames applied to the rooms.
import { h, icon, logo, toast, modal, copyText, colorClass, initial, parseCode, exactOnHover } from './dom.js';
import {
  api, answer, state, Room, isMessageFor, Socket, registerWorker, keepAccount, keepRoom, keptRoom, forgetKept,
} from './core.js';
import { RoomView } from './room.js';

const app = document.getElementById('app');
// The page's one owner of what outlives a screen: the socket, the open room's view, and the
// shell (sidebar and main area) while signed in. Only this module changes them.
const page = { socket: null, view: null, shell: null };
// The open room's view if it shows `room`, else null: pushed frames for other rooms only update
// the sidebar.
const viewOf = (room) => (page.view && page.view.room === room ? page.view : null);
let localSeq = 0;
// The join of the room in the address bar, sent as soon as the first socket opens, before the
// rest of the page is ready: { code, answer }.
let earlyJoin = null;
// Resolved once the rooms are known and the page drawn; the socket's first join waits for it.
let markReady;
let isReady = false;
let ready = new Promise((resolve) => { markReady = resolve; });

// ---- viewport: keep the composer above the on-screen keyboard ----

function fitViewport() {
  const vv = window.visualViewport;
  if (!vv) return;
  const fit = () => {
    document.documentElement.style.setProperty('--vvh', `${Math.round(vv.height)}px`);
    if (vv.offsetTop > 0) window.scrollTo(0, 0);
  };
  vv.addEventListener('resize', fit);
  fit();
}

// ---- boot and sign-in ----

async function boot() {
  performance.mark('hearth:boot');
  fitViewport();
  let me;
  // All at once, to show the room sooner: who I am, my rooms, and the socket (which waits for
  // the page before joining, and is dropped if I turn out to be signed out). early.js asked for
  // all three while the modules loaded; without it (or on "Try again") they are asked here.
  // Signed out (as far as this page last knew, see early.js) nothing that needs a session is
  // asked before /api/session says there is one.
  const early = window.hearthEarly;
  window.hearthEarly = null;
  const rooms = early?.rooms ? early.rooms.then(answer).catch(() => null) : null;
  if (early?.ws) {
    page.socket = new Socket({ onframe, onstate, onopen, onsignedout });
    if (!page.socket.adopt(early)) page.socket.start();
  }
  try {
    me = (await (early ? early.session.then(answer) : api('GET', '/api/session'))).user;
    if (!me) throw Object.assign(new Error('Signed out.'), { status: 401 });
    performance.mark('hearth:signed-in');
  } catch (e) {
    if (page.socket) page.socket.stop();
    page.socket = null;
    if (e.status === 401) {
      rememberSession(false);
      showAuth();
    } else {
      app.replaceChildren(h('main', { class: 'auth' }, h('div', { class: 'auth-card' },
        h('div', { class: 'auth-brand' }, logo(), h('span', null, 'Hearth')),
        h('p', { class: 'auth-intro' }, 'Cannot reach the server right now.'),
        h('button', { class: 'btn btn-primary btn-wide', type: 'button', onclick: () => boot() }, 'Try again'))));
    }
    app.removeAttribute('aria-busy');
    return;
  }
  await startApp(me, rooms && await rooms);
}

/** Marks this browser as signed in or not, so the next load knows whether to open the socket early. */
function rememberSession(on) {
  try {
    if (on) localStorage.setItem('hearth.session', '1');
    else localStorage.removeItem('hearth.session');
  } catch {
    // Storage is off: each load asks /api/session first.
  }
}

async function showAuth() {
  document.title = 'Sign in · Hearth';
  document.body.dataset.view = 'auth';
  const match = location.pathname.match(/^\/r\/([^/]+)/);
  const roomCode = match ? parseCode(match[1]) : null;
  // Loaded only now: signed in, the page never needs it.
  const { renderAuth, loadProviders, loadInvite } = await import('./auth.js');
  const [providers, roomName] = await Promise.all([
    state.providers.length ? state.providers : loadProviders(),
    roomCode ? loadInvite(roomCode) : null,
  ]);
  state.providers = providers;
  renderAuth(app, {
    providers: state.providers,
    roomCode,
    roomName,
    onsignedin: (user) => startApp(user),
  });
  app.removeAttribute('aria-busy');
}

async function startApp(me, known) {
  state.me = me;
  rememberSession(true);
  let rooms = known ? known.rooms : [];
  if (!known) {
    try {
      rooms = (await api('GET', '/api/rooms')).rooms;
    } catch (e) {
      if (e.status === 401) {
        showAuth();
        return;
      }
    }
  }
  state.rooms.clear();
  for (const listed of rooms) addRoom(listed);
  renderShell();
  route();
  if (!page.socket) {
    page.socket = new Socket({ onframe, onstate, onopen, onsignedout });
    page.socket.start();
  }
  isReady = true;
  markReady();
  app.removeAttribute('aria-busy');
  // After the first paint: the worker is for the next load.
  setTimeout(registerWorker, 1000);
}

function addRoom(roomView) {
  let room = state.rooms.get(roomView.code);
  if (room) {
    room.update(roomView);
    return room;
  }
  room = new Room(roomView);
  state.rooms.set(room.code, room);
  return room;
}

async function signOut() {
  try {
    await api('POST', '/api/auth/logout');
  } catch {
    // Signed out already, or the server is away: the page forgets the session either way.
  }
  endSession();
}

function endSession() {
  rememberSession(false);
  forgetKept();
  if (page.socket) page.socket.stop();
  page.socket = null;
  isReady = false;
  ready = new Promise((resolve) => { markReady = resolve; });
  if (page.view) page.view.destroy();
  page.view = null;
  state.me = null;
  state.rooms.clear();
  state.current = null;
  page.shell = null;
  showAuth();
}

function onsignedout() {
  endSession();
  toast('Your session ended. Sign in again to carry on.');
}

// ---- the shell: sidebar and main area ----

function renderShell() {
  document.body.dataset.view = 'app';
  const connText = h('span', { class: 'conn-text' });
  const connRetry = h('button', { class: 'btn-link conn-retry', type: 'button', hidden: true, onclick: () => page.socket && page.socket.retryNow() }, 'Retry now');
  const conn = h('div', { class: 'conn' }, h('span', { class: 'conn-dot', 'aria-hidden': 'true' }), connText, connRetry);
  const joinInput = h('input', {
    id: 'join-code', class: 'join-input', placeholder: 'Code or link', autocomplete: 'off',
    autocapitalize: 'characters', spellcheck: 'false', 'aria-label': 'Room code or link',
  });
  const joinForm = h('form', { class: 'join-form', 'aria-label': 'Join a room' },
    joinInput, h('button', { class: 'btn btn-outline', type: 'submit' }, 'Join'));
  joinForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const code = parseCode(joinInput.value);
    if (!code) {
      toast('Room codes are 6 letters and digits, like K7MP2X.', 'error');
      joinInput.focus();
      return;
    }
    joinInput.value = '';
    navigate(`/r/${code}`);
  });
  const list = h('ul', { class: 'room-list' });
  const empty = h('p', { class: 'side-empty' }, 'No rooms yet. Start one, or join with a code someone shared.');
  const sidebar = h('aside', { class: 'sidebar', id: 'sidebar', 'aria-label': 'Rooms' },
    h('div', { class: 'side-head' },
      h('a', { class: 'brand', href: '/', 'aria-label': 'Hearth home' }, logo(), h('span', null, 'Hearth')),
      conn,
      h('button', { class: 'icon-btn only-narrow side-close', type: 'button', 'aria-label': 'Hide rooms', onclick: () => closeSidebar() }, icon('close'))),
    h('div', { class: 'side-actions' },
      h('button', { class: 'btn btn-primary btn-wide', type: 'button', onclick: () => createRoomDialog() }, icon('plus'), 'New room'),
      joinForm),
    h('nav', { class: 'side-nav', 'aria-labelledby': 'rooms-label' },
      h('h2', { class: 'side-label', id: 'rooms-label' }, 'Your rooms'), list, empty),
    h('div', { class: 'side-foot' },
      h('div', { class: `avatar avatar-small ${colorClass(state.me.username)}`, 'aria-hidden': 'true' }, initial(state.me.display_name)),
      h('div', { class: 'me' }, h('span', { class: 'me-name' }, state.me.display_name), h('span', { class: 'me-user' }, `@${state.me.username}`)),
      h('button', { class: 'icon-btn', type: 'button', 'aria-label': 'Sign out', title: 'Sign out', onclick: () => signOut() }, icon('logout'))));
  const main = h('main', { class: 'main', id: 'main' });
  const scrim = h('div', { class: 'scrim', 'aria-hidden': 'true', onclick: () => closeSidebar() });
  const banner = h('div', { class: 'offline-banner', role: 'status', hidden: true });
  const root = h('div', { class: 'app-shell' }, sidebar, scrim, h('div', { class: 'main-col' }, banner, main));
  root.addEventListener('click', (event) => {
    const link = event.target.closest('a[href^="/"]');
    if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
    if (link.getAttribute('href').startsWith('/auth/')) return;
    event.preventDefault();
    navigate(link.getAttribute('href'));
  });
  sidebar.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && root.classList.contains('sidebar-open')) closeSidebar();
  });
  app.replaceChildren(root);
  page.shell = { root, sidebar, main, list, empty, conn, connText, connRetry, banner };
  renderRooms();
  onstate(page.socket ? page.socket.state : 'connecting');
}

function openSidebar() {
  page.shell.root.classList.add('sidebar-open');
  const current = page.shell.sidebar.querySelector('[aria-current="page"]') || page.shell.sidebar.querySelector('button, a');
  if (current) current.focus();
}

function closeSidebar() {
  if (!page.shell || !page.shell.root.classList.contains('sidebar-open')) return;
  page.shell.root.classList.remove('sidebar-open');
  const toggle = page.shell.main.querySelector('.only-narrow');
  if (toggle) toggle.focus();
}

function renderRooms() {
  if (!page.shell) return;
  // Rooms I belong to, or was removed from while this page was open; not codes merely tried.
  const rooms = [...state.rooms.values()].filter((r) => r.fromList !== false);
  page.shell.list.replaceChildren(...rooms.map((room) => {
    const current = state.current === room.code;
    const unread = current ? 0 : room.unread;
    const mentions = current ? 0 : room.mentions;
    const removed = room.status === 'kicked' || room.status === 'banned';
    const count = (n) => (n > 99 ? '99+' : String(n));
    const label = removed ? 'removed'
      : unread ? `${count(unread)} unread${mentions ? `, ${count(mentions)} mentioning you` : ''}` : '';
    // The link's name is its text (the name, and the count for screen readers in words).
    return h('li', null, h('a', {
      class: `room-link${removed ? ' room-kicked' : ''}${unread ? ' has-unread' : ''}${mentions ? ' has-mention' : ''}${room.notify === 'none' ? ' room-muted' : ''}`,
      href: `/r/${room.code}`, 'aria-current': current ? 'page' : null,
    },
    h('span', { class: `room-badge ${colorClass(room.code)}`, 'aria-hidden': 'true' }, initial(room.name)),
    h('span', { class: 'room-link-name' }, room.name, label ? h('span', { class: 'visually-hidden' }, `, ${label}`) : null),
    removed ? h('span', { class: 'room-flag', 'aria-hidden': 'true' }, 'removed')
      : unread ? h('span', { class: 'unread', 'aria-hidden': 'true' }, mentions ? `@${count(mentions)} · ${count(unread)}` : count(unread)) : null));
  }));
  page.shell.empty.hidden = rooms.length > 0;
  setTitle();
  keepAccount(state.me, rooms.filter((r) => r.status !== 'kicked' && r.status !== 'banned'));
}

/**
 * The tab's title, "(unread) Room · Hearth", and its icon with the same count (red when one of
 * them mentions me). The open room counts too while the tab is in the background (its messages
 * are not read until someone looks), so a hidden tab still signals. Rooms set to notify of
 * nothing are left out.
 */
function setTitle() {
  const hidden = document.visibilityState !== 'visible';
  const counted = [...state.rooms.values()].filter((r) => r.notify !== 'none' && (hidden || state.current !== r.code));
  const total = counted.reduce((n, r) => n + r.unread, 0);
  const name = page.view ? `${page.view.room.name} · ` : '';
  document.title = `${total ? `(${total > 99 ? '99+' : total}) ` : ''}${name}Hearth`;
  setBadge(total, counted.some((r) => r.mentions > 0));
}

/** The tab's icon: the app's, or with the count on it (`web.rs` draws it; red for a mention). */
function setBadge(count, mentioned) {
  const link = document.querySelector('link[rel="icon"]');
  const href = count ? `/icons/badge/${count > 99 ? '99+' : count}${mentioned ? 'm' : ''}.svg` : '/icons/icon.svg';
  if (link && link.getAttribute('href') !== href) link.setAttribute('href', href);
}

function onstate(connState) {
  state.conn = connState;
  document.body.dataset.conn = connState;
  if (!page.shell) return;
  clearInterval(page.shell.countdown);
  const words = {
    idle: 'Connecting…', connecting: 'Connecting…', open: 'Connected', reconnecting: 'Reconnecting…',
    waiting: 'Offline', signedout: 'Signed out',
  };
  const text = words[connState] || connState;
  const offline = connState === 'waiting' || connState === 'reconnecting';
  // The banner is a live region: it changes with the state only. The countdown ticks beside it,
  // hidden from screen readers, so they are not told the time every second.
  const countdown = h('span', { class: 'countdown', 'aria-hidden': 'true' });
  const tick = () => {
    const secs = page.socket ? Math.max(0, Math.ceil((page.socket.nextAt - Date.now()) / 1000)) : 0;
    countdown.textContent = connState === 'waiting' ? `Retrying in ${secs} s.` : '';
  };
  page.shell.connText.textContent = text;
  page.shell.conn.dataset.state = connState;
  page.shell.connRetry.hidden = connState !== 'waiting';
  page.shell.banner.hidden = !offline;
  page.shell.banner.replaceChildren(...(offline ? [
    h('span', null, `${text}. Messages you write will be sent when the connection is back.`), countdown,
    connState === 'waiting' ? h('button', { class: 'btn-link', type: 'button', onclick: () => page.socket && page.socket.retryNow() }, 'Retry now') : null,
  ] : []));
  tick();
  if (connState === 'waiting') page.shell.countdown = setInterval(tick, 1000);
  // Who is online is known only while my socket is open: the panel stops showing dots meanwhile.
  if (page.view) page.view.onMembers();
}

// ---- routes ----

function navigate(path, replace = false) {
  if (location.pathname !== path) history[replace ? 'replaceState' : 'pushState'](null, '', path);
  route();
}

window.addEventListener('popstate', () => {
  if (state.me) route();
});

function route() {
  if (!page.shell) return;
  closeSidebar();
  const match = location.pathname.match(/^\/r\/([^/]+)\/?$/);
  if (match) openRoom(match[1]);
  else showHome();
}

function showHome() {
  if (page.view) page.view.destroy();
  page.view = null;
  state.current = null;
  page.shell.root.classList.add('at-home');
  const nameInput = h('input', { id: 'home-room-name', maxlength: '100', placeholder: 'Book club', autocomplete: 'off' });
  const create = h('form', { class: 'card' },
    h('h2', null, 'Start a room'),
    h('p', null, 'You will be its host. Share its code or link with the people you want in it.'),
    h('label', { for: 'home-room-name' }, 'Room name'),
    h('div', { class: 'inline-form' }, nameInput, h('button', { class: 'btn btn-primary', type: 'submit' }, 'Create')));
  create.addEventListener('submit', (event) => {
    event.preventDefault();
    createRoom(nameInput.value);
  });
  const codeInput = h('input', { id: 'home-join-code', placeholder: 'K7MP2X', autocomplete: 'off', autocapitalize: 'characters', spellcheck: 'false' });
  const join = h('form', { class: 'card' },
    h('h2', null, 'Join a room'),
    h('p', null, 'Got a code or a link from someone? Paste it here.'),
    h('label', { for: 'home-join-code' }, 'Code or link'),
    h('div', { class: 'inline-form' }, codeInput, h('button', { class: 'btn btn-outline', type: 'submit' }, 'Join')));
  join.addEventListener('submit', (event) => {
    event.preventDefault();
    const code = parseCode(codeInput.value);
    if (code) navigate(`/r/${code}`);
    else toast('Room codes are 6 letters and digits, like K7MP2X.', 'error');
  });
  page.shell.main.replaceChildren(h('section', { class: 'home', 'aria-labelledby': 'home-title' },
    h('header', { class: 'room-head' },
      h('button', { class: 'icon-btn only-narrow', type: 'button', 'aria-label': 'Show rooms', onclick: () => openSidebar() }, icon('menu')),
      h('h1', { class: 'room-name', id: 'home-title' }, 'Home')),
    h('div', { class: 'home-body' },
      h('div', { class: 'hero' }, logo(),
        h('h2', null, `Welcome, ${state.me.display_name}`),
        h('p', null, state.rooms.size
          ? 'Pick a room on the left, start a new one, or join one with a code.'
          : 'Start a room and invite your people, or join one with the code someone shared.')),
      h('div', { class: 'cards' }, create, join))));
  renderRooms();
}

function openRoom(raw) {
  page.shell.root.classList.remove('at-home');
  const valid = parseCode(raw);
  const code = valid || raw.toUpperCase().slice(0, 12);
  if (valid && raw !== code) history.replaceState(null, '', `/r/${code}`);
  let room = state.rooms.get(code);
  if (!room) {
    room = new Room({ code, name: code, host: '', created_at: Date.now() });
    room.fromList = false;
    state.rooms.set(code, room);
    room.status = valid ? 'joining' : 'unknown';
  }
  if (viewOf(room)) return;
  // Opening a room I could not join, or was removed from, asks again: the host may have let me
  // back in. The banner keeps saying why until the answer comes.
  const retry = valid && ['unknown', 'banned', 'kicked'].includes(room.status);
  if (page.view) page.view.destroy();
  state.current = code;
  page.view = new RoomView(room, roomActions(room));
  page.view.mount(page.shell.main);
  renderRooms();
  if ((retry || room.status === 'joining') && !room.subscribed && page.socket && page.socket.open) join(room);
  else if (!room.items.length && valid) showKept(room);
}

/**
 * Not connected (the server away, the page perhaps loaded from the worker's cache): the room
 * as this device last saw it, until the join brings what is new (with `since`, as after any
 * reconnect).
 */
async function showKept(room) {
  const kept = await keptRoom(state.me.username, room.code);
  if (!kept || room.items.length || !Array.isArray(kept.messages)) return;
  room.update(kept.room);
  if (!room.members.size) room.setMembers(kept.members || []);
  const { added, before } = room.addItems(kept.messages);
  if (viewOf(room)) {
    page.view.onItems(added, before);
    page.view.onMembers();
  }
  renderRooms();
}

// ---- rooms over the socket ----

async function onopen() {
  performance.mark('hearth:socket-open');
  // A new socket has no room: each is joined again (with `since` where items are loaded).
  for (const room of state.rooms.values()) room.subscribed = false;
  earlyJoin = null;
  const asked = page.socket.earlyAnswer;
  page.socket.earlyAnswer = null;
  const wanted = location.pathname.match(/^\/r\/([^/]+)\/?$/);
  const code = wanted && parseCode(wanted[1]);
  if (code && asked) {
    // early.js asked already, on this socket.
    earlyJoin = { code, answer: asked };
  } else if (code && !isReady) {
    const answer = page.socket.request({ type: 'join', room: code });
    answer.catch(() => {});
    earlyJoin = { code, answer };
  }
  await ready;
  if (!page.socket || !page.socket.open) return;
  const rooms = [...state.rooms.values()].filter((r) => !r.subscribed && (r.status === 'ok' || r.status === 'joining'));
  const current = rooms.find((r) => r.code === state.current);
  if (current) await join(current);
  const rest = rooms.filter((r) => r !== current);
  for (let i = 0; i < rest.length; i += 10) {
    await Promise.all(rest.slice(i, i + 10).map((room) => join(room)));
  }
}

async function join(room) {
  if (!page.socket || !page.socket.open) return;
  room.subscribed = true;
  const resumed = room.items.length > 0;
  for (;;) {
    const resuming = room.items.length > 0;
    const since = room.maxSeq;
    let answer;
    const early = earlyJoin && earlyJoin.code === room.code && !resuming ? earlyJoin.answer : null;
    if (early) earlyJoin = null;
    try {
      answer = await (early || page.socket.request({ type: 'join', room: room.code, ...(resuming ? { since } : {}) }));
    } catch (e) {
      room.subscribed = false;
      if (e.code === 'banned') room.status = 'banned';
      else if (e.code === 'unknown_room') room.status = 'unknown';
      else if (e.code !== 'disconnected' && e.code !== 'stopped') toast(e.message, 'error');
      if (room.status === 'banned' || room.status === 'unknown') {
        if (room.fromList === false) state.rooms.delete(room.code);
        viewOf(room)?.renderStatus();
        renderRooms();
      }
      return;
    }
    if (room.code === state.current) performance.mark('hearth:joined');
    if (Array.isArray(answer.commands)) state.commands = answer.commands;
    if (answer.limits && Number.isInteger(answer.limits.max_text_chars)) {
      state.maxTextChars = answer.limits.max_text_chars;
    }
    room.update(answer.room);
    room.setMembers(answer.members);
    room.status = 'ok';
    room.kickedBy = null;
    room.fromList = true;
    const { added, before } = room.addItems(answer.messages);
    for (const item of added) if (item.kind !== 'system') room.typing.delete(item.author);
    // Read further here while the server could not be told (offline): tell it now.
    if (room.readSeq > (answer.room.read_seq || 0)) sendRead(room);
    settlePending(room);
    afterItems(room, added, before, true);
    if (!(resuming && answer.more)) break;
  }
  if (viewOf(room)) {
    page.view.renderStatus();
    page.view.onMembers();
    if (resumed) refreshNewest(room);
  }
  resendPending(room);
  renderRooms();
}

/**
 * After a resume, reactions, edits and deletes made while away (`since` brings only newer
 * items): re-read the newest page and update what changed.
 */
async function refreshNewest(room) {
  if (!room.items.length) return;
  try {
    const newest = await page.socket.request({ type: 'history', room: room.code, limit: 100 });
    const { changed } = room.addItems(newest.messages.filter((fresh) => room.bySeq.has(fresh.seq)));
    for (const item of changed) viewOf(room)?.onChanged(item);
  } catch {
    // The next reconnect tries again.
  }
}

function afterItems(room, added, before, fromJoin = false) {
  room.countUnread(state.me.username);
  // Live messages for a room I am not looking at; what a join catches up on is only counted.
  const looking = state.current === room.code && document.visibilityState === 'visible';
  if (!fromJoin && !looking && added.some((item) => isMessageFor(item, state.me.username))) {
    import('./notify.js').then(({ alertFor }) => {
      for (const item of added) alertFor(room, item, state.me.username, (code) => navigate(`/r/${code}`));
    });
  }
  if (added.length) keepRoom(state.me.username, room);
  if (viewOf(room)) {
    page.view.onItems(added, before);
    if (!fromJoin && added.some((i) => i.kind === 'system')) page.view.onMembers();
    if (added.some((i) => i.kind !== 'system')) page.view.renderTyping();
    markRead();
  }
  renderRooms();
}

// What each frame the server pushes does to its room. A frame for a room this page does not
// know, or of a type not listed here, changes nothing.
const roomFrames = {
  message(room, frame) {
    const { added, before } = room.addItems([frame.item]);
    for (const item of added) {
      if (item.kind === 'system') room.applySystem(item);
      else room.typing.delete(item.author);
      if (item.kind === 'system' && item.event === 'join' && room.members.get(item.user)?.unnamed) learnNames(room);
    }
    settlePending(room);
    afterItems(room, added, before);
  },
  read(room, frame) {
    if (!room.readTo(frame.seq)) return;
    room.countUnread(state.me.username);
    renderRooms();
  },
  reaction(room, frame) {
    const item = room.applyReaction(frame);
    if (item) viewOf(room)?.onReaction(item);
  },
  edited(room, frame) {
    const item = room.applyEdit(frame);
    if (item) {
      viewOf(room)?.onChanged(item);
      keepRoom(state.me.username, room);
    }
  },
  deleted(room, frame) {
    const item = room.applyDelete(frame);
    if (item) {
      viewOf(room)?.onChanged(item);
      keepRoom(state.me.username, room);
      // A deleted message is not unread any more.
      room.countUnread(state.me.username);
      renderRooms();
    }
  },
  presence(room, frame) {
    const member = room.members.get(frame.user);
    if (member) member.online = frame.online;
    else if (frame.online) room.members.set(frame.user, { username: frame.user, display_name: frame.user, online: true, host: false, unnamed: true });
    if (room.members.get(frame.user)?.unnamed) learnNames(room);
    viewOf(room)?.onMembers();
  },
  typing(room, frame) {
    room.typing.set(frame.user, Date.now() + 5000);
    viewOf(room)?.renderTyping();
  },
  kicked(room, frame) {
    room.status = 'kicked';
    room.kickedBy = frame.by;
    room.subscribed = false;
    room.typing.clear();
    room.pending = [];
    if (viewOf(room)) {
      page.view.renderStatus();
      page.view.renderPending();
      page.view.renderTyping();
    } else {
      toast(`You were removed from ${room.name}.`);
    }
    renderRooms();
  },
  notice(room, frame) {
    addNotice(room, frame.text);
  },
};

function onframe(frame) {
  if (frame.type === 'error') {
    // An error without a request to answer: nothing on the page waits for it.
    toast(frame.message || 'Something went wrong.', 'error');
    return;
  }
  const apply = Object.hasOwn(roomFrames, frame.type) ? roomFrames[frame.type] : null;
  const code = frame.room && (typeof frame.room === 'string' ? frame.room : frame.room.code);
  const room = code ? state.rooms.get(code) : null;
  if (apply && room) apply(room, frame);
}

/**
 * `join` and `presence` frames name a member by username only: the display names of members
 * met that way are read from the room's member list (one request however many arrive at once),
 * and everything showing them is redrawn.
 */
function learnNames(room) {
  if (room.naming) return;
  room.naming = setTimeout(async () => {
    let members;
    try {
      ({ members } = await api('GET', `/api/rooms/${room.code}`));
    } catch {
      members = [];
    }
    room.naming = null;
    let changed = false;
    for (const fresh of members) {
      const known = room.members.get(fresh.username);
      if (!known || !known.unnamed) continue;
      delete known.unnamed;
      if (known.display_name !== fresh.display_name) {
        known.display_name = fresh.display_name;
        changed = true;
      }
    }
    if (changed) viewOf(room)?.onNames();
  }, 100);
}

function addNotice(room, text) {
  const notice = { after: room.maxSeq, text: String(text || '') };
  room.notices.push(notice);
  viewOf(room)?.onNotice(notice);
}

/** The open room, seen to its end in a visible tab, is read that far: on every device of mine. */
function markRead() {
  const room = page.view && page.view.room;
  if (!room || document.visibilityState !== 'visible' || !page.view.stick || !room.items.length) return;
  if (room.readTo(room.maxSeq)) {
    sendRead(room);
    room.countUnread(state.me.username);
    renderRooms();
  }
}

function sendRead(room) {
  if (!page.socket || !page.socket.open || !room.readSeq) return;
  // Lost with the connection: the next join tells the server again (see join).
  page.socket.request({ type: 'read', room: room.code, seq: room.readSeq }).catch(() => {});
}

document.addEventListener('visibilitychange', () => {
  page.view?.onAway(document.visibilityState !== 'visible');
  markRead();
  if (page.shell) setTitle();
});

function roomActions(room) {
  return {
    send: (text, replyTo) => sendMessage(room, text, replyTo),
    edit: (seq, text) => changeItem(room, { type: 'edit', room: room.code, seq, text }),
    remove: (seq) => changeItem(room, { type: 'delete', room: room.code, seq }),
    react: (seq, emoji, on) => {
      if (!page.socket || !page.socket.open) {
        toast('Not connected: try again in a moment.', 'error');
        return;
      }
      page.socket.request({ type: 'react', room: room.code, seq, emoji, on }).catch((e) => toast(e.message, 'error'));
    },
    loadOlder: async () => {
      if (!page.socket || !page.socket.open || room.loadingOlder) return;
      room.loadingOlder = true;
      try {
        const older = await page.socket.request({ type: 'history', room: room.code, before: room.minSeq, limit: 100 });
        const { added, before } = room.addItems(older.messages);
        viewOf(room)?.onItems(added, before);
      } catch (e) {
        if (e.code !== 'disconnected') toast(e.message, 'error');
      } finally {
        room.loadingOlder = false;
      }
    },
    typing: () => page.socket && page.socket.post({ type: 'typing', room: room.code }),
    retry: (p) => {
      p.state = 'queued';
      p.error = null;
      resendPending(room);
      viewOf(room)?.renderPending();
    },
    discard: (p) => {
      room.pending = room.pending.filter((x) => x !== p);
      viewOf(room)?.renderPending();
    },
    markRead,
    notifications: () => import('./notify.js').then(({ notifyDialog }) => notifyDialog(room, () => {
      viewOf(room)?.renderHead();
      renderRooms();
    })),
    host: async (kind, user) => {
      try {
        await page.socket.request({ type: kind, room: room.code, user });
        const name = room.displayName(user);
        toast({ kick: `${name} was removed.`, unban: `${name} can join again.`, transfer_host: `${name} is now the host.` }[kind]);
      } catch (e) {
        toast(e.code === 'not_host' ? 'Only the host can do that.' : e.message, 'error');
      }
    },
    leave: async () => {
      try {
        await page.socket.request({ type: 'leave', room: room.code });
      } catch (e) {
        toast(e.code === 'disconnected' ? 'Not connected: try again in a moment.' : e.message, 'error');
        return;
      }
      state.rooms.delete(room.code);
      toast(`You left ${room.name}.`);
      navigate('/');
    },
    openSidebar,
    home: () => navigate('/'),
  };
}

// ---- sending: nothing lost, nothing twice ----
//
// A message is pending until its item is in the room. Written while offline it waits
// ("queued") and goes out on reconnect. Sent but unconfirmed when the connection dropped
// ("unsure"), it is looked for among the items the resume brings: found, it is done; not found,
// it was never stored and goes out again.

function sendMessage(room, text, replyTo = null) {
  const p = { local: ++localSeq, text, replyTo, state: 'queued', seq: null, base: room.maxSeq, error: null };
  room.pending.push(p);
  if (page.socket && page.socket.open && room.subscribed) transmit(room, p);
  else viewOf(room)?.renderPending();
}

async function transmit(room, p) {
  p.state = 'sending';
  p.base = room.maxSeq;
  viewOf(room)?.renderPending();
  try {
    const frame = { type: 'send', room: room.code, text: p.text };
    if (p.replyTo) frame.reply_to = p.replyTo;
    const answer = await page.socket.request(frame);
    if (answer.type === 'notice') {
      room.pending = room.pending.filter((x) => x !== p);
      viewOf(room)?.renderPending();
      addNotice(room, answer.text);
    } else {
      p.seq = answer.seq;
    }
  } catch (e) {
    if (e.code === 'disconnected' || e.code === 'timeout' || e.code === 'stopped') {
      p.state = 'unsure';
    } else if (e.code === 'unknown_command') {
      room.pending = room.pending.filter((x) => x !== p);
      viewOf(room)?.renderPending();
      toast(`${p.text.split(/[\s=]/)[0]} is not a command here. Type / to see the commands.`, 'error');
    } else {
      p.state = 'failed';
      p.error = { too_long: 'too long', not_member: 'you are not in this room', rate_limited: 'sending too fast' }[e.code] || e.message;
    }
  }
  settlePending(room);
}

function settlePending(room) {
  const before = room.pending.length;
  room.pending = room.pending.filter((p) => !(p.seq && room.bySeq.has(p.seq)));
  if (page.view && page.view.room === room && (before !== room.pending.length || room.pending.length)) page.view.renderPending();
}

function resendPending(room) {
  if (!page.socket || !page.socket.open || room.status !== 'ok') return;
  const claimed = new Set(room.pending.filter((p) => p.seq).map((p) => p.seq));
  for (const p of room.pending) {
    if (p.state !== 'unsure') continue;
    const found = room.items.find((item) => item.seq > p.base && item.author === state.me.username
      && item.kind === 'chat' && item.text === p.text && !claimed.has(item.seq));
    if (found) {
      claimed.add(found.seq);
      p.seq = found.seq;
    } else {
      p.state = 'queued';
    }
  }
  settlePending(room);
  for (const p of room.pending) if (p.state === 'queued') transmit(room, p);
}

/** An edit or delete: shown once the server's `edited` or `deleted` frame comes. */
async function changeItem(room, frame) {
  if (!page.socket || !page.socket.open) {
    toast('Not connected: try again in a moment.', 'error');
    return false;
  }
  try {
    await page.socket.request(frame);
    return true;
  } catch (e) {
    const words = { not_author: frame.type === 'edit' ? 'Only its author can edit a message.' : 'Only its author or the host can delete a message.' };
    toast(words[e.code] || e.message, 'error');
    return false;
  }
}

// ---- create a room ----

function createRoomDialog() {
  closeSidebar();
  const input = h('input', { id: 'new-room-name', maxlength: '100', required: true, autocomplete: 'off', placeholder: 'Book club' });
  const error = h('p', { class: 'form-error', role: 'alert' });
  modal({
    title: 'New room',
    body: [h('label', { for: 'new-room-name' }, 'Name'), input, error],
    actions: [
      h('button', { class: 'btn btn-quiet', type: 'button', value: '', onclick: (e) => e.target.closest('dialog').close('') }, 'Cancel'),
      h('button', { class: 'btn btn-primary', type: 'submit', value: 'create' }, 'Create room'),
    ],
    onopen: (dialog, form) => {
      input.focus();
      form.addEventListener('submit', async (event) => {
        event.preventDefault();
        const ok = await createRoom(input.value, error);
        if (ok) dialog.close('created');
      });
    },
  });
}

async function createRoom(name, errorEl) {
  const trimmed = String(name || '').trim();
  const fail = (text) => {
    if (errorEl) errorEl.textContent = text;
    else toast(text, 'error');
    return false;
  };
  if (!trimmed) return fail('Give the room a name.');
  let created;
  try {
    created = (await api('POST', '/api/rooms', { name: trimmed })).room;
  } catch (e) {
    return fail(e.code === 'invalid_name' ? 'Names have 1 to 100 characters.' : e.message);
  }
  const room = addRoom(created);
  room.status = 'joining';
  navigate(`/r/${room.code}`);
  shareDialog(room);
  return true;
}

function shareDialog(room) {
  const link = `${location.origin}/r/${room.code}`;
  const linkField = h('input', { class: 'share-link', readonly: true, value: link, 'aria-label': 'Link to the room' });
  const copied = h('p', { class: 'copied', role: 'status' });
  modal({
    title: `“${room.name}” is ready`,
    body: [
      h('p', { class: 'dialog-text' }, 'Share the code or the link. Anyone signed in to this server who has it can join.'),
      h('p', { class: 'share-code', 'aria-label': `Room code ${room.code.split('').join(' ')}` }, room.code),
      linkField, copied,
    ],
    actions: [
      h('button', {
        class: 'btn btn-outline', type: 'button',
        onclick: async () => {
          const ok = await copyText(link);
          copied.textContent = ok ? 'Link copied.' : 'Select the link above and copy it.';
          if (!ok) linkField.select();
        },
      }, icon('copy'), 'Copy link'),
      h('button', { class: 'btn btn-primary', value: 'ok' }, 'Done'),
    ],
  }).then(() => {
    if (page.view) page.view.input.focus();
  });
}

exactOnHover(document);
boot();
