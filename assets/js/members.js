// The members panel: online dots, the host's crown, and for the host a menu per member
// (make host, remove) and the list of removed people (let back in). Every host action asks first.
import { h, icon, confirmDialog } from './dom.js';
import { colorClass, initial } from './format.js';
import { state } from './model.js';

export class MembersPanel {
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
    const online = members.filter((m) => m.online);
    const order = [...online, ...members.filter((m) => !m.online)];
    this.heading.textContent = `Members · ${members.length}`;
    this.list.replaceChildren(...order.map((m) => this.row(m)));
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

  row(m) {
    const me = m.username === state.me.username;
    const menuId = `member-menu-${m.username}`;
    const open = this.openFor === m.username;
    const canAct = this.iAmHost && !me;
    const status = m.online ? 'online' : 'offline';
    const li = h('li', { class: `member${m.online ? ' online' : ''}`, dataset: { user: m.username } },
      h('div', { class: `avatar avatar-small ${colorClass(m.username)}`, 'aria-hidden': 'true' },
        initial(m.display_name), h('span', { class: 'dot' })),
      h('span', { class: 'member-name' },
        h('span', { class: 'member-display' }, m.display_name),
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
