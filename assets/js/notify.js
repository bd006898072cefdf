// Telling someone a message wants them: a short sound and a system notification, and the
// settings for both. What a message is worth (the room's level, set per member on the server) is
// decided here too; the counts are core.js's (Room.countUnread), the title and tab icon
// main.js's. Loaded when first needed: the first paint does without it.
import { h, modal, toast } from './dom.js';
import { api, isMessageFor } from './core.js';

const LEVELS = [
  ['all', 'Every message', 'Each new message notifies you.'],
  ['mentions', 'Mentions only', 'Only messages that name you (@you) notify you.'],
  ['none', 'Nothing', 'The room stays quiet; unread messages are still counted.'],
];
// Sounds are this device's choice: mentions and direct messages, every message that notifies
// me, or none.
const SOUNDS = [
  ['mentions', 'For mentions and direct messages'],
  ['all', 'For every message that notifies me'],
  ['off', 'Never'],
];
const SOUND_KEY = 'hearth.sound';

let ping = null;

export function soundSetting() {
  try {
    const value = localStorage.getItem(SOUND_KEY);
    return SOUNDS.some(([v]) => v === value) ? value : 'mentions';
  } catch {
    return 'mentions';
  }
}

function setSoundSetting(value) {
  try {
    localStorage.setItem(SOUND_KEY, value);
  } catch {
    // Storage is off: the default holds.
  }
}

/** Whether `item`, new in `room`, is worth telling me about at the room's level. */
export function notifies(room, item, me) {
  if (!isMessageFor(item, me)) return false;
  if (room.notify === 'all') return true;
  if (room.notify === 'none') return false;
  return mentionsMe(item, me);
}

const mentionsMe = (item, me) => (item.mentions || []).includes(me);

/**
 * A new message arrived while I am not looking at its room (another room is open, or the tab is
 * hidden): sound and notification as the levels and this device's settings say.
 */
export function alertFor(room, item, me, open) {
  if (!notifies(room, item, me)) return;
  const sound = soundSetting();
  if (sound === 'all' || (sound === 'mentions' && (mentionsMe(item, me) || room.kind === 'dm'))) playPing();
  showNotification(room, item, open);
}

function playPing() {
  if (!ping) {
    ping = h('audio', { class: 'ping', src: '/sounds/ping.wav', preload: 'auto' });
    document.body.append(ping);
  }
  ping.currentTime = 0;
  // Refused before the person has interacted with the page (autoplay rules): nothing to do.
  ping.play().catch(() => {});
}

const canNotify = () => window.isSecureContext && 'Notification' in window;

function showNotification(room, item, open) {
  if (!canNotify() || Notification.permission !== 'granted') return;
  const title = `${room.displayName(item.author)} in ${room.name}`;
  const options = { body: (item.text || '').slice(0, 200), tag: `hearth-${room.code}-${item.seq}`, icon: '/icons/icon-192.png' };
  try {
    const shown = new Notification(title, options);
    shown.onclick = () => {
      window.focus();
      open(room.code);
      shown.close();
    };
  } catch {
    // Phones allow notifications from the service worker only.
    navigator.serviceWorker?.ready.then((reg) => reg.showNotification(title, { ...options, data: { url: `/r/${room.code}` } })).catch(() => {});
  }
}

/** The room's notification level (kept on the server) and this device's sound and notifications. */
export async function notifyDialog(room, onchange) {
  const radios = LEVELS.map(([value, label, help]) => h('label', { class: 'choice' },
    h('input', { type: 'radio', name: 'level', value, checked: room.notify === value }),
    h('span', null, h('strong', null, label), h('span', { class: 'choice-help' }, help))));
  const sound = h('select', { id: 'sound-setting', class: 'select' },
    SOUNDS.map(([value, label]) => h('option', { value, selected: soundSetting() === value }, label)));
  const permit = h('button', { class: 'btn btn-outline', type: 'button' }, 'Turn on desktop notifications');
  const permitText = h('p', { class: 'choice-help' });
  const showPermission = () => {
    const granted = canNotify() && Notification.permission === 'granted';
    permit.hidden = !canNotify() || Notification.permission !== 'default';
    permitText.textContent = !canNotify()
      ? 'System notifications need this page over https (or on localhost).'
      : granted ? 'System notifications are on for this browser.'
        : Notification.permission === 'denied' ? 'This browser blocks notifications from this site; its site settings can allow them.'
          : '';
  };
  permit.addEventListener('click', async () => {
    await Notification.requestPermission();
    showPermission();
  });
  showPermission();
  const value = await modal({
    title: `Notifications for ${room.name}`,
    body: [
      h('fieldset', { class: 'choices' }, h('legend', null, 'Notify me of'), radios),
      h('label', { class: 'field-label', for: 'sound-setting' }, 'Play a sound (on this device)'), sound,
      h('div', { class: 'permit' }, permit, permitText),
    ],
    actions: [
      h('button', { class: 'btn btn-quiet', value: '' }, 'Cancel'),
      h('button', { class: 'btn btn-primary', value: 'save' }, 'Save'),
    ],
  });
  if (value !== 'save') return;
  setSoundSetting(sound.value);
  const level = radios.map((r) => r.querySelector('input')).find((r) => r.checked)?.value;
  if (!level || level === room.notify) return;
  try {
    await api('PUT', `/api/rooms/${room.code}/notify`, { level });
    room.notify = level;
    onchange();
  } catch (e) {
    toast(e.message, 'error');
  }
}

