// Formatting: ``` fences ```, "> " quotes (3 deep), one-level "- ", "* " and "1. " lists (an item
// is a line), **bold** __bold__ *italic* _italic_ ~~strike~~ `code`, http(s) URLs; \ escapes
// \ ` * _ ~ > - . and a marker without a partner is text. Linear: ends are found in indexes made
// first, and at most 5 markers are open at once. Elements are made with h(): text stays text.
import { h, urlOf, linkEl } from './dom.js';

const QUOTE = /^ {0,3}> ?/;
const ITEM = /^ {0,3}(?:([-*])|(\d{1,9})\.) +(?=\S)/;
const FENCE = /^ {0,3}(`{3,})\s*([\w+#.-]*)$/;
const URL = /https?:\/\/[^\s<>"]+/iy;
const space = (c) => !c || /\s/.test(c);
const word = (c) => !!c && /[\p{L}\p{N}]/u.test(c);
const blank = (line) => !line.trim();
const text = (t) => ({ type: 'text', text: t });

/** Blocks (para, pre, quote, list of items) holding inline nodes (text, code, link, strong, em, del). */
export function parseMarkdown(message) {
  return blocks(String(message).split('\n'), 0);
}

/** A closing fence's length, or 0. */
function closer(line = '') {
  const m = FENCE.exec(line.trimEnd());
  return m && !m[2] ? m[1].length : 0;
}

function blocks(lines, depth) {
  const out = [];
  let para = [];
  const push = (node) => {
    paragraph(para, out);
    para = [];
    out.push(node);
  };
  // The longest closing fence from each line on: a fence without one is text, and no search.
  const ends = lines.map(closer).concat(0);
  for (let i = lines.length - 1; i >= 0; i--) ends[i] = Math.max(ends[i], ends[i + 1]);
  for (let i = 0, m; i < lines.length;) {
    if ((m = FENCE.exec(lines[i].trimEnd())) && ends[i + 1] >= m[1].length) {
      let j = i + 1;
      while (closer(lines[j]) < m[1].length) j++;
      push({ type: 'pre', text: lines.slice(i + 1, j).join('\n'), ...(m[2] && { lang: m[2] }) });
      i = j + 1;
    } else if (depth < 3 && QUOTE.test(lines[i])) {
      const inner = [];
      while (QUOTE.test(lines[i] ?? '')) inner.push(lines[i++].replace(QUOTE, ''));
      push({ type: 'quote', children: blocks(inner, depth + 1) });
    } else if ((m = ITEM.exec(lines[i]))) {
      const ordered = !m[1];
      const list = { type: 'list', ordered, children: [] };
      if (ordered && +m[2] !== 1) list.start = +m[2];
      for (; m && !m[1] === ordered; m = ITEM.exec(lines[++i] ?? '')) {
        list.children.push({ type: 'item', children: inline(lines[i].slice(m[0].length)) });
      }
      push(list);
    } else para.push(lines[i++]);
  }
  paragraph(para, out);
  return out;
}

/** Lines as a para: blank lines at its ends go; those inside stay, and end any formatting. */
function paragraph(lines, out) {
  let a = 0;
  let b = lines.length;
  while (a < b && blank(lines[a])) a++;
  while (b > a && blank(lines[b - 1])) b--;
  const kids = [];
  for (let i = a, j = a; i < b; i = j) {
    while (j < b && !blank(lines[j])) j++;
    inline(lines.slice(i, j).join('\n')).forEach((node) => append(kids, node));
    for (i = j; j < b && blank(lines[j]);) j++;
    if (j > i) append(kids, text(`\n${lines.slice(i, j).join('\n')}\n`));
  }
  if (kids.length) out.push({ type: 'para', children: kids });
}

function append(kids, node) {
  const last = kids[kids.length - 1];
  if (node.type === 'text' && last?.type === 'text') last.text += node.text;
  else kids.push(node);
}

function inline(s) {
  // Where the backtick runs of each length start, for a code span's end.
  const runs = {};
  for (const m of s.matchAll(/`+/g)) (runs[m[0].length] ||= { at: [], k: 0 }).at.push(m.index);
  // Open markers, each holding what follows it until it closes or drops to text.
  const stack = [{ kids: [] }];
  let top = stack[0];
  let buf = '';
  const put = (node) => {
    if (buf) append(top.kids, text(buf));
    buf = '';
    if (node) top.kids.push(node);
  };
  const pop = () => {
    put();
    stack.pop();
    top = stack[stack.length - 1];
  };
  const drop = () => {
    const { c, n, kids } = top;
    pop();
    [text(c.repeat(n)), ...kids].forEach((node) => append(top.kids, node));
  };
  // n markers c close the nearest open c; what is left of n is returned.
  const close = (c, n) => {
    for (let f; n; n -= f) {
      for (f = stack.length - 1; f && stack[f].c !== c;) f--;
      if (!f) break;
      while (stack.length - 1 > f) drop();
      put();
      f = Math.min(2, n, top.n);
      const node = { type: c === '~' ? 'del' : f === 2 ? 'strong' : 'em', children: top.kids };
      if ((top.n -= f)) top.kids = [node];
      else {
        pop();
        top.kids.push(node);
      }
    }
    return n;
  };
  for (let i = 0, j, raw; i < s.length; i = j) {
    const c = s[i];
    for (j = i + 1; s[j] === c && '`*_~'.includes(c);) j++;
    const n = j - i;
    if (c === '\\' && s[j] && '\\`*_~>-.'.includes(s[j])) buf += s[j++];
    else if (c === '`') {
      const run = (runs[n] ||= { at: [], k: 0 });
      while (run.at[run.k] < j) run.k++;
      const end = run.at[run.k];
      if (end === undefined) buf += s.slice(i, j);
      else {
        raw = s.slice(j, end);
        put({ type: 'code', text: raw[0] === ' ' && raw.endsWith(' ') && raw.trim() ? raw.slice(1, -1) : raw });
        j = end + n;
      }
    } else if ('*_~'.includes(c)) {
      const under = c === '_';
      const opens = !space(s[j]) && !(under && word(s[i - 1]));
      const closes = !space(s[i - 1]) && !(under && word(s[j]));
      const fits = c === '~' ? n === 2 : n <= 3;
      const left = fits && closes ? close(c, n) : n;
      if (fits && left && opens && stack.length <= 5) {
        put();
        stack.push((top = { c, n: left, kids: [] }));
      } else buf += c.repeat(left);
    } else if (/h/i.test(c) && !/[A-Za-z0-9]/.test(s[i - 1] || '') && ((URL.lastIndex = i), URL.test(s))) {
      // A URL (not straight after a letter or digit); urlOf trims its end and checks it.
      raw = s.slice(i, URL.lastIndex);
      const link = urlOf(raw);
      if (link) put({ type: 'link', text: link[0], href: link[1] });
      else buf += raw;
      j = i + (link ? link[0] : raw).length;
    } else buf += c;
  }
  while (stack.length > 1) drop();
  put();
  return top.kids;
}

const TAGS = { quote: 'blockquote', item: 'li' };

/** Nodes for a row's `.text`: a para's text as it is, blocks as elements. */
/** The message as nodes; `@name` of each of `mentions` (the usernames the server found) is marked. */
export function renderMarkdown(message, mentions = []) {
  const named = new Set(mentions.map((m) => m.toLowerCase()));
  const render = (nodes) => nodes.flatMap((n) => {
    if (n.type === 'text') return named.size ? markMentions(n.text, named) : n.text;
    if (n.type === 'para') return render(n.children);
    if (n.type === 'link') return /^https?:\/\//.test(n.href) ? linkEl(n.text, n.href) : n.text;
    if (n.type === 'pre') return h('pre', n.lang && { dataset: { lang: n.lang } }, h('code', null, n.text));
    if (n.type === 'list') return h(n.ordered ? 'ol' : 'ul', { start: n.start }, render(n.children));
    return h(TAGS[n.type] || n.type, null, n.children ? render(n.children) : n.text);
  });
  return render(parseMarkdown(message));
}

// A username's characters (docs/protocol.md, "mentions"): `@` after none of them starts a name.
const MENTION = /(^|[^A-Za-z0-9_.-])@([A-Za-z0-9_.-]+)/g;

/** Text with each `@name` of `named` in a span; a trailing `.` or `-` is not part of a name. */
function markMentions(text, named) {
  const out = [];
  let last = 0;
  for (const match of text.matchAll(MENTION)) {
    let name = match[2];
    while (name && !named.has(name.toLowerCase()) && /[.-]$/.test(name)) name = name.slice(0, -1);
    if (!named.has(name.toLowerCase())) continue;
    const at = match.index + match[1].length;
    if (at > last) out.push(text.slice(last, at));
    out.push(h('span', { class: 'mention' }, `@${name}`));
    last = at + 1 + name.length;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}
