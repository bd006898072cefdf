// One WebSocket for every room, with automatic reconnection.
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
