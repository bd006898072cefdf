// Two people in two browser contexts: sign up, create, join by link, chat, react, type.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startHearth, register, Client } from './lib/hearth.js';
import {
  launch, openPage, assertClean, signUpWithForm, signUpQuietly, createRoom, send, messages, messageRow, username,
  escapeRe, watchNoise, toolsShown, overlap, snap,
} from './lib/ui.js';

let server;
let browser;

before(async () => {
  // The quote bot is pointed at an address it may not reach, to see what the room is told.
  server = await startHearth({ env: { HEARTH_PLUGIN__STOCKS__SETTINGS__BASE_URL: 'http://127.0.0.1:9' } });
  browser = await launch();
});

/** Exactly `text`, case and all (Playwright's string matching ignores case). */
function exact(text) {
  return new RegExp(escapeRe(text));
}

after(async () => {
  await browser?.close();
  await server?.dispose();
});

test('two people chat, react and see each other typing', async () => {
  const alice = await openPage(browser);
  const bob = await openPage(browser);
  // Capitals: a username is lower-cased, and the name typed at sign-up is the display name.
  const aliceName = username('Alice');
  const bobName = username('Bob');

  // Alice signs up with the form and creates a room; the share dialog copies its link.
  await alice.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.url });
  await alice.goto(server.url);
  await signUpWithForm(alice, aliceName);
  await alice.getByRole('heading', { name: /Welcome/ }).waitFor();
  const code = await createRoom(alice, 'Book club', async (dialog) => {
    await dialog.getByRole('button', { name: 'Copy link' }).click();
    await dialog.getByText('Link copied.').waitFor();
  });
  assert.equal(await alice.evaluate(() => navigator.clipboard.readText()), `${server.url}/r/${code}`);
  assert.equal(new URL(alice.url()).pathname, `/r/${code}`);

  // Bob opens the link signed out: being new, he is asked to create an account to join the
  // room, which is named; then he lands in it.
  await bob.goto(`${server.url}/r/${code}`);
  await bob.getByRole('heading', { name: 'Join “Book club” on Hearth' }).waitFor();
  assert.equal(await bob.locator('.auth-form button[type=submit]').textContent(), 'Create account');
  await bob.getByText('You were sent a link to Book club').waitFor();
  await signUpWithForm(bob, bobName);
  await bob.locator('.room-name', { hasText: 'Book club' }).waitFor();
  assert.equal(new URL(bob.url()).pathname, `/r/${code}`);
  await bob.locator('.room-link', { hasText: 'Book club' }).waitFor();

  // Alice sees Bob arrive, by his display name (not his lower-cased username): a system line
  // and an online member.
  await alice.locator('.system-join', { hasText: exact(`${bobName} joined`) }).waitFor();
  await alice.locator('.member.online', { hasText: exact(bobName) }).waitFor();

  // Bob types; Alice sees it, with one ellipsis (the line's dots), not the words' and the dots.
  await bob.locator('#composer').pressSequentially('hel', { delay: 30 });
  const typing = alice.locator('.typing.active');
  await typing.filter({ hasText: exact(`${bobName} is typing`) }).waitFor();
  const dots = await typing.evaluate((el) => ({
    text: el.textContent, animated: getComputedStyle(el, '::after').animationName !== 'none',
  }));
  assert.ok(!(dots.animated && /(…|\.)$/.test(dots.text)), `typing line ${JSON.stringify(dots)}`);
  await bob.locator('#composer').fill('');

  // They exchange messages; each appears once on both pages, under the author's display name.
  await send(bob, 'Hi Alice! Read chapter 3 yet?');
  await send(alice, 'Hello Bob, almost done');
  for (const page of [alice, bob]) {
    await messages(page, 'Hi Alice! Read chapter 3 yet?').waitFor();
    await messages(page, 'Hello Bob, almost done').waitFor();
    assert.equal(await messages(page, 'Hi Alice! Read chapter 3 yet?').count(), 1);
  }
  const bobGroup = alice.locator('.group').filter({ has: alice.locator('.text', { hasText: 'Read chapter 3 yet?' }) });
  assert.equal(await bobGroup.locator('.author').textContent(), bobName);

  // A toast (the room's link copied) leaves the room's header and its code chip uncovered.
  await alice.locator('.code-chip').click();
  const toast = alice.locator('.toast', { hasText: 'Link copied' });
  await toast.waitFor();
  assert.equal(await overlap(toast, alice.locator('.room-head')), false, 'the toast covers the header');
  // The typing line clears once Bob's message is in.
  await alice.locator('.typing.active').waitFor({ state: 'detached' }).catch(() => {});
  assert.equal((await alice.locator('.typing').textContent()).trim(), '');

  // Alice reacts to Bob's message with the picker.
  const bobMsgOnAlice = messageRow(alice, 'Hi Alice! Read chapter 3 yet?');
  await bobMsgOnAlice.hover();
  await bobMsgOnAlice.getByRole('button', { name: 'Add a reaction' }).click();
  await alice.getByRole('menuitem', { name: 'React with thumbs up' }).click();
  const bobMsgOnBob = messageRow(bob, 'Hi Alice! Read chapter 3 yet?');
  for (const row of [bobMsgOnAlice, bobMsgOnBob]) {
    await row.locator('.chip', { hasText: '👍' }).filter({ hasText: '1' }).waitFor();
  }
  assert.equal(await bobMsgOnAlice.locator('.chip').getAttribute('aria-pressed'), 'true');
  assert.equal(await bobMsgOnBob.locator('.chip').getAttribute('aria-pressed'), 'false');

  // Bob adds his by clicking the chip: 2 on both; Alice clicks hers off: 1 on both.
  await bobMsgOnBob.locator('.chip').click();
  for (const row of [bobMsgOnAlice, bobMsgOnBob]) await row.locator('.chip').filter({ hasText: '2' }).waitFor();
  await bobMsgOnAlice.locator('.chip').click();
  for (const row of [bobMsgOnAlice, bobMsgOnBob]) await row.locator('.chip').filter({ hasText: '1' }).waitFor();
  assert.equal(await bobMsgOnBob.locator('.chip').getAttribute('aria-pressed'), 'true');

  // Unread counts: Bob goes home; a new message from Alice counts on his sidebar.
  await bob.getByRole('link', { name: 'Hearth home' }).click();
  await send(alice, 'Dinner at 7?');
  await bob.locator('.room-link', { hasText: 'Book club' }).locator('.unread', { hasText: '1' }).waitFor();
  await bob.locator('.room-link', { hasText: 'Book club' }).click();
  await messages(bob, 'Dinner at 7?').waitFor();
  await bob.locator('.room-link .unread').waitFor({ state: 'detached' });

  await assertClean(alice);
  await assertClean(bob);
  await alice.context().close();
  await bob.context().close();
});

test('a message with markup shows literally and runs nothing; links are safe', async () => {
  const alice = await openPage(browser);
  const bob = await openPage(browser);
  await alice.goto(server.url);
  await signUpWithForm(alice, username('xa'));
  const code = await createRoom(alice, 'Sandbox');
  await bob.goto(`${server.url}/r/${code}`);
  await signUpWithForm(bob, username('xb'));
  await bob.locator('.room-name', { hasText: 'Sandbox' }).waitFor();

  const attack = '<img src=x onerror=alert(1)>';
  const more = '<script>alert(2)</script> javascript:alert(3) https://example.org/a?b=1&c=<d>';
  await send(bob, attack);
  await send(bob, more);
  for (const page of [alice, bob]) {
    await messages(page, attack).waitFor();
    await messages(page, more).waitFor();
    // Shown as the characters typed, with no element made from them.
    assert.equal(await page.locator('.log img, .log script').count(), 0);
    const link = page.locator('.log a.link');
    assert.equal(await link.count(), 1);
    assert.equal(await link.getAttribute('href'), 'https://example.org/a?b=1&c=');
    assert.equal(await link.getAttribute('rel'), 'noopener noreferrer nofollow');
    assert.equal(await link.getAttribute('target'), '_blank');
    // Give an onerror handler every chance to have fired.
    await page.waitForTimeout(300);
    assert.deepEqual(page.dialogs, []);
    await assertClean(page);
  }
  await alice.context().close();
  await bob.context().close();
});

test('the UI is served with its security and cache headers', async () => {
  const page = await fetch(`${server.url}/r/ABCDEF`, { headers: { 'accept-encoding': 'gzip, br' } });
  assert.equal(page.status, 200);
  const csp = page.headers.get('content-security-policy');
  for (const part of ["script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "object-src 'none'", "require-trusted-types-for 'script'"]) {
    assert.ok(csp.includes(part), `${part} in ${csp}`);
  }
  assert.ok(!csp.includes('unsafe-inline'));
  assert.equal(page.headers.get('x-frame-options'), 'DENY');
  assert.equal(page.headers.get('referrer-policy'), 'no-referrer');
  assert.equal(page.headers.get('x-content-type-options'), 'nosniff');
  assert.equal(page.headers.get('cache-control'), 'no-cache');
  const script = await fetch(`${server.url}/js/main.js`, { headers: { 'accept-encoding': 'br' } });
  const etag = script.headers.get('etag');
  assert.ok(etag, 'assets carry an ETag');
  assert.equal(script.headers.get('content-encoding'), 'br');
  const again = await fetch(`${server.url}/js/main.js`, { headers: { 'if-none-match': etag } });
  assert.equal(again.status, 304);
  const manifest = await fetch(`${server.url}/manifest.webmanifest`);
  const app = await manifest.json();
  assert.equal(app.name, 'Hearth');
  assert.equal(app.display, 'standalone');
  for (const icon of app.icons) {
    const file = await fetch(new URL(icon.src, server.url));
    assert.equal(file.status, 200, icon.src);
    assert.equal(file.headers.get('content-type'), icon.type, icon.src);
  }
  assert.ok(app.icons.some((i) => i.sizes === '512x512' && i.purpose === 'maskable'));
});

test('the sign-in page offers a button per provider the server lists', async () => {
  const page = await openPage(browser);
  // Whatever the server's configuration, the page renders what /api/auth/providers answers.
  await page.route('**/api/auth/providers', (route) => route.fulfill({ json: ['github', 'keycloak'] }));
  await page.goto(`${server.url}/r/ABCDEF`);
  const github = page.getByRole('link', { name: 'Continue with GitHub' });
  await github.waitFor();
  assert.equal(await github.getAttribute('href'), '/auth/github/start?next=%2Fr%2FABCDEF');
  assert.equal(await page.getByRole('link', { name: 'Continue with Keycloak' }).getAttribute('href'),
    '/auth/keycloak/start?next=%2Fr%2FABCDEF');
  await page.goto(server.url);
  assert.equal(await page.getByRole('link', { name: 'Continue with GitHub' }).getAttribute('href'), '/auth/github/start');
  await assertClean(page);
  await page.context().close();
});

test('keyboard only: write, send, and react through the picker', async () => {
  const page = await openPage(browser);
  await page.goto(server.url);
  await signUpWithForm(page, username('kb'));
  await page.getByRole('heading', { name: /Welcome/ }).waitFor();
  await page.getByLabel('Room name').focus();
  await page.keyboard.type('Keys only');
  await page.keyboard.press('Enter');
  await page.getByRole('dialog').waitFor();
  await page.keyboard.press('Escape');
  // The composer has the focus once the room is open.
  await page.waitForFunction(() => document.activeElement?.id === 'composer');
  await page.keyboard.type('typed, not clicked');
  await page.keyboard.press('Enter');
  await messages(page, 'typed, not clicked').waitFor();
  // Shift+Tab reaches the newest message's reaction button; the picker works with arrows.
  await page.keyboard.press('Shift+Tab');
  assert.equal(await page.evaluate(() => document.activeElement.getAttribute('aria-label')), 'Add a reaction');
  await page.keyboard.press('Enter');
  await page.getByRole('menu', { name: 'Pick a reaction' }).waitFor();
  await page.keyboard.press('ArrowRight');
  await page.keyboard.press('Enter');
  const chip = messageRow(page, 'typed, not clicked').locator('.chip', { hasText: '❤️' });
  await chip.waitFor();
  assert.equal(await chip.getAttribute('aria-pressed'), 'true');
  assert.equal(await page.evaluate(() => document.activeElement.getAttribute('aria-label')), 'Add a reaction');
  await assertClean(page);
  await page.context().close();
});

test('a signed-out load asks nothing that fails: no 401, no refused socket', async () => {
  const page = await openPage(browser);
  const noise = watchNoise(page);
  for (const path of ['/r/ABCDEF', '/']) {
    await page.goto(server.url + path);
    await page.locator('.auth-form').waitFor();
    await page.waitForLoadState('networkidle');
  }
  assert.deepEqual(noise, []);
  // Signed in, then out: the next load is quiet again.
  await signUpWithForm(page, username('quiet'));
  await page.getByRole('heading', { name: /Welcome/ }).waitFor();
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.locator('.auth-form').waitFor();
  noise.length = 0;
  await page.reload();
  await page.locator('.auth-form').waitFor();
  await page.waitForLoadState('networkidle');
  assert.deepEqual(noise, []);
  await assertClean(page);
  await page.context().close();
});

test('one person: title counts, commands, the quote bot failing and drafts', async () => {
  const page = await openPage(browser);
  const me = username('Dana');
  await signUpQuietly(page, server.url, me);
  await page.goto(server.url);
  const kitchen = await createRoom(page, 'Kitchen');
  const garden = await createRoom(page, 'Garden');
  const carol = await register(server.url, username('carol'));
  const client = await Client.connect(server.url, carol.token);
  await client.join(kitchen);
  await client.join(garden);
  await page.locator('.member.online', { hasText: carol.user.display_name }).waitFor();

  // Garden is open; a message in Kitchen counts in the title, and stays counted when who is
  // online in Garden changes (Carol's socket closes).
  await client.send(kitchen, 'soup is on');
  await page.waitForFunction(() => document.title === '(1) Garden · Hearth');
  await client.close();
  await page.locator('.member:not(.online)', { hasText: carol.user.display_name }).waitFor();
  assert.equal(await page.title(), '(1) Garden · Hearth');

  // In a background tab, a message in the open room counts too, until the tab is looked at.
  const setHidden = (hidden) => page.evaluate((h) => {
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => (h ? 'hidden' : 'visible') });
    document.dispatchEvent(new Event('visibilitychange'));
  }, hidden);
  await setHidden(true);
  const again = await Client.connect(server.url, carol.token);
  await again.join(garden);
  await again.send(garden, 'anyone watering today?');
  await page.waitForFunction(() => document.title === '(2) Garden · Hearth');
  await setHidden(false);
  await page.waitForFunction(() => document.title === '(1) Garden · Hearth');
  await again.close();

  // /help is answered to me alone, and leaves no "Sending…" row behind; nor does an unknown
  // command.
  await send(page, '/help');
  await page.locator('.notice', { hasText: '/stock' }).waitFor();
  await page.locator('.pending-log .pending').waitFor({ state: 'detached' });
  await send(page, '/nosuchthing');
  await page.locator('.toast', { hasText: '/nosuchthing is not a command here' }).waitFor();
  await page.locator('.pending-log .pending').waitFor({ state: 'detached' });

  // The quote bot cannot reach its service: the room reads a sentence for people; the address
  // and the error go to the server's log.
  await send(page, '/stock AAPL');
  const reply = page.locator('.group-bot .text', { hasText: "Couldn't reach the quote service" });
  await reply.waitFor();
  assert.ok(!(await page.locator('.log-region').textContent()).includes('127.0.0.1'), 'the room is shown the address');
  await waitFor(() => server.logs.some((line) => line.includes('quote service at http://127.0.0.1:9')), 'the detail in the log');

  // Drafts are kept per room, across a reload.
  await page.locator('#composer').fill('half a thought');
  await page.locator('.room-link', { hasText: 'Kitchen' }).click();
  await page.locator('.room-name', { hasText: 'Kitchen' }).waitFor();
  assert.equal(await page.locator('#composer').inputValue(), '');
  await page.locator('#composer').pressSequentially('kitchen draft');
  await page.reload();
  await page.locator('.room-name', { hasText: 'Kitchen' }).waitFor();
  assert.equal(await page.locator('#composer').inputValue(), 'kitchen draft');
  await page.locator('.room-link', { hasText: 'Garden' }).click();
  await page.locator('.room-name', { hasText: 'Garden' }).waitFor();
  assert.equal(await page.locator('#composer').inputValue(), 'half a thought');
  await page.locator('#composer').press('Enter');
  await messages(page, 'half a thought').waitFor();
  await page.reload();
  await page.locator('.room-name', { hasText: 'Garden' }).waitFor();
  assert.equal(await page.locator('#composer').inputValue(), '');
  await assertClean(page);
  await page.context().close();
});

test('phone: a tapped message shows its tools until the next tap, hover aside', async () => {
  const account = await register(server.url, username('tap'));
  const page = await openPage(browser, { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  await signUpQuietly(page, server.url, username('Phone'));
  await page.goto(server.url);
  const code = await createRoom(page, 'Taps');
  const client = await Client.connect(server.url, account.token);
  await client.join(code);
  await client.send(code, 'first line');
  await client.send(code, 'second line');
  await client.close();
  const first = messageRow(page, 'first line');
  const second = messageRow(page, 'second line');
  await second.waitFor();
  assert.equal(await toolsShown(first), false);
  await first.locator('.text').tap();
  assert.equal(await toolsShown(first), true);
  // Tapped again: gone, though the tap left :hover on it.
  await first.locator('.text').tap();
  assert.equal(await toolsShown(first), false);
  // Shown, then a tap elsewhere (another message, the header) hides it.
  await first.locator('.text').tap();
  await second.locator('.text').tap();
  assert.equal(await toolsShown(first), false);
  assert.equal(await toolsShown(second), true);
  await page.locator('.room-head .room-name').tap();
  assert.equal(await toolsShown(second), false);
  // A toast stays clear of the header here too.
  await page.locator('.code-chip').tap();
  const toast = page.locator('.toast');
  await toast.first().waitFor();
  assert.equal(await overlap(toast.first(), page.locator('.room-head')), false, 'the toast covers the header');
  await snap(page, 'phone-light-toast');
  await assertClean(page);
  await page.context().close();
});

async function waitFor(check, what, timeout = 10000) {
  const end = Date.now() + timeout;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
