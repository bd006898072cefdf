// What the page knows and how it talks to the server: the JSON API, the rooms as the page holds
// them, and the one WebSocket.

// ---- the JSON API ----
//
// The session is the HttpOnly cookie the server set at sign-in; the page never sees or stores
// the token.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export async function api(method, path, body) {
  const init = { method, credentials: 'same-origin', headers: { accept: 'application/json' } };
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  return answer(await fetch(path, init));
}

/** The data of an API response, or an ApiError. */
export async function answer(response) {
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const error = data && data.error;
    throw new ApiError(response.status, error ? error.code : `http_${response.status}`,
      error ? error.message : `The server answered ${response.status}.`);
  }
  return data;
}

// ---- the model: me, my rooms, and for each room its members and the items loaded so far ----
//
// Items are kept by seq; a seq seen twice is one item (a resume never duplicates).

export const state = {
  me: null,
  rooms: new Map(),
  current: null,
  conn: 'idle',
  providers: [],
  // What the last `joined` said: the slash commands and the message length limit. Until one
  // arrives, /help (in the contract) and the contract's default limit.
  commands: [{ name: 'help', usage: '/help', description: 'lists these commands' }],
  maxTextChars: 4000,
};

export class Room {
  constructor(view) {
    this.code = view.code;
    this.name = view.name;
    this.host = view.host;
    this.createdAt = view.created_at;
    this.members = new Map();
    this.items = [];
    this.bySeq = new Map();
    this.notices = [];
    this.pending = [];
    this.typing = new Map();
    // ok | joining | kicked | banned | unknown | gone
    this.status = 'joining';
    this.kickedBy = null;
    this.subscribed = false;
    this.loadingOlder = false;
    // Where I stand, as the server last counted (room objects carry it), and my read position.
    this.base = { last: 0, unread: 0, mentions: 0 };
    this.readSeq = 0;
    this.notify = 'mentions';
    this.kind = 'room';
    this.unread = 0;
    this.mentions = 0;
    this.standing(view);
  }

  update(view) {
    this.name = view.name;
    this.host = view.host;
    this.createdAt = view.created_at;
    this.standing(view);
  }

  /** Takes the counts a room object carries (GET /api/rooms, `joined`). */
  standing(view) {
    if (!Number.isInteger(view.last_seq)) return;
    this.base = { last: view.last_seq, unread: view.unread || 0, mentions: view.mentions || 0 };
    this.readSeq = Math.max(this.readSeq, view.read_seq || 0);
    if (view.notify) this.notify = view.notify;
    if (view.kind) this.kind = view.kind;
    this.countUnread(state.me ? state.me.username : '');
  }

  /** Moves my read position on (never back); whether it moved. */
  readTo(seq) {
    if (seq <= this.readSeq) return false;
    this.readSeq = seq;
    return true;
  }

  get maxSeq() {
    return this.items.length ? this.items[this.items.length - 1].seq : 0;
  }

  get minSeq() {
    return this.items.length ? this.items[0].seq : 0;
  }

  /** Whether older items exist than those loaded: seqs start at 1 with no gaps. */
  get hasOlder() {
    return this.items.length > 0 && this.items[0].seq > 1;
  }

  /**
   * Adds items; returns what was new, and whether any came before the loaded ones. An item seen
   * again replaces the old copy's reactions, text and tombstone (a later copy is newer); the
   * copies that changed are in `changed`.
   */
  addItems(list) {
    const added = [];
    const changed = [];
    let before = false;
    let unordered = false;
    for (const item of list) {
      const known = this.bySeq.get(item.seq);
      if (known) {
        const reacted = JSON.stringify(known.reactions) !== JSON.stringify(item.reactions || {});
        if (reacted || known.text !== item.text || !!known.deleted !== !!item.deleted) changed.push(known);
        Object.assign(known, { reactions: item.reactions || {}, text: item.text, edited_at: item.edited_at, deleted: item.deleted, mentions: item.mentions });
        continue;
      }
      item.reactions = item.reactions || {};
      if (this.items.length && item.seq < this.maxSeq) {
        unordered = true;
        if (item.seq < this.minSeq) before = true;
      }
      this.items.push(item);
      this.bySeq.set(item.seq, item);
      added.push(item);
    }
    if (unordered) this.items.sort((a, b) => a.seq - b.seq);
    return { added, before, changed };
  }

  applyEdit({ seq, text, edited_at: editedAt, mentions }) {
    const item = this.bySeq.get(seq);
    if (!item) return null;
    Object.assign(item, { text, edited_at: editedAt, mentions: mentions || [] });
    return item;
  }

  /** The item becomes its tombstone, as the server stores it. */
  applyDelete({ seq }) {
    const item = this.bySeq.get(seq);
    if (!item) return null;
    for (const key of ['text', 'mentions', 'edited_at', 'reply_to']) delete item[key];
    item.reactions = {};
    item.deleted = true;
    return item;
  }

  setMembers(list) {
    this.members = new Map(list.map((m) => [m.username, { ...m }]));
  }

  displayName(username) {
    const member = this.members.get(username);
    return member ? member.display_name : username;
  }

  /** Whether another member is shown under the same display name (a look-alike to flag). */
  nameIsShared(username) {
    const name = this.displayName(username).toLowerCase();
    for (const m of this.members.values()) {
      if (m.username !== username && m.display_name.toLowerCase() === name) return true;
    }
    return false;
  }

  /** Follows a system item: membership, host, bans. */
  applySystem(item) {
    switch (item.event) {
      case 'join':
        if (!this.members.has(item.user)) {
          // Named by username until the member list says better (main.js: learnNames).
          this.members.set(item.user, { username: item.user, display_name: item.user, online: false, host: false, unnamed: true });
        }
        break;
      case 'leave':
      case 'kick':
        this.members.delete(item.user);
        break;
      case 'host_transfer':
        this.host = item.to;
        for (const member of this.members.values()) member.host = member.username === item.to;
        break;
      default:
        break;
    }
  }

  /** Users removed by the host and not let back, as far as the loaded history tells. */
  banned() {
    const banned = new Map();
    for (const item of this.items) {
      if (item.kind !== 'system') continue;
      if (item.event === 'kick') banned.set(item.user, item);
      else if (item.event === 'unban' || item.event === 'join') banned.delete(item.user);
    }
    return [...banned.keys()];
  }

  applyReaction({ seq, emoji, user, on }) {
    const item = this.bySeq.get(seq);
    if (!item) return null;
    const users = item.reactions[emoji] || [];
    const has = users.includes(user);
    if (on && !has) item.reactions[emoji] = [...users, user];
    if (!on && has) {
      const rest = users.filter((u) => u !== user);
      if (rest.length) item.reactions[emoji] = rest;
      else delete item.reactions[emoji];
    }
    return item;
  }

  /**
   * Unread messages and mentions of me after my read position: chat and bot items by others,
   * not tombstones. Where the items after my read position are loaded they are counted here;
   * where they are not, the server's count stands for them (which counts joins and leaves too,
   * as PROTOCOL.md has it), plus what arrived since.
   */
  countUnread(me) {
    const loaded = this.items.length > 0 && (!this.hasOlder || this.minSeq <= this.readSeq + 1);
    const own = loaded || this.readSeq >= this.base.last;
    let unread = own ? 0 : this.base.unread;
    let mentions = own ? 0 : this.base.mentions;
    const from = own ? this.readSeq : Math.max(this.readSeq, this.base.last);
    for (let i = this.items.length - 1; i >= 0; i--) {
      const item = this.items[i];
      if (item.seq <= from) break;
      if (!isMessageFor(item, me)) continue;
      unread++;
      if ((item.mentions || []).includes(me)) mentions++;
    }
    this.unread = unread;
    this.mentions = mentions;
  }
}

/** Whether `item` is something said to `me`: a chat or bot item by someone else, not deleted. */
export function isMessageFor(item, me) {
  return item.kind !== 'system' && !item.deleted && item.author !== me;
}

// ---- one WebSocket for every room, with automatic reconnection ----
//
// After a close the socket waits (0.5 s, 1 s, 2 s, ... up to 15 s, with jitter), asks
// /api/me whether the session still holds (a refused upgrade looks like any other failure to a
// browser), and opens again; `onopen` then rejoins the rooms with `since`. A close with 4401
// means the session ended: no reconnect.

const SESSION_ENDED = 4401;
const POLICY = 1008;
const MAX_DELAY = 15000;
const REQUEST_TIMEOUT = 20000;

export class Socket {
  constructor({ onframe, onstate, onopen, onsignedout }) {
    this.onframe = onframe;
    this.onstate = onstate;
    this.onopen = onopen;
    this.onsignedout = onsignedout;
    this.ws = null;
    this.attempt = 0;
    this.timer = null;
    this.nextAt = 0;
    this.seq = 0;
    this.waiting = new Map();
    this.stopped = false;
    this.state = 'idle';
    this.retryNow = this.retryNow.bind(this);
    this.onvisible = () => {
      if (document.visibilityState === 'visible') this.retryNow();
    };
    window.addEventListener('online', this.retryNow);
    document.addEventListener('visibilitychange', this.onvisible);
  }

  get open() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  setState(state) {
    this.state = state;
    this.onstate(state, this);
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    window.removeEventListener('online', this.retryNow);
    document.removeEventListener('visibilitychange', this.onvisible);
    if (this.ws) this.ws.close(1000, 'bye');
    this.ws = null;
    this.failAll('stopped');
  }

  retryNow() {
    if (this.stopped || this.state !== 'waiting') return;
    clearTimeout(this.timer);
    this.attempt = Math.max(0, this.attempt - 1);
    this.reconnect();
  }

  /**
   * Takes over a socket opened before the UI loaded (early.js) with the frames it got so far.
   * Resolves `early` with the answer to its join, if it sent one. False if that socket is gone.
   */
  adopt(early) {
    if (!early || early.closed || early.ws.readyState > WebSocket.OPEN) {
      if (early) early.ws.close();
      return false;
    }
    this.stopped = false;
    this.earlyAnswer = early.room ? this.expect('early') : null;
    this.earlyAnswer?.catch(() => {});
    this.attach(early.ws);
    for (const data of early.frames) this.receive(data);
    early.frames = [];
    if (early.opened) {
      this.opened();
    } else {
      // Still connecting: the join early.js would have sent on open is sent here instead.
      early.ws.onopen = () => {
        if (early.room) early.ws.send(JSON.stringify({ type: 'join', room: early.room, ref: 'early' }));
        this.opened();
      };
      this.setState('connecting');
    }
    return true;
  }

  connect() {
    if (this.stopped) return;
    this.setState(this.attempt === 0 ? 'connecting' : 'reconnecting');
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    this.attach(new WebSocket(`${scheme}//${location.host}/ws`));
  }

  opened() {
    this.attempt = 0;
    this.setState('open');
    this.onopen();
  }

  receive(data) {
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return;
    }
    const pending = frame.ref && this.waiting.get(frame.ref);
    if (pending) {
      this.waiting.delete(frame.ref);
      clearTimeout(pending.timer);
      if (frame.type === 'error') pending.reject(Object.assign(new Error(frame.message), { code: frame.code }));
      else pending.resolve(frame);
      return;
    }
    this.onframe(frame);
  }

  attach(ws) {
    this.ws = ws;
    ws.onopen = () => this.opened();
    ws.onmessage = (event) => this.receive(event.data);
    ws.onclose = (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.failAll('disconnected');
      if (this.stopped) return;
      if (event.code === SESSION_ENDED) {
        this.stopped = true;
        this.setState('signedout');
        this.onsignedout();
        return;
      }
      this.schedule(event.code === POLICY ? 4 : 0);
    };
  }

  schedule(extra = 0) {
    this.attempt += 1 + extra;
    const base = Math.min(MAX_DELAY, 500 * 2 ** (this.attempt - 1));
    const delay = Math.round(base * (0.8 + Math.random() * 0.4));
    this.nextAt = Date.now() + delay;
    this.setState('waiting');
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.reconnect(), delay);
  }

  async reconnect() {
    if (this.stopped) return;
    this.setState('reconnecting');
    let status = 0;
    try {
      const response = await fetch('/api/me', { credentials: 'same-origin', cache: 'no-store' });
      status = response.status;
    } catch {
      status = 0;
    }
    if (this.stopped) return;
    if (status === 401) {
      this.stopped = true;
      this.setState('signedout');
      this.onsignedout();
    } else if (status === 200) {
      this.connect();
    } else {
      this.schedule();
    }
  }

  failAll(code) {
    for (const pending of this.waiting.values()) {
      clearTimeout(pending.timer);
      pending.reject(Object.assign(new Error('The connection was lost.'), { code }));
    }
    this.waiting.clear();
  }

  /** Sends a frame with a fresh ref; resolves with its answer, rejects with its error. */
  request(frame) {
    if (!this.open) return Promise.reject(Object.assign(new Error('Not connected.'), { code: 'disconnected' }));
    const ref = `r${++this.seq}`;
    const answer = this.expect(ref);
    this.ws.send(JSON.stringify({ ...frame, ref }));
    return answer;
  }

  /** The answer to a frame sent with `ref`. */
  expect(ref) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(ref);
        reject(Object.assign(new Error('The server did not answer.'), { code: 'timeout' }));
      }, REQUEST_TIMEOUT);
      this.waiting.set(ref, { resolve, reject, timer });
    });
  }

  /** Sends a frame that needs no answer (typing); dropped while disconnected. */
  post(frame) {
    if (this.open) this.ws.send(JSON.stringify(frame));
  }
}

// ---- working without the server ----
//
// The service worker (sw.js) serves the UI from its cache when the server is out of reach; the
// last messages of each room the page showed are kept in the same cache storage, so that an
// offline reload shows the room as it was. Service workers and cache storage exist only in
// secure contexts: https, or http on 127.0.0.1 and localhost. On a plain-http LAN address all
// of this is skipped.
const KEPT_CACHE = 'hearth-data';
// Enough to fill a screen; the rest loads from the server once it is back.
const KEPT_ITEMS = 50;
const SAVE_AFTER = 1000;
const keepTimers = new Map();

export const offlineAvailable = typeof window !== 'undefined' && window.isSecureContext
  && 'serviceWorker' in navigator && 'caches' in window;

/**
 * Registers sw.js. The page requires Trusted Types, so the worker's address goes through a
 * policy (the one the CSP names) that makes no URL but this one.
 */
export function registerWorker() {
  if (!offlineAvailable || registerWorker.done) return;
  registerWorker.done = true;
  let url = '/sw.js';
  if (window.trustedTypes) {
    const policy = window.trustedTypes.createPolicy('hearth-sw', {
      createScriptURL: (value) => {
        if (value !== '/sw.js') throw new TypeError(`not the worker: ${value}`);
        return value;
      },
    });
    url = policy.createScriptURL('/sw.js');
  }
  navigator.serviceWorker.register(url, { scope: '/' }).catch(() => {
    // No worker (private mode, a browser without): the UI works online all the same.
  });
}

function key(user, code) {
  return `/offline/${encodeURIComponent(user)}/${code}`;
}

/** Keeps the room's newest items and members, a second after the last change. */
export function keepRoom(user, room) {
  if (!offlineAvailable || !room.items.length) return;
  clearTimeout(keepTimers.get(room.code));
  keepTimers.set(room.code, setTimeout(async () => {
    keepTimers.delete(room.code);
    const body = JSON.stringify({
      room: { code: room.code, name: room.name, host: room.host, created_at: room.createdAt },
      members: [...room.members.values()].map(({ username, display_name, host }) => ({ username, display_name, host, online: false })),
      messages: room.items.slice(-KEPT_ITEMS),
    });
    try {
      const cache = await caches.open(KEPT_CACHE);
      await cache.put(key(user, room.code), new Response(body, { headers: { 'content-type': 'application/json' } }));
    } catch {
      // Storage full or off: the next change tries again.
    }
  }, SAVE_AFTER));
}

/**
 * Keeps what `/api/session` and `/api/rooms` would answer now, a second after the last change,
 * for the worker to answer with while the server is out of reach (it also keeps the answers it
 * sees; these cover a page that loaded before the worker took over).
 */
export function keepAccount(me, rooms) {
  if (!offlineAvailable) return;
  clearTimeout(keepTimers.get(''));
  keepTimers.set('', setTimeout(async () => {
    keepTimers.delete('');
    const views = rooms.map((r) => ({ code: r.code, name: r.name, host: r.host, created_at: r.createdAt }));
    const text = JSON.stringify([me, views]);
    if (text === keepAccount.last) return;
    keepAccount.last = text;
    const json = (data) => new Response(JSON.stringify(data), { headers: { 'content-type': 'application/json' } });
    try {
      const cache = await caches.open(KEPT_CACHE);
      await cache.put('/api/session', json({ user: me }));
      await cache.put('/api/rooms', json({ rooms: views }));
    } catch {
      // Storage full or off: the next change tries again.
    }
  }, SAVE_AFTER));
}

/** What was kept of a room for `user`: { room, members, messages }, or null. */
export async function keptRoom(user, code) {
  if (!offlineAvailable) return null;
  try {
    const kept = await caches.match(key(user, code), { cacheName: KEPT_CACHE });
    return kept ? await kept.json() : null;
  } catch {
    return null;
  }
}

/** Signed out: nothing of the account stays on the device (the shell itself may). */
export async function forgetKept() {
  keepAccount.last = null;
  for (const timer of keepTimers.values()) clearTimeout(timer);
  keepTimers.clear();
  if (!offlineAvailable) return;
  try {
    await caches.delete(KEPT_CACHE);
  } catch {
    // Nothing kept.
  }
}
