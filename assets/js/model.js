// What the page knows: me, my rooms, and for each room its members and the items loaded so far.
// Items are kept by seq; a seq seen twice is one item (a resume never duplicates).

export const state = {
  me: null,
  rooms: new Map(),
  current: null,
  conn: 'idle',
  providers: [],
  // Slash commands the server told us about (from /help); /help itself is in the contract.
  commands: [{ name: 'help', description: 'List the commands available here' }],
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
    this.lastRead = null;
    this.unread = 0;
  }

  update(view) {
    this.name = view.name;
    this.host = view.host;
    this.createdAt = view.created_at;
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
   * again replaces the old copy's reactions (a later copy is newer).
   */
  addItems(list) {
    const added = [];
    let before = false;
    let unordered = false;
    for (const item of list) {
      const known = this.bySeq.get(item.seq);
      if (known) {
        known.reactions = item.reactions || {};
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
    return { added, before };
  }

  setMembers(list) {
    this.members = new Map(list.map((m) => [m.username, { ...m }]));
  }

  displayName(username) {
    const member = this.members.get(username);
    return member ? member.display_name : username;
  }

  /** Follows a system item: membership, host, bans. */
  applySystem(item) {
    switch (item.event) {
      case 'join':
        if (!this.members.has(item.user)) {
          this.members.set(item.user, { username: item.user, display_name: item.user, online: false, host: false });
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

  countUnread(me) {
    if (this.lastRead == null) return 0;
    let n = 0;
    for (let i = this.items.length - 1; i >= 0; i--) {
      const item = this.items[i];
      if (item.seq <= this.lastRead) break;
      if (item.kind !== 'system' && item.author !== me) n++;
    }
    return n;
  }
}

function readKey(code) {
  return `hearth.read.${state.me ? state.me.username : ''}.${code}`;
}

export function loadLastRead(room) {
  const stored = Number(localStorage.getItem(readKey(room.code)));
  room.lastRead = Number.isFinite(stored) && stored > 0 ? stored : null;
}

export function saveLastRead(room, seq) {
  if (room.lastRead != null && seq <= room.lastRead) return false;
  room.lastRead = seq;
  try {
    localStorage.setItem(readKey(room.code), String(seq));
  } catch {
    // Private mode: unread counts last for this page only.
  }
  return true;
}
