// Formatting (assets/js/markdown.js): the parser's rules, table by table; a property test on
// seeded random hostile input; and two people in a room, one formatting and one seeing it,
// then every construct with markup inside it, shown as typed.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { parseMarkdown } from '../../assets/js/markdown.js';
import { startHearth } from './lib/hearth.js';
import { launch, openPage, assertClean, signUpQuietly, createRoom, send, username, snap } from './lib/ui.js';

/** The tree in an HTML-like notation, for reading in a table (a test's string, never a page's). */
function show(nodes) {
  return nodes.map((n) => {
    switch (n.type) {
      case 'text': return n.text;
      case 'code': return `<code>${n.text}</code>`;
      case 'link': return `<a ${n.href}>${n.text}</a>`;
      case 'pre': return `<pre${n.lang ? ` ${n.lang}` : ''}>${n.text}</pre>`;
      case 'list': return `<${n.ordered ? 'ol' : 'ul'}${n.start !== undefined ? ` ${n.start}` : ''}>${show(n.children)}</>`;
      default: return `<${n.type}>${show(n.children)}</>`;
    }
  }).join('');
}

const p = (inner) => `<para>${inner}</>`;

const CASES = [
  // [what, input, expected]
  ['plain text', 'Lunch at noon?', p('Lunch at noon?')],
  ['line breaks stay', 'one\ntwo\n\n\nthree', p('one\ntwo\n\n\nthree')],
  ['blank lines at the ends go', '\n\nhi\n \n', p('hi')],
  ['bold', '**bold** and __bold__', p('<strong>bold</> and <strong>bold</>')],
  ['italic', '*it* and _it_', p('<em>it</> and <em>it</>')],
  ['strike', '~~gone~~', p('<del>gone</>')],
  ['bold italic', '***both***', p('<em><strong>both</></>')],
  ['nested', '**a *b* c**', p('<strong>a <em>b</> c</>')],
  ['nested, closed together', '*a **b***', p('<em>a <strong>b</></>')],
  ['across lines', '*one\ntwo*', p('<em>one\ntwo</>')],
  ['not across a blank line', '*one\n\ntwo*', p('*one\n\ntwo*')],
  ['intraword star', 'a*b*c', p('a<em>b</>c')],
  ['snake_case stays', 'snake_case_name and __init__x', p('snake_case_name and __init__x')],
  ['underscore words', '_a_b_', p('<em>a_b</>')],
  ['spaced stars are text', '2 * 3 * 4', p('2 * 3 * 4')],
  ['unmatched', '**open *half ~~strike `tick', p('**open *half ~~strike `tick')],
  ['a partner of another kind', '*a _b* c_', p('<em>a _b</> c_')],
  ['long runs are text', '****x**** ~~~y~~~ ~z~', p('****x**** ~~~y~~~ ~z~')],
  ['inline code', 'use `a *b* <c>` now', p('use <code>a *b* <c></code> now')],
  ['code with backticks', '``a ` b`` and ` `` `', p('<code>a ` b</code> and <code>``</code>')],
  ['code keeps a lone space', '` ` and `  x  `', p('<code> </code> and <code> x </code>')],
  ['escapes', '\\*no\\* \\_no\\_ \\~~no~~ \\`no` a\\\\b', p('*no* _no_ ~~no~~ `no` a\\b')],
  ['other backslashes stay', 'C:\\Users\\x \\n', p('C:\\Users\\x \\n')],
  ['no escape inside code', '`a\\`', p('<code>a\\</code>')],
  ['fence', '```\nx <y>\n  *z*\n```', '<pre>x <y>\n  *z*</pre>'],
  ['fence with a language', 'see\n```js\nlet a = 1;\n```\ndone', `${p('see')}<pre js>let a = 1;</pre>${p('done')}`],
  ['longer fence', '````\na\n```\n````', '<pre>a\n```</pre>'],
  ['unclosed fence is text', '```\nnot code', p('```\nnot code')],
  ['a fence with words after is a code span', '``` two words\nx\n```', p('<code> two words\nx\n</code>')],
  ['quote', '> said\n> this\nmine', `<quote>${p('said\nthis')}</>${p('mine')}`],
  ['nested quote', '> a\n>> b', `<quote>${p('a')}<quote>${p('b')}</></>`],
  ['quotes nest 3 deep', '>>>> deep', `<quote><quote><quote>${p('> deep')}</></></>`],
  ['quoted code and list', '> ```\n> x\n> ```\n> - y', `<quote><pre>x</pre><ul><item>y</></></>`],
  ['bullets', '- one\n* **two**\nafter', `<ul><item>one</><item><strong>two</></></>${p('after')}`],
  ['numbers', '1. one\n2. two', '<ol><item>one</><item>two</></>'],
  ['numbers from 3', '3. three\n4. four', '<ol 3><item>three</><item>four</></>'],
  ['kinds make lists', '- a\n1. b', '<ul><item>a</></><ol><item>b</></>'],
  ['not lists', '-a\n1.5 m\n*x*\n\\- y\n1\\. z', p('-a\n1.5 m\n<em>x</>\n- y\n1. z')],
  ['link', 'see https://example.org/a?b=1.', p('see <a https://example.org/a?b=1>https://example.org/a?b=1</a>.')],
  ['link with its parenthesis', 'https://en.wikipedia.org/wiki/Rust_(language)', p('<a https://en.wikipedia.org/wiki/Rust_(language)>https://en.wikipedia.org/wiki/Rust_(language)</a>')],
  ['link in parentheses', '(https://example.org/x)', p('(<a https://example.org/x>https://example.org/x</a>)')],
  ['link in bold', '**https://example.org**!', p('<strong><a https://example.org/>https://example.org</a></>!')],
  ['link stops at a quote', 'https://example.org/"><b>', p('<a https://example.org/>https://example.org/</a>"><b>')],
  ['no link after a letter', 'xhttps://example.org', p('xhttps://example.org')],
  ['no other schemes', 'javascript:alert(1) ftp://x.org [a](javascript:alert(1))', p('javascript:alert(1) ftp://x.org [a](javascript:alert(1))')],
  ['no link in code', '`https://example.org`', p('<code>https://example.org</code>')],
  ['markup is text', '<img src=x onerror=alert(1)> &lt;', p('<img src=x onerror=alert(1)> &lt;')],
];

test('the Markdown subset: each construct, nesting, unmatched markers, escapes', () => {
  for (const [what, input, expected] of CASES) {
    assert.equal(show(parseMarkdown(input)), expected, `${what}: ${JSON.stringify(input)}`);
  }
});

// ---- a property test: random hostile input ----

const HOSTILE = [
  '<script>alert(1)</script>', '<img src=x onerror=alert(1)>', 'javascript:alert(1)', '"><svg onload=alert(1)>',
  '&lt;', 'https://example.org/a_(b)?c=<d>', 'http://x.y/*z*', 'HTTPS://E.ORG.', '[a](javascript:alert(1))',
];
const PIECES = [
  '*', '**', '_', '__', '~', '~~', '`', '```', '\n```\n', '\n```js\n', '>', '> ', '\\', '-', '- ', '.', '1. ', '3', ' ', '  ', '\n', '\n\n',
  '\t', 'a', 'b', 'Z', 'é', 'h', '(', ')', ...HOSTILE,
];
/** Characters the parser may take away: markers, list numbers and whitespace. */
const MARKUP = /[*_~`>\\\-.0-9\s]/g;

/** mulberry32: a small seeded generator, so a failure can be run again. */
function rng(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomText(next) {
  const n = Math.floor(next() * 40);
  let out = '';
  for (let i = 0; i < n; i += 1) {
    const r = next();
    if (r < 0.03) out += '*>`_~'[Math.floor(next() * 5)].repeat(1 + Math.floor(next() * 300));
    else out += PIECES[Math.floor(next() * PIECES.length)];
  }
  return out;
}

const BLOCKS = new Set(['para', 'pre', 'quote', 'list']);
const INLINE = new Set(['text', 'code', 'link', 'strong', 'em', 'del']);
const KEYS = {
  para: 'children,type', quote: 'children,type', item: 'children,type', strong: 'children,type',
  em: 'children,type', del: 'children,type', text: 'text,type', code: 'text,type', link: 'href,text,type',
};

/**
 * Checks one tree; returns its leaves' text in document order: text, code, link text, and a
 * fence's language and text.
 */
function check(nodes, allowed, depth = 0, types = new Set()) {
  assert.ok(Array.isArray(nodes));
  assert.ok(depth <= 14, 'nesting is bounded');
  let out = '';
  for (const n of nodes) {
    assert.ok(allowed.has(n.type), `a ${n.type} node where ${[...allowed]} may be`);
    types.add(n.type);
    if (KEYS[n.type]) assert.equal(Object.keys(n).sort().join(','), KEYS[n.type], n.type);
    if (n.type === 'text' || n.type === 'code' || n.type === 'pre') {
      assert.equal(typeof n.text, 'string');
      if (n.type === 'text') assert.ok(n.text.length, 'no empty text');
    }
    if (n.type === 'pre') {
      assert.deepEqual(Object.keys(n).filter((k) => !['type', 'text', 'lang'].includes(k)), []);
      if (n.lang !== undefined) assert.match(n.lang, /^[\w+#.-]+$/);
      out += (n.lang || '') + n.text;
    } else if (n.type === 'link') {
      const url = new URL(n.href);
      assert.ok(url.protocol === 'http:' || url.protocol === 'https:', n.href);
      assert.match(n.text, /^https?:\/\//i);
      assert.equal(new URL(n.text).href, n.href, 'the href is the text, parsed');
      out += n.text;
    } else if (n.type === 'text' || n.type === 'code') out += n.text;
    else if (n.type === 'list') {
      assert.equal(typeof n.ordered, 'boolean');
      assert.ok(n.start === undefined || Number.isInteger(n.start));
      out += check(n.children, new Set(['item']), depth + 1, types);
    } else if (n.type === 'quote') out += check(n.children, BLOCKS, depth + 1, types);
    else if (n.type === 'em' || n.type === 'strong' || n.type === 'del') {
      assert.ok(n.children.length, 'no empty formatting');
      out += check(n.children, INLINE, depth + 1, types);
    } else out += check(n.children, INLINE, depth + 1, types);
  }
  return out;
}

function count(text, ch) {
  let n = 0;
  for (const c of text) if (c === ch) n += 1;
  return n;
}

/**
 * For any input: parsing does not throw; blocks hold blocks or items, everything else holds
 * only text, code, links and formatting, with no other fields; every link's href is its text
 * parsed as an http(s) URL; and, with markers, digits and whitespace taken out of both, the
 * leaves' text equals the input's: nothing is lost, added or moved, and each markup character
 * appears in the leaves at most as often as in the input.
 */
function property(input, types) {
  const leaves = check(parseMarkdown(input), BLOCKS, 0, types);
  assert.equal(leaves.replace(MARKUP, ''), input.replace(MARKUP, ''), 'the text, in order');
  for (const ch of '*_~`>\\-.') assert.ok(count(leaves, ch) <= count(input, ch), `no ${ch} made up`);
}

test('property: random hostile input parses to allowed nodes, safe links and the same text', () => {
  const seed = Number(process.env.MD_SEED || 19);
  const next = rng(seed);
  const types = new Set();
  for (let i = 0; i < 20000; i += 1) {
    const input = randomText(next);
    try {
      property(input, types);
    } catch (error) {
      error.message = `seed ${seed}, case ${i}, input ${JSON.stringify(input)}: ${error.message}`;
      throw error;
    }
  }
  // The random cases reach every kind of node.
  assert.deepEqual([...types].sort(), [...BLOCKS, ...INLINE, 'item'].sort());
  // Long runs and deep structure, once each.
  for (const input of [
    '*'.repeat(20000), '>'.repeat(20000), '`'.repeat(20000), '~'.repeat(20000), '_a'.repeat(10000),
    '*a '.repeat(10000), '**a *b '.repeat(5000), '`a'.repeat(10000), '```x\n'.repeat(5000), '> - '.repeat(5000),
    '\n'.repeat(20000), 'h'.repeat(20000), 'http://['.repeat(5000), `https://e.org/${'.'.repeat(20000)}x`,
    '`'.repeat(5000) + 'a' + '`'.repeat(4999), Array.from({ length: 2000 }, (_, k) => '`'.repeat(k % 50 + 1)).join('x'),
  ]) property(input);
});

test('the property test can fail: a parser that drops a letter is caught', () => {
  const input = 'a **b** c';
  const broken = [{ type: 'para', children: [{ type: 'text', text: 'a ' }, { type: 'strong', children: [{ type: 'text', text: 'c' }] }] }];
  const leaves = check(broken, BLOCKS);
  assert.notEqual(leaves.replace(MARKUP, ''), input.replace(MARKUP, ''));
  assert.throws(() => check([{ type: 'para', children: [{ type: 'link', text: 'javascript:x', href: 'javascript:x' }] }], BLOCKS));
  assert.throws(() => check([{ type: 'para', children: [{ type: 'html', text: '<b>' }] }], BLOCKS));
});

// ---- in the browser, with the real server ----

describe('in the browser', () => {
  let server;
  let browser;

  before(async () => {
    server = await startHearth();
    browser = await launch();
  });

  after(async () => {
    await browser?.close();
    await server?.dispose();
  });

  const ALLOWED = {
    STRONG: [], EM: [], DEL: [], CODE: [], PRE: ['data-lang'], BLOCKQUOTE: [], UL: [], OL: ['start'], LI: [],
    A: ['class', 'href', 'rel', 'target'],
  };

  /** Only the attributes allowed for the tag; a link has all of its own. */
  function allowed(tag, names) {
    if (tag === 'A') return names.join() === ALLOWED.A.join();
    return !!ALLOWED[tag] && names.every((name) => ALLOWED[tag].includes(name));
  }

  /** Every element in the `.text` of message `seq`, as [tag, attribute names]. */
  function elementsOf(page, seq) {
    return page.locator(`#m-${seq} .text`).evaluate((el) => [...el.querySelectorAll('*')]
      .map((e) => [e.tagName, e.getAttributeNames().sort()]));
  }

  test('formatting is seen by others, and markup inside every construct shows as typed', async () => {
    const [annName, benName] = [username('ann'), username('ben')];
    const ann = await openPage(browser);
    const ben = await openPage(browser, { viewport: { width: 390, height: 760 }, hasTouch: true });
    await signUpQuietly(ann, server.url, annName);
    await signUpQuietly(ben, server.url, benName);
    await ann.goto(server.url);
    const code = await createRoom(ann, 'Formatting');
    await ben.goto(`${server.url}/r/${code}`);
    await ben.locator('.room-name', { hasText: 'Formatting' }).waitFor();

    const rows = ben.locator('.log .msg');
    await send(ann, 'plain words, as before');
    await send(ann, '**bold** *italic* _also_ ~~gone~~ `x < 1` see https://example.org/a.');
    await send(ann, 'Try this:\n```sh\ncargo build --locked --bin hearth && ./target/debug/hearth serve --bind 127.0.0.1:7878 --data-dir /var/lib/hearth\n```');
    await send(ann, '> quoted *words*\n- one\n- two\n1. first\n2. second');
    await rows.nth(3).waitFor();

    const plain = rows.nth(0).locator('.text');
    assert.equal(await plain.textContent(), 'plain words, as before');
    assert.equal(await plain.evaluate((el) => el.children.length), 0, 'a plain line is text only');

    const inline = rows.nth(1).locator('.text');
    assert.equal(await inline.locator('strong').textContent(), 'bold');
    assert.deepEqual(await inline.locator('em').allTextContents(), ['italic', 'also']);
    assert.equal(await inline.locator('del').textContent(), 'gone');
    assert.equal(await inline.locator('code').textContent(), 'x < 1');
    const link = inline.locator('a.link');
    assert.equal(await link.getAttribute('href'), 'https://example.org/a');
    assert.equal(await link.getAttribute('rel'), 'noopener noreferrer nofollow');
    assert.equal(await link.getAttribute('target'), '_blank');
    assert.equal(await inline.textContent(), 'bold italic also gone x < 1 see https://example.org/a.');

    const pre = rows.nth(2).locator('.text pre');
    assert.equal(await pre.getAttribute('data-lang'), 'sh');
    assert.match(await pre.locator('code').textContent(), /^cargo build .*hearth$/);
    // A long line scrolls inside its block; the page does not get wider (ben is on a phone).
    assert.ok(await pre.evaluate((el) => el.scrollWidth > el.clientWidth), 'the code block scrolls');
    assert.ok(await ben.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), 'no sideways page');

    const blocks = rows.nth(3).locator('.text');
    assert.equal(await blocks.locator('blockquote em').textContent(), 'words');
    assert.deepEqual(await blocks.locator('ul > li').allTextContents(), ['one', 'two']);
    assert.deepEqual(await blocks.locator('ol > li').allTextContents(), ['first', 'second']);
    await snap(ben, 'markdown-phone');
    await snap(ann, 'markdown-desktop');
    await ben.emulateMedia({ colorScheme: 'dark' });
    await snap(ben, 'markdown-phone-dark');

    // Markup inside every construct: shown as the characters typed, nothing made of it.
    const x = (n) => `<img src=x onerror="window.pwned=${n}">`;
    const attack = [
      `**${x(1)}** *<script>window.pwned=2</script>* _"><svg onload=window.pwned=3>_ ~~${x(4)}~~ \`${x(5)}\``,
      `https://example.org/"><img src=x onerror=window.pwned=6> [a](javascript:window.pwned=7) javascript:alert(8)`,
      '```html',
      `<script>window.pwned=9</script>${x(10)}`,
      '```',
      `> ${x(11)} **&lt;b&gt;**`,
      `- ${x(12)} \`<svg onload=window.pwned=13>\``,
      `1. "><iframe src=javascript:alert(14)> *${x(15)}*`,
    ].join('\n');
    await send(ann, attack);
    const shown = [
      `${x(1)} <script>window.pwned=2</script> "><svg onload=window.pwned=3> ${x(4)} ${x(5)}\n`,
      'https://example.org/"><img src=x onerror=window.pwned=6> [a](javascript:window.pwned=7) javascript:alert(8)',
      `<script>window.pwned=9</script>${x(10)}`,
      `${x(11)} &lt;b&gt;`,
      `${x(12)} <svg onload=window.pwned=13>`,
      `"><iframe src=javascript:alert(14)> ${x(15)}`,
    ].join('');
    for (const page of [ann, ben]) {
      const row = page.locator('.log .msg').nth(4);
      await row.waitFor();
      const seq = await row.getAttribute('data-seq');
      assert.equal(await row.locator('.text').textContent(), shown);
      const elements = await elementsOf(page, seq);
      assert.deepEqual(elements.map(([tag]) => tag), ['STRONG', 'EM', 'EM', 'DEL', 'CODE', 'A', 'PRE', 'CODE',
        'BLOCKQUOTE', 'STRONG', 'UL', 'LI', 'CODE', 'OL', 'LI', 'EM']);
      for (const [tag, names] of elements) assert.ok(allowed(tag, names), `${tag} ${names}`);
      assert.equal(await page.locator('.log img, .log script, .log svg:not(.icon), .log iframe').count(), 0);
      assert.equal(await row.locator('a').getAttribute('href'), 'https://example.org/');
      await row.locator('strong', { hasText: x(1) }).first().waitFor();
      await page.waitForTimeout(300);
      assert.equal(await page.evaluate(() => window.pwned), undefined);
      await assertClean(page);
    }

    // The rendered DOM for random hostile input: only the allowed elements and attributes.
    const found = await ben.evaluate(async ([pieces, seed]) => {
      const { renderMarkdown } = await import('/js/markdown.js');
      let s = seed;
      const next = () => {
        s = (Math.imul(s, 1103515245) + 12345) >>> 0;
        return s / 4294967296;
      };
      const seen = new Set();
      const box = document.createElement('div');
      for (let i = 0; i < 3000; i += 1) {
        let text = '';
        for (let n = Math.floor(next() * 30); n > 0; n -= 1) text += pieces[Math.floor(next() * pieces.length)];
        box.replaceChildren(...renderMarkdown(text));
        for (const el of box.querySelectorAll('*')) seen.add(`${el.tagName}:${el.getAttributeNames().sort()}`);
      }
      return [...seen].sort();
    }, [PIECES, 19]);
    for (const entry of found) {
      const [tag, names] = entry.split(':');
      assert.ok(allowed(tag, names ? names.split(',') : []), entry);
    }
    assert.equal(await ben.evaluate(() => window.pwned), undefined);
    await assertClean(ben);
  });
});
