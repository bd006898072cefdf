// Two people in two browser contexts: sign up, create, join by link, chat, react, type.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startHearth } from './lib/hearth.js';
import {
  launch, openPage, assertClean, signUpWithForm, createRoom, send, messages, messageRow, username,
} from './lib/ui.js';

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

test('two people chat, react and see each other typing', async () => {
  const alice = await openPage(browser);
  const bob = await openPage(browser);
  const aliceName = username('alice');
  const bobName = username('bob');

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

  // Bob opens the link signed out: he is asked to sign in, then lands in the room.
  await bob.goto(`${server.url}/r/${code}`);
  await bob.getByText(`Sign in to join room ${code}`).waitFor();
  await signUpWithForm(bob, bobName);
  await bob.locator('.room-name', { hasText: 'Book club' }).waitFor();
  assert.equal(new URL(bob.url()).pathname, `/r/${code}`);
  await bob.locator('.room-link', { hasText: 'Book club' }).waitFor();

  // Alice sees Bob arrive: a system line and an online member.
  await alice.locator('.system-join', { hasText: `${bobName} joined` }).waitFor();
  await alice.locator('.member.online', { hasText: bobName }).waitFor();

  // Bob types; Alice sees it.
  await bob.locator('#composer').pressSequentially('hel', { delay: 30 });
  await alice.getByText(`${bobName} is typing…`).waitFor();
  await bob.locator('#composer').fill('');

  // They exchange messages; each appears once on both pages.
  await send(bob, 'Hi Alice! Read chapter 3 yet?');
  await send(alice, 'Hello Bob, almost done');
  for (const page of [alice, bob]) {
    await messages(page, 'Hi Alice! Read chapter 3 yet?').waitFor();
    await messages(page, 'Hello Bob, almost done').waitFor();
    assert.equal(await messages(page, 'Hi Alice! Read chapter 3 yet?').count(), 1);
  }
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
