// The room: header, message log, typing line and composer, plus the members panel.
import {
  h, icon, copyText, toast, confirmDialog,
  dayKey, dayLabel, timeEl, setTime, refreshTimes, colorClass, initial, richText, listNames, longDate,
} from './dom.js';
import { state, isMessageFor } from './core.js';
import { renderMarkdown } from './markdown.js';

export const EMOJI = [
  ['👍', 'thumbs up'], ['❤️', 'heart'], ['😂', 'laughing'], ['🎉', 'party'],
  ['😮', 'surprised'], ['😢', 'sad'], ['🙏', 'thank you'], ['🔥', 'fire'],
  ['👀', 'eyes'], ['✅', 'done'],
];

const NEAR_BOTTOM = 48;
const NEAR_TOP = 400;
const TYPING_EVERY = 2500;
/** The server's limit on a message's characters (`joined` says it; 0: none). */
const maxChars = () => state.maxTextChars;
/** How a command is called, without its name: `/stock SYMBOL` gives `SYMBOL`. */
const usageArgs = (command) => (command.usage || '').replace(/^\/\S+\s*/, '');
let rowTemplate = null;

/** Beside a display name another member also uses: the @username tells them apart. */
const sharedNameMark = () => h('span', { class: 'name-shared', title: 'Another member uses this name too' }, '(same name as another member)');

export class RoomView {
  /**
   * `actions`: send(text, replyTo), edit(seq, text), remove(seq), react(seq, emoji, on),
   * loadOlder(), typing(), retry(p), discard(p), markRead(), notifications(), host(kind, user),
   * leave(), openSidebar(), home().
   */
  constructor(room, actions) {
    this.room = room;
    this.actions = actions;
    this.stick = true;
    this.firstPaint = false;
    this.lastTyping = 0;
    this.ctx = null;
    this.rows = new Map();
    this.hintIndex = 0;
    // The "new since you were last here" line goes before the first unread item after this seq.
    this.dividerAfter = room.unread > 0 ? room.readSeq : null;
    // What the composer is doing besides writing a new message: { kind: 'reply' | 'edit', seq }.
    this.mode = null;
    this.build();
  }

  build() {
    const room = this.room;
    this.title = h('h1', { class: 'room-name', id: 'room-title' });
    this.codeBtn = h('button', {
      class: 'code-chip', type: 'button', title: 'Copy the link to this room',
      onclick: () => this.copyLink(),
    }, icon('link'), h('span', { class: 'code' }, room.code));
    this.membersBtn = h('button', {
      class: 'icon-btn members-toggle', type: 'button', 'aria-controls': 'members', 'aria-expanded': 'false',
      onclick: () => this.toggleMembers(),
    }, icon('users'), h('span', { class: 'count' }));
    this.bellBtn = h('button', {
      class: 'icon-btn bell', type: 'button', onclick: () => this.actions.notifications(),
    }, icon('bell'));
    this.menuBtn = h('button', {
      class: 'icon-btn only-narrow', type: 'button', 'aria-label': 'Show rooms', 'aria-controls': 'sidebar',
      onclick: () => this.actions.openSidebar(),
    }, icon('menu'));
    const head = h('header', { class: 'room-head' },
      this.menuBtn,
      h('div', { class: 'room-title' }, this.title, this.codeBtn),
      this.bellBtn,
      this.membersBtn);

    this.banner = h('div', { class: 'banner', role: 'alert', hidden: true });
    this.top = h('div', { class: 'log-top' });
    // The live region wraps the list, so the list keeps its list semantics (role=log on the
    // list itself would make its items orphans).
    this.log = h('ol', { class: 'log' });
    this.logRegion = h('div', { class: 'log-region', role: 'log', 'aria-label': 'Messages', 'aria-live': 'polite' }, this.log);
    this.pendingLog = h('ol', { class: 'log pending-log', 'aria-label': 'Messages being sent' });
    this.scroller = h('div', { class: 'scroller', tabindex: '0', role: 'region', 'aria-label': 'Message history' },
      this.top, this.logRegion, this.pendingLog);
    this.pill = h('button', { class: 'pill', type: 'button', hidden: true, onclick: () => this.toBottom(true) },
      icon('down'), 'New messages');
    this.jumpPill = h('button', { class: 'jump-unread', type: 'button', hidden: true, onclick: () => this.jumpToUnread() },
      icon('up'), 'Jump to first unread');
    this.typingLine = h('div', { class: 'typing', 'aria-live': 'polite' });

    this.hints = h('ul', { class: 'hints', id: 'slash-hints', role: 'listbox', 'aria-label': 'Commands', hidden: true });
    this.input = h('textarea', {
      class: 'composer-input', id: 'composer', rows: '1', 'aria-label': 'Message', placeholder: 'Message',
      enterkeyhint: 'send', autocomplete: 'off',
      'aria-autocomplete': 'list', 'aria-controls': 'slash-hints',
    });
    this.counter = h('span', { class: 'counter', 'aria-live': 'polite' });
    this.sendBtn = h('button', { class: 'send-btn', type: 'submit', 'aria-label': 'Send message' }, icon('send'));
    this.modeBar = h('div', { class: 'composer-mode', hidden: true });
    this.composer = h('form', { class: 'composer', 'aria-label': 'Write a message' },
      this.hints, this.modeBar, h('div', { class: 'composer-box' }, this.input, this.counter, this.sendBtn));

    this.section = h('section', { class: 'room', 'aria-labelledby': 'room-title' },
      head, this.banner, h('div', { class: 'log-wrap' }, this.scroller, this.jumpPill, this.pill), this.typingLine, this.composer);
    this.members = new MembersPanel(room, this.actions, () => this.toggleMembers(false));
    this.el = h('div', { class: 'room-wrap' }, this.section, this.members.el);

    this.scroller.addEventListener('scroll', () => this.onScroll(), { passive: true });
    this.log.addEventListener('click', (event) => this.onLogClick(event));
    this.pendingLog.addEventListener('click', (event) => this.onPendingClick(event));
    this.composer.addEventListener('submit', (event) => {
      event.preventDefault();
      this.submit();
    });
    this.input.addEventListener('keydown', (event) => this.onKey(event));
    this.input.addEventListener('input', () => this.onInput());
    this.resize = new ResizeObserver(() => {
      if (this.stick) this.toBottom();
    });
    this.resize.observe(this.scroller);
    this.clock = setInterval(() => refreshTimes(this.log), 30000);
    this.outside = (event) => {
      if (this.picker && !this.picker.contains(event.target) && !event.target.closest('.react-add')) this.closePicker();
      // A tap anywhere but on the tapped message hides its tools again.
      const msg = event.target.closest && event.target.closest('.msg');
      for (const active of this.log.querySelectorAll('.msg-active')) if (active !== msg) active.classList.remove('msg-active');
    };
    document.addEventListener('pointerdown', this.outside);
  }

  mount(parent) {
    parent.replaceChildren(this.el);
    this.input.value = loadDraft(this.room.code);
    if (this.input.value) this.onInput(false);
    this.renderHead();
    this.renderStatus();
    this.renderAll();
    this.renderPending();
    this.renderTyping();
    this.members.render();
    if (matchMedia('(pointer: fine)').matches && this.room.status === 'ok') this.input.focus({ preventScroll: true });
  }

  destroy() {
    clearInterval(this.clock);
    clearTimeout(this.typingTimer);
    cancelAnimationFrame(this.bottomFrame);
    this.resize.disconnect();
    document.removeEventListener('pointerdown', this.outside);
    this.closePicker();
  }

  // ---- header, status ----

  renderHead() {
    const room = this.room;
    this.title.textContent = room.name;
    this.codeBtn.setAttribute('aria-label', `Room code ${room.code}. Copy the link to this room`);
    const online = state.conn === 'open' ? [...room.members.values()].filter((m) => m.online).length : 0;
    this.membersBtn.querySelector('.count').textContent = String(room.members.size);
    this.membersBtn.setAttribute('aria-label', `Members: ${room.members.size}, ${online} online`);
    this.input.setAttribute('aria-label', `Message ${room.name}`);
    this.input.placeholder = `Message ${room.name}`;
    const level = { all: 'every message', mentions: 'mentions only', none: 'off' }[room.notify] || room.notify;
    this.bellBtn.setAttribute('aria-label', `Notifications: ${level}`);
    this.bellBtn.title = `Notifications: ${level}`;
    this.bellBtn.classList.toggle('bell-off', room.notify === 'none');
  }

  renderStatus() {
    const room = this.room;
    const messages = {
      kicked: ['You were removed from this room', room.kickedBy ? ` by ${room.displayName(room.kickedBy)}` : '',
        '. Only the host can let you back in.'],
      banned: room.kickedBy
        ? [`You were removed from this room by ${room.displayName(room.kickedBy)}. Only the host can let you back in.`]
        : ['You can\'t join this room: its host removed you. Only the host can let you back in.'],
      unknown: [`There is no room with the code ${room.code}. Check the code and try again.`],
      gone: ['You left this room.'],
    }[room.status];
    if (messages) {
      this.banner.replaceChildren(h('p', null, messages.join('')),
        h('button', { class: 'btn btn-quiet', type: 'button', onclick: () => this.actions.home() }, 'Back to your rooms'));
      this.banner.hidden = false;
    } else {
      this.banner.hidden = true;
    }
    const usable = room.status === 'ok' || room.status === 'joining';
    this.composer.hidden = !usable;
    this.section.classList.toggle('room-closed', !usable);
    this.members.render();
  }

  // ---- the log ----

  renderTop() {
    const room = this.room;
    if (room.hasOlder) {
      this.top.replaceChildren(h('button', {
        class: 'btn btn-quiet load-older', type: 'button', onclick: () => this.loadOlder(),
      }, room.loadingOlder ? 'Loading…' : 'Load older messages'));
    } else if (room.items.length) {
      this.top.replaceChildren(h('div', { class: 'room-start' },
        h('div', { class: `room-badge ${colorClass(room.code)}`, 'aria-hidden': 'true' }, initial(room.name)),
        h('p', { class: 'room-start-title' }, room.name),
        h('p', null, 'This is the beginning of the room. ', h('time', {
          datetime: new Date(room.createdAt).toISOString(), dataset: { ts: room.createdAt },
        }, `Created ${longDate.format(new Date(room.createdAt))}.`))));
    } else {
      this.top.replaceChildren();
    }
  }

  renderAll() {
    const frag = document.createDocumentFragment();
    this.ctx = { day: null, group: null, body: null, author: null, kind: null, minute: null };
    this.rows.clear();
    this.dividerShown = false;
    this.divider = null;
    const notices = [...this.room.notices];
    for (const item of this.room.items) {
      this.place(frag, item);
      while (notices.length && notices[0].after <= item.seq) this.placeNotice(frag, notices.shift());
    }
    for (const notice of notices) this.placeNotice(frag, notice);
    // Redrawn, not new: screen readers are not to read the whole log again.
    this.logRegion.setAttribute('aria-busy', 'true');
    this.log.replaceChildren(frag);
    requestAnimationFrame(() => this.logRegion.removeAttribute('aria-busy'));
    this.renderTop();
    if (this.stick) this.toBottom();
    if (!this.firstPaint && this.room.items.length) this.markFirstPaint();
    this.maybeLoadMore();
    // After the frame that draws the log: asking where the line is would lay it out twice.
    requestAnimationFrame(() => this.showJump());
  }

  /**
   * The tab was hidden (`away`: new items from now on get the "new" line, if none is shown) or
   * seen again (a line that nothing came after is dropped).
   */
  onAway(away) {
    if (away && !this.dividerShown) this.dividerAfter = this.room.readSeq;
    else if (!away && !this.dividerShown) this.dividerAfter = null;
  }

  /** Whether the first unread item is above what is on screen (or not loaded yet). */
  showJump() {
    let above = false;
    if (this.divider && this.divider.isConnected) {
      above = this.divider.getBoundingClientRect().bottom < this.scroller.getBoundingClientRect().top;
    } else if (this.dividerAfter != null && !this.dividerShown) {
      above = this.room.hasOlder && this.dividerAfter < this.room.minSeq;
    }
    this.jumpPill.hidden = !above;
  }

  async jumpToUnread() {
    // Not following the newest while older pages load in, nor after.
    this.stick = false;
    for (let pages = 0; !this.dividerShown && this.room.hasOlder && pages < 20; pages += 1) {
      await this.actions.loadOlder();
    }
    this.jumpPill.hidden = true;
    if (!this.divider) return;
    cancelAnimationFrame(this.bottomFrame);
    this.bottomFrame = 0;
    this.stick = false;
    this.divider.scrollIntoView({ block: 'start' });
  }

  /** New items: appended, or when older ones arrived, everything redrawn in place. */
  onItems(added, before) {
    if (!added.length) return;
    if (before || !this.ctx) {
      const fromBottom = this.scroller.scrollHeight - this.scroller.scrollTop;
      this.renderAll();
      if (!this.stick) this.scroller.scrollTop = this.scroller.scrollHeight - fromBottom;
      return;
    }
    const lastShown = this.lastSeq || 0;
    if (added.some((item) => item.seq < lastShown)) {
      this.renderAll();
      return;
    }
    const wasAtBottom = this.stick;
    const frag = document.createDocumentFragment();
    for (const item of added) this.place(frag, item);
    this.log.append(frag);
    this.renderTop();
    const mine = added.some((item) => item.author === state.me.username && item.kind !== 'system');
    if (wasAtBottom || mine) this.toBottom();
    else if (added.some((item) => item.kind !== 'system')) this.pill.hidden = false;
    if (!this.firstPaint) this.markFirstPaint();
  }

  /**
   * Performance marks for the first messages on screen: "hearth:room-painted" once the frame
   * that draws them is done, and an Element Timing entry "hearth-room" with the paint time the
   * browser reports (tests/browser/tools/first-paint.mjs reads both).
   */
  markFirstPaint() {
    this.firstPaint = true;
    const texts = this.log.querySelectorAll('.text, .system-text');
    if (texts.length) texts[texts.length - 1].setAttribute('elementtiming', 'hearth-room');
    requestAnimationFrame(() => setTimeout(() => performance.mark('hearth:room-painted'), 0));
  }

  place(parent, item) {
    const ctx = this.ctx;
    this.lastSeq = item.seq;
    const day = dayKey(item.ts);
    if (day !== ctx.day) {
      parent.append(h('li', { class: 'day' }, h('span', null, dayLabel(item.ts))));
      ctx.day = day;
      ctx.group = null;
    }
    const fromStart = !this.room.hasOlder || this.room.minSeq <= this.dividerAfter + 1;
    if (!this.dividerShown && this.dividerAfter != null && fromStart && item.seq > this.dividerAfter && isMessageFor(item, state.me.username)) {
      this.divider = h('li', { class: 'unread-divider', role: 'separator', 'aria-label': 'New messages since you were last here' },
        h('span', null, 'New'));
      parent.append(this.divider);
      this.dividerShown = true;
      ctx.group = null;
    }
    if (item.kind === 'system') {
      const row = this.systemRow(item);
      parent.append(row);
      this.rows.set(item.seq, row);
      ctx.group = null;
      return;
    }
    const minute = Math.floor(item.ts / 60000);
    if (!ctx.group || ctx.author !== item.author || ctx.kind !== item.kind || ctx.minute !== minute) {
      const name = this.room.displayName(item.author);
      const bot = item.kind === 'bot';
      ctx.body = h('div', { class: 'group-body' });
      ctx.group = h('li', { class: `group${bot ? ' group-bot' : ''}${item.author === state.me.username ? ' group-mine' : ''}` },
        h('div', { class: `avatar ${colorClass(item.author)}`, 'aria-hidden': 'true' }, bot ? '⚙' : initial(name)),
        h('div', { class: 'group-main' },
          h('div', { class: 'group-head' },
            h('span', { class: 'author', title: `@${item.author}` }, name),
            h('span', { class: 'author-user' }, `@${item.author}`),
            this.room.nameIsShared(item.author) ? sharedNameMark() : null,
            bot ? h('span', { class: 'bot-badge', title: 'Answer from a bot' }, 'BOT') : null,
            timeEl(item.ts)),
          ctx.body));
      parent.append(ctx.group);
      ctx.author = item.author;
      ctx.kind = item.kind;
      ctx.minute = minute;
    }
    const row = this.messageRow(item);
    ctx.body.append(row);
    this.rows.set(item.seq, row);
  }

  /** A message's row: a copy of one made once, filled in (under half the time of building each anew). */
  messageRow(item) {
    rowTemplate ||= h('div', { class: 'msg' },
      h('div', { class: 'text' }),
      h('div', { class: 'reactions', hidden: true }),
      h('div', { class: 'msg-tools' },
        h('time', { class: 'time time-inline' }),
        h('button', { class: 'icon-btn msg-reply', type: 'button', 'aria-label': 'Reply', title: 'Reply' }, icon('reply')),
        // Last, so that Shift+Tab from the composer lands on the newest message's reactions.
        h('button', {
          class: 'icon-btn react-add', type: 'button', 'aria-label': 'Add a reaction', 'aria-haspopup': 'true',
          title: 'Add a reaction',
        }, icon('smile'))));
    const row = rowTemplate.cloneNode(true);
    const [text, reactions, tools] = row.children;
    row.id = `m-${item.seq}`;
    row.dataset.seq = item.seq;
    setTime(tools.firstElementChild, item.ts);
    if (item.deleted) {
      row.classList.add('msg-deleted');
      text.textContent = 'This message was deleted.';
      tools.replaceChildren(tools.firstElementChild);
      return row;
    }
    if (item.kind === 'chat' && item.reply_to) text.before(this.quoteEl(item.reply_to));
    text.append(...renderMarkdown(item.text || '', item.mentions || []));
    if (item.edited_at) text.append(' ', h('span', { class: 'edited', title: `Edited ${new Date(item.edited_at).toLocaleString()}` }, '(edited)'));
    if ((item.mentions || []).includes(state.me.username)) row.classList.add('msg-mentions-me');
    if (Object.values(item.reactions || {}).some((users) => users.length)) reactions.replaceWith(this.reactionsEl(item));
    const mine = item.author === state.me.username;
    const react = tools.lastElementChild;
    if (mine && item.kind === 'chat') {
      react.before(h('button', { class: 'icon-btn msg-edit', type: 'button', 'aria-label': 'Edit', title: 'Edit' }, icon('edit')));
    }
    if (mine || this.room.host === state.me.username) {
      react.before(h('button', { class: 'icon-btn msg-delete', type: 'button', 'aria-label': 'Delete', title: 'Delete' }, icon('trash')));
    }
    return row;
  }

  /** The quoted start of the message a reply answers; a click jumps to it. */
  quoteEl(seq) {
    const original = this.room.bySeq.get(seq);
    let words = 'an earlier message';
    if (original && original.deleted) words = 'a deleted message';
    else if (original) words = (original.text || '').slice(0, 120);
    const who = original && original.author ? this.room.displayName(original.author) : null;
    return h('button', { class: 'quote', type: 'button', dataset: { seq }, title: 'Show the message this answers' },
      who ? h('strong', null, who) : null, who ? ' ' : null, h('span', null, words));
  }

  /** An item was edited, deleted or reacted to while away: its row is made again in place. */
  onChanged(item) {
    const old = this.rows.get(item.seq);
    // System items show no text or reactions that could change.
    if (!old || item.kind === 'system') return;
    const stick = this.stick;
    const row = this.messageRow(item);
    old.replaceWith(row);
    if (stick) this.toBottom();
    this.rows.set(item.seq, row);
    // Replies quoting it show the change too.
    for (const quote of this.log.querySelectorAll(`.quote[data-seq="${item.seq}"]`)) quote.replaceWith(this.quoteEl(item.seq));
    if (this.mode && this.mode.seq === item.seq && item.deleted) this.setMode(null);
  }

  jumpTo(seq) {
    const row = this.rows.get(seq);
    if (!row) {
      toast('That message is further back: load older messages to see it.');
      return;
    }
    this.stick = false;
    row.scrollIntoView({ block: 'center', behavior: 'smooth' });
    row.classList.remove('msg-flash');
    void row.offsetWidth;
    row.classList.add('msg-flash');
  }

  reactionsEl(item) {
    const entries = Object.entries(item.reactions || {}).filter(([, users]) => users.length);
    const wrap = h('div', { class: 'reactions' });
    if (!entries.length) {
      wrap.hidden = true;
      return wrap;
    }
    for (const [emoji, users] of entries) {
      const mine = users.includes(state.me.username);
      const names = listNames(users.map((u) => (u === state.me.username ? 'you' : this.room.displayName(u))));
      wrap.append(h('button', {
        class: `chip${mine ? ' chip-mine' : ''}`, type: 'button', 'aria-pressed': String(mine),
        title: `${names} reacted with ${emoji}`,
        'aria-label': `${emoji} ${users.length}: ${names}. ${mine ? 'Remove your reaction' : 'React too'}`,
        dataset: { emoji },
      }, h('span', { class: 'chip-emoji' }, emoji), h('span', { class: 'chip-count' }, String(users.length))));
    }
    return wrap;
  }

  systemRow(item) {
    const name = (user) => h('strong', null, this.room.displayName(user));
    let words;
    switch (item.event) {
      case 'room_created': words = [name(item.user), ' created the room']; break;
      case 'join': words = [name(item.user), ' joined']; break;
      case 'leave': words = [name(item.user), ' left']; break;
      case 'kick': words = [name(item.by), ' removed ', name(item.user)]; break;
      case 'unban': words = [name(item.by), ' let ', name(item.user), ' back in']; break;
      case 'host_transfer':
        words = item.by ? [name(item.by), ' made ', name(item.to), ' the host'] : [name(item.to), ' is now the host'];
        break;
      default: words = [String(item.event || 'Something happened')];
    }
    return h('li', { class: `system system-${item.event}`, id: `m-${item.seq}`, dataset: { seq: item.seq } },
      h('span', { class: 'system-text' }, words), timeEl(item.ts));
  }

  placeNotice(parent, notice) {
    parent.append(h('li', { class: 'notice' },
      h('span', { class: 'notice-label' }, 'Only you can see this'),
      h('p', { class: 'text' }, richText(notice.text))));
    this.ctx.group = null;
  }

  onNotice(notice) {
    this.placeNotice(this.log, notice);
    this.toBottom();
  }

  onReaction(item) {
    const row = this.rows.get(item.seq);
    if (!row) return;
    const old = row.querySelector('.reactions');
    const stick = this.stick;
    old.replaceWith(this.reactionsEl(item));
    if (stick) this.toBottom();
  }

  // ---- pending (my messages not yet confirmed) ----

  renderPending() {
    const rows = this.room.pending.map((p) => {
      const status = {
        sending: 'Sending…',
        queued: 'Waiting for the connection…',
        unsure: 'Reconnecting…',
        failed: `Not sent: ${p.error || 'something went wrong'}`,
      }[p.state];
      return h('li', { class: `group group-mine pending pending-${p.state}`, dataset: { local: p.local } },
        h('div', { class: `avatar ${colorClass(state.me.username)}`, 'aria-hidden': 'true' }, initial(state.me.display_name)),
        h('div', { class: 'group-main' },
          h('div', { class: 'group-head' }, h('span', { class: 'author' }, state.me.display_name),
            h('span', { class: 'pending-status' }, status)),
          h('p', { class: 'text' }, p.text),
          p.state === 'failed' ? h('div', { class: 'pending-actions' },
            h('button', { class: 'btn btn-quiet btn-small', type: 'button', dataset: { act: 'retry' } }, 'Retry'),
            h('button', { class: 'btn btn-quiet btn-small', type: 'button', dataset: { act: 'discard' } }, 'Discard')) : null));
    });
    this.pendingLog.replaceChildren(...rows);
    if (this.stick && rows.length) this.toBottom();
  }

  onPendingClick(event) {
    const button = event.target.closest('button[data-act]');
    if (!button) return;
    const local = Number(button.closest('[data-local]').dataset.local);
    const p = this.room.pending.find((x) => x.local === local);
    if (!p) return;
    if (button.dataset.act === 'retry') this.actions.retry(p);
    else this.actions.discard(p);
  }

  // ---- typing ----

  renderTyping() {
    const now = Date.now();
    const names = [];
    for (const [user, until] of this.room.typing) {
      if (until > now && user !== state.me.username) names.push(this.room.displayName(user));
      else if (until <= now) this.room.typing.delete(user);
    }
    let text = '';
    // No ellipsis in the words: the line's animated dots are its ellipsis.
    if (names.length === 1) text = `${names[0]} is typing`;
    else if (names.length > 1 && names.length <= 3) text = `${listNames(names)} are typing`;
    else if (names.length > 3) text = 'Several people are typing';
    if (this.typingLine.textContent !== text) this.typingLine.textContent = text;
    this.typingLine.classList.toggle('active', Boolean(text));
    clearTimeout(this.typingTimer);
    if (names.length) this.typingTimer = setTimeout(() => this.renderTyping(), 1000);
  }

  // ---- scrolling ----

  atBottom() {
    const s = this.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight < NEAR_BOTTOM;
  }

  /** Scrolls to the newest message in the next frame (one layout per frame, however many calls). */
  toBottom(smooth = false) {
    this.stick = true;
    this.pill.hidden = true;
    this.smooth = this.smooth || smooth;
    if (this.bottomFrame) return;
    this.bottomFrame = requestAnimationFrame(() => {
      this.bottomFrame = 0;
      this.scroller.scrollTo({ top: this.scroller.scrollHeight, behavior: this.smooth ? 'smooth' : 'instant' });
      this.smooth = false;
      this.actions.markRead();
    });
  }

  onScroll() {
    // A scroll to the bottom is due in this frame (new items came after the last one): the
    // event is from before them, and says nothing about where the person is reading.
    if (this.bottomFrame) return;
    this.stick = this.atBottom();
    if (!this.jumpPill.hidden || this.divider) this.showJump();
    if (this.stick) {
      this.pill.hidden = true;
      this.actions.markRead();
    }
    if (this.scroller.scrollTop < NEAR_TOP) this.loadOlder();
  }

  loadOlder() {
    const room = this.room;
    if (!room.hasOlder || room.loadingOlder) return;
    this.actions.loadOlder().finally(() => this.renderTop());
    this.renderTop();
  }

  /** Keeps loading until the log fills the screen, so there is something to scroll. */
  maybeLoadMore() {
    if (!this.room.hasOlder) return;
    requestAnimationFrame(() => {
      if (this.scroller.scrollHeight <= this.scroller.clientHeight + NEAR_TOP) this.loadOlder();
    });
  }

  // ---- reactions ----

  onLogClick(event) {
    const quote = event.target.closest('.quote');
    if (quote) {
      this.jumpTo(Number(quote.dataset.seq));
      return;
    }
    const tool = event.target.closest('.msg-reply, .msg-edit, .msg-delete');
    if (tool) {
      const seq = Number(tool.closest('.msg').dataset.seq);
      if (tool.classList.contains('msg-reply')) this.setMode({ kind: 'reply', seq });
      else if (tool.classList.contains('msg-edit')) this.setMode({ kind: 'edit', seq });
      else this.confirmDelete(seq);
      return;
    }
    const chip = event.target.closest('.chip');
    if (chip) {
      const seq = Number(chip.closest('.msg').dataset.seq);
      this.actions.react(seq, chip.dataset.emoji, chip.getAttribute('aria-pressed') !== 'true');
      return;
    }
    const add = event.target.closest('.react-add');
    if (add) {
      const row = add.closest('.msg');
      if (this.picker && this.picker.parentElement === row) this.closePicker();
      else this.openPicker(row, add);
      return;
    }
    // A tap on a message (touch screens have no hover) shows its tools.
    const msg = event.target.closest('.msg');
    if (msg && !event.target.closest('a, button')) {
      for (const other of this.log.querySelectorAll('.msg-active')) if (other !== msg) other.classList.remove('msg-active');
      msg.classList.toggle('msg-active');
    }
  }

  openPicker(row, opener) {
    this.closePicker();
    const seq = Number(row.dataset.seq);
    const buttons = EMOJI.map(([emoji, name]) => h('button', {
      class: 'picker-btn', type: 'button', role: 'menuitem', 'aria-label': `React with ${name}`, title: name,
      onclick: () => {
        const item = this.room.bySeq.get(seq);
        const mine = item && (item.reactions[emoji] || []).includes(state.me.username);
        this.actions.react(seq, emoji, !mine);
        this.closePicker();
        opener.focus();
      },
    }, emoji));
    const picker = h('div', { class: 'picker', role: 'menu', 'aria-label': 'Pick a reaction' }, buttons);
    picker.addEventListener('keydown', (event) => {
      const i = buttons.indexOf(document.activeElement);
      if (event.key === 'Escape') {
        event.preventDefault();
        this.closePicker();
        opener.focus();
      } else if (event.key === 'ArrowRight' || event.key === 'ArrowDown') {
        event.preventDefault();
        buttons[(i + 1) % buttons.length].focus();
      } else if (event.key === 'ArrowLeft' || event.key === 'ArrowUp') {
        event.preventDefault();
        buttons[(i - 1 + buttons.length) % buttons.length].focus();
      }
    });
    const rowTop = row.getBoundingClientRect().top - this.scroller.getBoundingClientRect().top;
    if (rowTop < 70) picker.classList.add('picker-below');
    row.append(picker);
    row.classList.add('picking');
    opener.setAttribute('aria-expanded', 'true');
    this.picker = picker;
    buttons[0].focus({ preventScroll: true });
  }

  closePicker() {
    if (!this.picker) return;
    const row = this.picker.parentElement;
    if (row) {
      row.classList.remove('picking');
      const opener = row.querySelector('.react-add');
      if (opener) opener.setAttribute('aria-expanded', 'false');
    }
    this.picker.remove();
    this.picker = null;
  }

  async confirmDelete(seq) {
    const item = this.room.bySeq.get(seq);
    const mine = item && item.author === state.me.username;
    const ok = await confirmDialog({
      title: 'Delete this message?',
      text: mine ? 'Everyone in the room will see that a message was deleted, but not what it said.'
        : `It is ${this.room.displayName(item ? item.author : '')}'s message. Everyone in the room will see that you deleted it.`,
      confirm: 'Delete',
      danger: true,
    });
    if (ok) this.actions.remove(seq);
  }

  // ---- composer ----

  /** Reply to or edit a message (`mode`), or back to writing a new one (null). */
  setMode(mode) {
    const item = mode && this.room.bySeq.get(mode.seq);
    if (mode && (!item || item.deleted)) mode = null;
    const wasEditing = this.mode && this.mode.kind === 'edit';
    this.mode = mode;
    this.composer.classList.toggle('editing', !!mode && mode.kind === 'edit');
    if (!mode) {
      this.modeBar.hidden = true;
      this.modeBar.replaceChildren();
      if (wasEditing) {
        this.input.value = loadDraft(this.room.code);
        this.onInput(false);
      }
      return;
    }
    const who = this.room.displayName(item.author);
    const label = mode.kind === 'edit' ? 'Editing your message' : `Replying to ${who}`;
    this.modeBar.replaceChildren(
      h('span', { class: 'mode-label' }, h('strong', null, label), ' ', h('span', { class: 'mode-text' }, (item.text || '').slice(0, 120))),
      h('button', { class: 'icon-btn', type: 'button', 'aria-label': mode.kind === 'edit' ? 'Cancel editing' : 'Cancel reply', onclick: () => this.setMode(null) }, icon('close')));
    this.modeBar.hidden = false;
    if (mode.kind === 'edit') {
      this.input.value = item.text || '';
      this.onInput(false);
    }
    this.input.focus();
  }

  submit() {
    const text = this.input.value.trim();
    if (!text) return;
    const max = maxChars();
    if (max > 0 && [...text].length > max) {
      toast(`Messages can have at most ${max} characters.`, 'error');
      return;
    }
    const mode = this.mode;
    if (mode && mode.kind === 'edit') {
      this.mode = null;
      this.input.value = '';
      this.setMode(null);
      this.actions.edit(mode.seq, text);
      return;
    }
    this.input.value = '';
    this.onInput(false);
    this.setMode(null);
    this.actions.send(text, mode ? mode.seq : null);
    this.stick = true;
  }

  /** The newest message of mine that can be edited (arrow up in an empty composer edits it). */
  lastOwnMessage() {
    const items = this.room.items;
    for (let i = items.length - 1; i >= 0; i -= 1) {
      const item = items[i];
      if (item.kind === 'chat' && item.author === state.me.username && !item.deleted) return item;
    }
    return null;
  }

  onKey(event) {
    if (!this.hints.hidden) {
      const options = [...this.hints.children];
      if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
        event.preventDefault();
        this.hintIndex = (this.hintIndex + (event.key === 'ArrowDown' ? 1 : -1) + options.length) % options.length;
        this.showHints();
        return;
      }
      if (event.key === 'Tab' || (event.key === 'Enter' && !event.shiftKey && this.hintCompletes())) {
        event.preventDefault();
        this.completeHint();
        return;
      }
      if (event.key === 'Escape') {
        event.preventDefault();
        this.hideHints();
        return;
      }
    }
    if (event.key === 'Escape' && this.mode) {
      event.preventDefault();
      this.setMode(null);
      return;
    }
    if (event.key === 'ArrowUp' && !this.input.value && !this.mode) {
      const mine = this.lastOwnMessage();
      if (mine) {
        event.preventDefault();
        this.setMode({ kind: 'edit', seq: mine.seq });
      }
      return;
    }
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      this.submit();
    }
  }

  /** After each edit (`typed`: by the person, so it is a draft and others see them typing). */
  onInput(typed = true) {
    const value = this.input.value;
    if (!(this.mode && this.mode.kind === 'edit')) saveDraft(this.room.code, value);
    const length = [...value].length;
    const max = maxChars();
    this.counter.textContent = max > 0 && length > max - 200 ? `${length}/${max}` : '';
    this.counter.classList.toggle('over', max > 0 && length > max);
    this.composer.classList.toggle('has-text', value.trim().length > 0);
    this.hintIndex = 0;
    this.showHints();
    const now = Date.now();
    if (typed && value.trim() && !value.startsWith('/') && now - this.lastTyping > TYPING_EVERY) {
      this.lastTyping = now;
      this.actions.typing();
    }
  }

  /**
   * What the hints offer for the text before the caret: the room's commands while a leading
   * `/word` is typed, its members (by username or display name) after an `@`. Each choice
   * replaces the text from `from` to `to` with `insert`; `done` says it is typed in full.
   */
  hintChoices() {
    const value = this.input.value;
    if (/^\/\S*$/.test(value)) {
      const typed = value.slice(1).toLowerCase();
      return state.commands.filter((c) => c.name.toLowerCase().startsWith(typed)).map((c) => ({
        key: c.name, label: `/${c.name}`, args: usageArgs(c), desc: c.description || '',
        insert: `/${c.name} `, from: 0, to: value.length, done: value.slice(1) === c.name,
      }));
    }
    const caret = this.input.selectionEnd ?? value.length;
    const at = value.slice(0, caret).match(/(?:^|[^A-Za-z0-9_.-])@([A-Za-z0-9_.-]{0,32})$/);
    if (!at) return [];
    const typed = at[1].toLowerCase();
    const from = caret - at[1].length - 1;
    return [...this.room.members.values()]
      .filter((m) => m.username !== state.me.username
        && (m.username.startsWith(typed) || m.display_name.toLowerCase().startsWith(typed)))
      .slice(0, 8)
      .map((m) => ({
        key: m.username, label: m.display_name, args: ` @${m.username}`, desc: '',
        insert: `@${m.username} `, from, to: caret, done: false,
      }));
  }

  showHints(choices = this.hintChoices()) {
    if (!choices.length) {
      this.hideHints();
      return;
    }
    this.hintIndex = Math.min(this.hintIndex, choices.length - 1);
    this.hints.setAttribute('aria-label', choices[0].label.startsWith('/') ? 'Commands' : 'Members');
    this.hints.replaceChildren(...choices.map((choice, i) => h('li', {
      class: `hint${i === this.hintIndex ? ' hint-active' : ''}`, role: 'option', id: `hint-${i}`,
      'aria-selected': String(i === this.hintIndex), dataset: { name: choice.key },
      onpointerdown: (event) => {
        event.preventDefault();
        this.hintIndex = i;
        this.completeHint();
      },
    }, h('span', { class: 'hint-name' }, choice.label),
    choice.args ? h('span', { class: 'hint-args' }, choice.args.startsWith(' ') ? choice.args : ` ${choice.args}`) : null,
    h('span', { class: 'hint-desc' }, choice.desc))));
    this.hints.hidden = false;
    this.input.setAttribute('aria-activedescendant', `hint-${this.hintIndex}`);
  }

  hideHints() {
    this.hints.hidden = true;
    this.input.removeAttribute('aria-activedescendant');
  }

  /** Enter completes unless the choice is already typed in full (then it sends). */
  hintCompletes() {
    const chosen = this.hintChoices()[this.hintIndex];
    return Boolean(chosen) && !chosen.done;
  }

  completeHint() {
    const chosen = this.hintChoices()[this.hintIndex];
    if (!chosen) return;
    const value = this.input.value;
    this.input.value = value.slice(0, chosen.from) + chosen.insert + value.slice(chosen.to);
    const caret = chosen.from + chosen.insert.length;
    this.input.setSelectionRange(caret, caret);
    this.onInput(false);
    this.hideHints();
    this.input.focus();
  }

  // ---- members and links ----

  toggleMembers(force) {
    const open = force ?? !this.el.classList.contains('members-open');
    this.el.classList.toggle('members-open', open);
    this.membersBtn.setAttribute('aria-expanded', String(open));
    if (open) this.members.focus();
    else if (force === false) this.membersBtn.focus();
  }

  async copyLink() {
    const link = `${location.origin}/r/${this.room.code}`;
    toast(await copyText(link) ? 'Link copied. Anyone with it can join.' : `Copy this link: ${link}`);
  }

  onMembers() {
    this.renderHead();
    this.members.render();
  }

  /** Members' display names became known: everything that shows a name is drawn again. */
  onNames() {
    this.renderAll();
    this.onMembers();
    this.renderTyping();
  }
}

// ---- drafts: what is in the composer, kept per room on this device ----

function draftKey(code) {
  return `hearth.draft.${state.me ? state.me.username : ''}.${code}`;
}

function loadDraft(code) {
  try {
    return localStorage.getItem(draftKey(code)) || '';
  } catch {
    return '';
  }
}

function saveDraft(code, text) {
  try {
    if (text.trim()) localStorage.setItem(draftKey(code), text);
    else localStorage.removeItem(draftKey(code));
  } catch {
    // Storage is off or full: the draft lasts as long as the page.
  }
}

// ---- the members panel ----
//
// Online dots, the host's crown, and for the host a menu per member (make host, remove) and the
// list of removed people (let back in). Every host action asks first.

class MembersPanel {
  constructor(room, actions, close) {
    this.room = room;
    this.actions = actions;
    this.openFor = null;
    this.list = h('ul', { class: 'member-list' });
    this.bannedList = h('ul', { class: 'member-list banned-list' });
    this.bannedBox = h('div', { class: 'banned', hidden: true },
      h('h3', { class: 'panel-sub' }, 'Removed'), this.bannedList);
    this.heading = h('h2', { class: 'panel-title', id: 'members-title', tabindex: '-1' }, 'Members');
    this.el = h('aside', { class: 'members', id: 'members', 'aria-labelledby': 'members-title' },
      h('div', { class: 'panel-head' }, this.heading,
        h('button', { class: 'icon-btn members-close', type: 'button', 'aria-label': 'Close members', onclick: close },
          icon('close'))),
      this.list, this.bannedBox,
      h('div', { class: 'panel-foot' },
        h('button', { class: 'btn btn-quiet btn-danger-text btn-wide', type: 'button', onclick: () => this.leave() },
          icon('logout'), 'Leave room')));
    this.el.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') close();
    });
  }

  focus() {
    this.heading.focus();
  }

  get iAmHost() {
    return this.room.host === state.me.username && this.room.status === 'ok';
  }

  render() {
    const room = this.room;
    if (room.status !== 'ok' && room.status !== 'joining') {
      this.heading.textContent = 'Members';
      this.list.replaceChildren(h('li', { class: 'member-note' }, 'Only members see who is here.'));
      this.bannedBox.hidden = true;
      this.el.querySelector('.panel-foot').hidden = true;
      return;
    }
    const members = [...room.members.values()];
    // While my own socket is down nobody is known to be online (the dots would be stale).
    const live = state.conn === 'open';
    const online = members.filter((m) => live && m.online);
    const order = [...online, ...members.filter((m) => !online.includes(m))];
    this.heading.textContent = `Members · ${members.length}`;
    this.list.replaceChildren(...order.map((m) => this.row(m, live && m.online)));
    const banned = this.iAmHost ? room.banned() : [];
    this.bannedBox.hidden = banned.length === 0;
    this.el.querySelector('.panel-foot').hidden = room.status !== 'ok';
    this.bannedList.replaceChildren(...banned.map((user) => h('li', { class: 'member' },
      h('div', { class: `avatar avatar-small ${colorClass(user)}`, 'aria-hidden': 'true' }, initial(user)),
      h('span', { class: 'member-name' }, user),
      h('button', {
        class: 'btn btn-quiet btn-small', type: 'button', 'aria-label': `Let ${user} back in`,
        onclick: () => this.confirm('unban', user),
      }, 'Let back in'))));
  }

  row(m, online) {
    const me = m.username === state.me.username;
    const menuId = `member-menu-${m.username}`;
    const open = this.openFor === m.username;
    const canAct = this.iAmHost && !me;
    const status = online ? 'online' : state.conn === 'open' ? 'offline' : 'not known while offline';
    const li = h('li', { class: `member${online ? ' online' : ''}`, dataset: { user: m.username } },
      h('div', { class: `avatar avatar-small ${colorClass(m.username)}`, 'aria-hidden': 'true' },
        initial(m.display_name), h('span', { class: 'dot' })),
      h('span', { class: 'member-name' },
        h('span', { class: 'member-display' }, m.display_name),
        h('span', { class: 'member-user' }, ` @${m.username}`),
        this.room.nameIsShared(m.username) ? sharedNameMark() : null,
        me ? h('span', { class: 'member-you' }, ' (you)') : null,
        h('span', { class: 'visually-hidden' }, `, ${status}${m.host ? ', host' : ''}`)),
      m.host ? h('span', { class: 'crown', title: 'Host', 'aria-hidden': 'true' }, icon('crown')) : null,
      canAct ? h('button', {
        class: 'icon-btn member-more', type: 'button', 'aria-label': `Actions for ${m.display_name}`,
        'aria-haspopup': 'true', 'aria-expanded': String(open), 'aria-controls': menuId,
        onclick: () => {
          this.openFor = open ? null : m.username;
          this.render();
          const first = this.list.querySelector(`#${CSS.escape(menuId)} button`);
          if (first) first.focus();
        },
      }, icon('more')) : null);
    if (canAct && open) {
      li.append(h('div', { class: 'member-menu', id: menuId, role: 'group', 'aria-label': `Actions for ${m.display_name}` },
        h('button', { class: 'btn btn-quiet btn-small', type: 'button', onclick: () => this.confirm('transfer_host', m.username) },
          icon('crown'), 'Make host'),
        h('button', { class: 'btn btn-quiet btn-small btn-danger-text', type: 'button', onclick: () => this.confirm('kick', m.username) },
          icon('close'), 'Remove from room')));
    }
    return li;
  }

  async leave() {
    const room = this.room;
    const host = room.host === state.me.username && room.members.size > 1;
    const ok = await confirmDialog({
      title: `Leave “${room.name}”?`,
      text: `You can come back with its code or link${host ? '; the longest-standing member becomes the host' : ''}.`,
      confirm: 'Leave', danger: true,
    });
    if (ok) await this.actions.leave();
  }

  async confirm(kind, user) {
    const name = this.room.displayName(user);
    const room = this.room.name;
    const asks = {
      kick: {
        title: `Remove ${name}?`,
        text: `${name} will leave “${room}” and can't come back until you let them back in.`,
        confirm: 'Remove', danger: true,
      },
      unban: {
        title: `Let ${name} back in?`,
        text: `${name} will be able to join “${room}” again with its code or link.`,
        confirm: 'Let back in',
      },
      transfer_host: {
        title: `Make ${name} the host?`,
        text: `${name} will be able to remove people and choose the next host. You will no longer be the host.`,
        confirm: 'Make host',
      },
    }[kind];
    if (!(await confirmDialog(asks))) return;
    this.openFor = null;
    await this.actions.host(kind, user);
    this.render();
  }
}
