// Times, names and links: everything that turns data into words for the page.
import { h } from './dom.js';

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
  return h('time', { class: cls, datetime: new Date(ts).toISOString(), dataset: { ts } }, relativeTime(ts));
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
const TRAILING = /[.,;:!?'")\]}]+$/;

/**
 * The message text as nodes: plain text, with http(s) URLs as links that open in a new tab
 * and tell the target nothing (no opener, no referrer). Anything else stays text.
 */
export function richText(text) {
  const nodes = [];
  let last = 0;
  for (const match of text.matchAll(URL_RE)) {
    let raw = match[0];
    const trail = raw.match(TRAILING);
    // Keep a closing parenthesis that belongs to the URL, e.g. wiki links.
    if (trail && !(trail[0] === ')' && raw.includes('('))) raw = raw.slice(0, raw.length - trail[0].length);
    const start = match.index;
    let href = null;
    try {
      const url = new URL(raw);
      if (url.protocol === 'http:' || url.protocol === 'https:') href = url.href;
    } catch {
      href = null;
    }
    if (!href) continue;
    if (start > last) nodes.push(text.slice(last, start));
    nodes.push(h('a', { href, target: '_blank', rel: 'noopener noreferrer nofollow', class: 'link' }, raw));
    last = start + raw.length;
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
