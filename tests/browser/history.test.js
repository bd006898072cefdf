// A long room: the last page shows first, older pages load on scrolling up, a new message while
// reading old ones shows a pill instead of yanking the view; the slash-command hints.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startHearth, register, http, Client } from './lib/hearth.js';
import { launch, openPage, assertClean, signUpQuietly, messages } from './lib/ui.js';

const COUNT = 150;
let server;
let browser;
let sam;
let code;

before(async () => {
  // Seeding sends faster than an ordinary client may.
  server = await startHearth({ env: { HEARTH_WS__RATE_PER_SEC: '0' } });
  browser = await launch();
  const account = await register(server.url, 'sam');
  code = (await http(server.url, 'POST', '/api/rooms', { name: 'Long thread' }, account.token)).room.code;
  sam = await Client.connect(server.url, account.token);
  await sam.join(code);
  // In batches: each send brings an ack and a message back, and a socket's queue is bounded.
  for (let i = 0; i < COUNT; i += 50) {
    await Promise.all(Array.from({ length: 50 }, (_, j) => sam.send(code, `message number ${i + j + 1}`)));
  }
});

after(async () => {
  await sam?.close();
  await browser?.close();
  await server?.dispose();
});

function scrollState(page) {
  return page.locator('.scroller').evaluate((el) => ({
    top: el.scrollTop, fromBottom: el.scrollHeight - el.scrollTop - el.clientHeight,
  }));
}

test('older history loads on scroll up; new messages pill; no auto-scroll while reading', async () => {
  const page = await openPage(browser);
  await signUpQuietly(page, server.url, 'reader');
  await page.goto(`${server.url}/r/${code}`);
  await messages(page, `message number ${COUNT}`).waitFor();
  // The newest are shown and the view is at the bottom.
  assert.ok((await scrollState(page)).fromBottom < 5);
  assert.equal(await messages(page, 'message number 1').count(), 0);

  // Scrolling up brings older pages until the beginning of the room.
  for (let i = 0; i < 20 && !(await page.locator('.room-start').count()); i++) {
    await page.locator('.scroller').evaluate((el) => { el.scrollTop = 0; });
    await page.waitForTimeout(150);
  }
  await page.locator('.room-start').waitFor();
  const texts = await page.locator('.log .msg .text').allTextContents();
  const expected = Array.from({ length: COUNT }, (_, i) => `message number ${i + 1}`);
  assert.deepEqual(texts, expected, 'every message once, in order');

  // Reading old messages: a new one does not move the view; a pill offers to jump.
  await page.locator('.scroller').evaluate((el) => { el.scrollTop = 200; });
  await page.waitForTimeout(100);
  const before = await scrollState(page);
  await sam.send(code, 'news while you read');
  await page.locator('.pill').waitFor();
  const after = await scrollState(page);
  assert.equal(after.top, before.top, 'the view stayed put');
  await page.locator('.pill').click();
  await page.waitForFunction(() => {
    const el = document.querySelector('.scroller');
    return el.scrollHeight - el.scrollTop - el.clientHeight < 5;
  });
  await page.locator('.pill').waitFor({ state: 'hidden' });

  // At the bottom, new messages scroll into view by themselves.
  await sam.send(code, 'and one more');
  await messages(page, 'and one more').waitFor();
  await page.waitForTimeout(100);
  assert.ok((await scrollState(page)).fromBottom < 5);
  assert.equal(await page.locator('.pill').isVisible(), false);

  // Times read "just now" and the like; pointing at one shows the exact date and time.
  const time = page.locator('.group-head time').last();
  assert.match(await time.textContent(), /just now|min ago/);
  await time.hover();
  assert.match(await time.getAttribute('title'), /\d{4}/);

  // Messages from one author within one minute share a header.
  const groups = await page.locator('.log .group').count();
  assert.ok(groups < COUNT / 2, `${groups} groups for ${COUNT} messages`);

  // Typing "/" offers the commands; Tab completes.
  await page.locator('#composer').fill('/');
  await page.locator('#composer').press('End');
  await page.getByRole('listbox', { name: 'Commands' }).getByRole('option', { name: /\/help/ }).waitFor();
  await page.locator('#composer').press('Tab');
  assert.equal(await page.locator('#composer').inputValue(), '/help ');
  await page.getByRole('listbox', { name: 'Commands' }).waitFor({ state: 'hidden' });

  await assertClean(page);
  await page.context().close();
});

test('a bot answer is marked as from a bot, notices show to me alone, and joined sets the composer', async () => {
  // No plugin runs in this server, so the frames a bot's answer and a /help notice would bring
  // are put into the page's socket by the test, in the shapes docs/protocol.md gives; and the
  // server's `joined` is given a bot's command and a low length limit on its way, so that the
  // composer shows it uses what `joined` says rather than anything of its own.
  const page = await openPage(browser);
  let socket;
  await page.routeWebSocket(/\/ws$/, (ws) => {
    const server = ws.connectToServer();
    ws.onMessage((m) => server.send(m));
    server.onMessage((m) => {
      const frame = JSON.parse(m);
      if (frame.type === 'joined') {
        frame.commands.push({ name: 'roll', usage: '/roll DICE', description: 'roll some dice', bot: 'dice', paused: false });
        frame.limits.max_text_chars = 20;
        ws.send(JSON.stringify(frame));
      } else {
        ws.send(m);
      }
    });
    socket = ws;
  });
  await signUpQuietly(page, server.url, 'botwatcher');
  await page.goto(`${server.url}/r/${code}`);
  await messages(page, 'and one more').waitFor();
  const last = await page.locator('.log [data-seq]').last().getAttribute('data-seq');
  socket.send(JSON.stringify({
    type: 'message', room: code,
    item: { seq: Number(last) + 1, id: 1e9, ts: Date.now(), kind: 'bot', author: 'dice', text: 'rolled 4 <b>and</b> 2', reactions: {} },
  }));
  const group = page.locator('.group-bot', { has: page.getByText('rolled 4 <b>and</b> 2') });
  await group.waitFor();
  assert.equal(await group.locator('.bot-badge').textContent(), 'BOT');
  socket.send(JSON.stringify({ type: 'notice', room: code, text: 'Commands:\n/help — this list\n/roll DICE — roll some dice' }));
  await page.locator('.notice', { hasText: 'Only you can see this' }).waitFor();
  // The hints are `joined`'s commands, with their usage.
  await page.locator('#composer').fill('/r');
  await page.getByRole('option', { name: /\/roll DICE/ }).waitFor();
  // And the length limit is `joined`'s: past it the counter says so and nothing is sent.
  await page.locator('#composer').fill('x'.repeat(21));
  assert.equal(await page.locator('.counter').textContent(), '21/20');
  await page.locator('#composer').press('Enter');
  await page.getByText('Messages can have at most 20 characters.').waitFor();
  await page.locator('#composer').fill('');
  await assertClean(page);
  await page.context().close();
});
