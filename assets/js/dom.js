// Building the page: elements are made with createElement and text goes in as text nodes,
// never as HTML (the CSP's Trusted Types rule would refuse an HTML sink anyway); and the words
// in it: times, names and links.

/** h('button', {class: 'x', onclick: fn, 'aria-label': 'Close'}, 'text', child, ...) */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  if (props) setProps(el, props);
  add(el, children);
  return el;
}

export function setProps(el, props) {
  for (const [key, value] of Object.entries(props)) {
    if (value == null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'text') el.textContent = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else if (key === 'style') throw new Error('no inline styles: use a class');
    else el.setAttribute(key, value === true ? '' : String(value));
  }
}

export function add(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child == null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

const SVG = 'http://www.w3.org/2000/svg';
// 24x24 stroke icons, drawn for hearth.
const PATHS = {
  menu: 'M4 6h16M4 12h16M4 18h16',
  send: 'M4 12l16-8-6 16-2.5-6.5L4 12z',
  smile: 'M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18zM8.5 14.5s1.2 1.8 3.5 1.8 3.5-1.8 3.5-1.8M9 9.5h.01M15 9.5h.01',
  users: 'M16 20v-1.5a3.5 3.5 0 0 0-3.5-3.5h-5A3.5 3.5 0 0 0 4 18.5V20M10 11a3.5 3.5 0 1 0 0-7 3.5 3.5 0 0 0 0 7zM20 20v-1.5a3.5 3.5 0 0 0-2.5-3.3M15.5 4.2a3.5 3.5 0 0 1 0 6.6',
  close: 'M6 6l12 12M18 6L6 18',
  copy: 'M9 9h10v11H9zM5 15V4h10',
  plus: 'M12 5v14M5 12h14',
  more: 'M5 12h.01M12 12h.01M19 12h.01',
  logout: 'M15 4h4v16h-4M10 17l5-5-5-5M15 12H3',
  down: 'M12 5v14M6 13l6 6 6-6',
  up: 'M12 19V5M6 11l6-6 6 6',
  bell: 'M6 16v-5a6 6 0 0 1 12 0v5l2 2H4l2-2zM10 21h4',
  crown: 'M4 18h16M4 18L3 7l5 4 4-6 4 6 5-4-1 11',
  link: 'M10 14a4 4 0 0 0 5.7 0l3-3a4 4 0 0 0-5.7-5.7l-1 1M14 10a4 4 0 0 0-5.7 0l-3 3a4 4 0 0 0 5.7 5.7l1-1',
  back: 'M15 5l-7 7 7 7',
  enter: 'M4 12h13M13 7l5 5-5 5',
  reply: 'M10 8L4 13l6 5M4 13h10a6 6 0 0 1 6 6',
  edit: 'M4 20h4L19 9l-4-4L4 16v4zM13 7l4 4',
  trash: 'M4 7h16M10 11v6M14 11v6M6 7l1 13h10l1-13M9 7V4h6v3',
};

export function icon(name, label) {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('class', `icon icon-${name}`);
  if (label) {
    svg.setAttribute('role', 'img');
    svg.setAttribute('aria-label', label);
  } else {
    svg.setAttribute('aria-hidden', 'true');
  }
  const path = document.createElementNS(SVG, 'path');
  path.setAttribute('d', PATHS[name]);
  svg.append(path);
  return svg;
}

/** The flame mark, as in icons/icon.svg. */
export function logo() {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', '0 0 64 64');
  svg.setAttribute('class', 'logo');
  svg.setAttribute('aria-hidden', 'true');
  for (const [cls, d] of [
    ['logo-bg', 'M14 2h36a12 12 0 0 1 12 12v36a12 12 0 0 1-12 12H14A12 12 0 0 1 2 50V14A12 12 0 0 1 14 2z'],
    ['logo-flame', 'M32 10c2 9 13 14 13 27a13 13 0 0 1-26 0c0-6 3-10 6-13 0 5 2 8 5 9-2-8 0-16 2-23z'],
    ['logo-core', 'M32 35c4 3 6 6 6 9a6 6 0 0 1-12 0c0-3 3-6 6-9z'],
  ]) {
    const path = document.createElementNS(SVG, 'path');
    path.setAttribute('class', cls);
    path.setAttribute('d', d);
    svg.append(path);
  }
  return svg;
}

/** Announces a short message to screen readers and shows it as a toast. */
export function toast(text, kind = 'info') {
  let region = document.getElementById('toasts');
  if (!region) {
    region = h('div', { id: 'toasts', class: 'toasts', role: 'status', 'aria-live': 'polite' });
    document.body.append(region);
  }
  const item = h('div', { class: `toast toast-${kind}` }, text);
  region.append(item);
  setTimeout(() => item.remove(), kind === 'error' ? 6000 : 3500);
}

/** Copies text; falls back to a selected field where the Clipboard API is missing (plain http). */
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const field = h('textarea', { class: 'offscreen', readonly: true, 'aria-hidden': 'true' });
    field.value = text;
    document.body.append(field);
    field.select();
    let ok = false;
    try {
      ok = document.execCommand('copy');
    } catch {
      ok = false;
    }
    field.remove();
    return ok;
  }
}

/** A modal dialog; resolves with the value of the button that closed it ('' on Escape). */
export function modal({ title, body, actions, label, onopen }) {
  const titleId = `dlg-${Math.random().toString(36).slice(2)}`;
  const form = h('form', { method: 'dialog', class: 'dialog-form' },
    h('h2', { id: titleId, class: 'dialog-title' }, title),
    body,
    h('div', { class: 'dialog-actions' }, actions));
  const dialog = h('dialog', { class: 'dialog', 'aria-labelledby': titleId, 'aria-label': label }, form);
  document.body.append(dialog);
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => {
      resolve(dialog.returnValue);
      dialog.remove();
    });
    dialog.addEventListener('click', (event) => {
      if (event.target === dialog) dialog.close('');
    });
    dialog.showModal();
    if (onopen) onopen(dialog, form);
  });
}

export function confirmDialog({ title, text, confirm, danger = false }) {
  return modal({
    title,
    body: h('p', { class: 'dialog-text' }, text),
    actions: [
      h('button', { class: 'btn btn-quiet', value: '' }, 'Cancel'),
      h('button', { class: danger ? 'btn btn-danger' : 'btn btn-primary', value: 'yes' }, confirm),
    ],
  }).then((value) => value === 'yes');
}

// ---- words: times, names and links, everything that turns data into words for the page ----

// Formatters are made on first use: creating one costs a few milliseconds at start-up.
const formats = {};
function fmt(name, options) {
  formats[name] ||= new Intl.DateTimeFormat(undefined, options);
  return formats[name];
}
const clock = { format: (d) => fmt('clock', { hour: '2-digit', minute: '2-digit' }).format(d) };
const exact = { format: (d) => fmt('exact', { dateStyle: 'full', timeStyle: 'medium' }).format(d) };
const dayFmt = { format: (d) => fmt('day', { weekday: 'long', month: 'long', day: 'numeric' }).format(d) };
export const longDate = { format: (d) => fmt('long', { dateStyle: 'long' }).format(d) };
const dayYearFmt = longDate;

export function dayKey(ts) {
  const d = new Date(ts);
  return d.getFullYear() * 10000 + d.getMonth() * 100 + d.getDate();
}

export function dayLabel(ts, now = Date.now()) {
  const key = dayKey(ts);
  if (key === dayKey(now)) return 'Today';
  if (key === dayKey(now - 86400000)) return 'Yesterday';
  const d = new Date(ts);
  return d.getFullYear() === new Date(now).getFullYear() ? dayFmt.format(d) : dayYearFmt.format(d);
}

/** "just now", "5 min ago", "2 h ago", then the clock time (day separators give the date). */
export function relativeTime(ts, now = Date.now()) {
  const seconds = Math.max(0, Math.round((now - ts) / 1000));
  if (seconds < 45) return 'just now';
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.floor(minutes / 60);
  if (hours < 6 && dayKey(ts) === dayKey(now)) return `${hours} h ago`;
  return clock.format(new Date(ts));
}

export function exactTime(ts) {
  return exact.format(new Date(ts));
}

/** A <time> that shows the relative time, and the exact one on hover (see `exactOnHover`). */
export function timeEl(ts, cls = 'time') {
  return setTime(h('time', { class: cls }), ts);
}

/** Sets a <time> to `ts`: its machine-readable value, `data-ts`, and the relative time as text. */
export function setTime(el, ts) {
  el.setAttribute('datetime', new Date(ts).toISOString());
  el.dataset.ts = ts;
  el.textContent = relativeTime(ts);
  return el;
}

/** Gives each <time data-ts> its exact time as a tooltip when pointed at or focused, not before. */
export function exactOnHover(root) {
  const fill = (event) => {
    const el = event.target instanceof Element && event.target.closest('time[data-ts]');
    if (el && !el.title) el.title = exactTime(Number(el.dataset.ts));
  };
  root.addEventListener('pointerover', fill);
  root.addEventListener('focusin', fill);
}

/** Refreshes every relative time under `root`. */
export function refreshTimes(root) {
  const now = Date.now();
  for (const el of root.querySelectorAll('time.time[data-ts]')) {
    const text = relativeTime(Number(el.dataset.ts), now);
    if (el.textContent !== text) el.textContent = text;
  }
}

/** One of eight avatar colours, stable for a name. */
export function colorClass(name) {
  let hash = 0;
  for (const ch of name) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  return `c${hash % 8}`;
}

export function initial(name) {
  const first = [...(name || '?')][0];
  return first.toUpperCase();
}

const URL_RE = /\bhttps?:\/\/[^\s<>"]+/gi;
// Left off a URL's end: punctuation, and the markers of formatting (markdown.js) around it.
const TRAILING = '.,;:!?\'")]}*_~`';

/**
 * What a matched URL links: [the text that is the URL, its href], or null if it is not an
 * http(s) URL. Trailing punctuation stays out, except a ")" closing a "(" in it (wiki links).
 */
export function urlOf(raw) {
  let end = raw.length;
  while (TRAILING.includes(raw[end - 1])) end -= 1;
  if (!(end === raw.length - 1 && raw[end] === ')' && raw.includes('('))) raw = raw.slice(0, end);
  try {
    const url = new URL(raw);
    if (url.protocol === 'http:' || url.protocol === 'https:') return [raw, url.href];
  } catch {
    // not a URL: text
  }
  return null;
}

/** A link that opens in a new tab and tells the target nothing (no opener, no referrer). */
export function linkEl(text, href) {
  return h('a', { href, target: '_blank', rel: 'noopener noreferrer nofollow', class: 'link' }, text);
}

/** Text as nodes: plain text, with http(s) URLs as links (`linkEl`). Anything else stays text. */
export function richText(text) {
  const nodes = [];
  let last = 0;
  for (const match of text.matchAll(URL_RE)) {
    const link = urlOf(match[0]);
    if (!link) continue;
    if (match.index > last) nodes.push(text.slice(last, match.index));
    nodes.push(linkEl(...link));
    last = match.index + link[0].length;
  }
  if (last < text.length) nodes.push(text.slice(last));
  return nodes;
}

export function plural(n, one, many) {
  return `${n} ${n === 1 ? one : many}`;
}

/** A list of names in words: "a", "a and b", "a, b and c". */
export function listNames(names) {
  if (names.length <= 1) return names.join('');
  return `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}`;
}

const CODE_ALPHABET = /^[ABCDEFGHJKMNPQRSTUVWXYZ23456789]{6}$/;

/** A room code from what someone typed or pasted: a code, or a link ending in /r/CODE. */
export function parseCode(input) {
  let text = String(input || '').trim();
  const link = text.match(/\/r\/([A-Za-z0-9]{6})\/?$/);
  if (link) text = link[1];
  text = text.replace(/[\s-]/g, '').toUpperCase();
  return CODE_ALPHABET.test(text) ? text : null;
}
