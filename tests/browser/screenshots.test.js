// Screenshots of the main screens on a phone (390x844) and a desktop (1280x800), light and
// dark, saved under target/screenshots/ for people to look at; and the layout rules a phone
// needs: nothing wider than the screen, the composer on screen, 44 px touch targets.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startHearth, register, Client } from './lib/hearth.js';
import { launch, openPage, assertClean, signUpQuietly, messages, messageRow, snap } from './lib/ui.js';
import { assertAccessible } from './lib/axe.js';

let server;
let browser;
let code;
let mira;

const CONVERSATION = [
  ['sam', 'Morning all! Who is bringing what on Saturday?'],
  ['sam', 'I can do the bread and the big pot.'],
  ['mira', 'Salad and lemonade from me 🍋'],
  ['sam', 'Perfect. Recipe ideas here: https://example.org/recipes/summer-stew'],
  ['mira', 'That stew looks great. Should we start at 6 or 7?'],
  ['sam', '7 works better for me, the market closes at 5.'],
];

before(async () => {
  server = await startHearth();
  browser = await launch();
  const sam = await register(server.url, 'sam');
  const room = await fetch(`${server.url}/api/rooms`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${sam.token}` },
    body: JSON.stringify({ name: 'Saturday potluck' }),
  }).then((r) => r.json());
  code = room.room.code;
  const miraAccount = await register(server.url, 'Mira');
  const clients = {
    sam: await Client.connect(server.url, sam.token),
    mira: await Client.connect(server.url, miraAccount.token),
  };
  await clients.sam.join(code);
  await clients.mira.join(code);
  const seqs = [];
  for (const [who, text] of CONVERSATION) seqs.push((await clients[who].send(code, text)).seq);
  await clients.mira.request({ type: 'react', room: code, seq: seqs[1], emoji: '👍', on: true });
  await clients.sam.request({ type: 'react', room: code, seq: seqs[2], emoji: '❤️', on: true });
  await clients.sam.request({ type: 'react', room: code, seq: seqs[2], emoji: '🍋', on: true });
  mira = clients.mira;
  await clients.sam.close();
  const other = await fetch(`${server.url}/api/rooms`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${miraAccount.token}` },
    body: JSON.stringify({ name: 'Climbing crew' }),
  }).then((r) => r.json());
  await mira.join(other.room.code);
  await mira.send(other.room.code, 'Anyone up for Thursday?');
});

after(async () => {
  await mira?.close();
  await browser?.close();
  await server?.dispose();
});

const DEVICES = {
  phone: { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true },
  desktop: { viewport: { width: 1280, height: 800 } },
};

const shoot = snap;

async function assertFits(page, width) {
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(overflow <= width, `page is ${overflow}px wide on a ${width}px screen`);
}

for (const scheme of ['light', 'dark']) {
  for (const [device, options] of Object.entries(DEVICES)) {
    test(`screens on a ${device}, ${scheme}`, async () => {
      const page = await openPage(browser, { ...options, colorScheme: scheme });
      const width = options.viewport.width;
      await page.goto(`${server.url}/r/${code}`);
      await page.getByRole('heading', { name: 'Join “Saturday potluck” on Hearth' }).waitFor();
      await shoot(page, `${device}-${scheme}-invite`);
      await assertFits(page, width);
      await assertAccessible(page, `${device} ${scheme}: the invite's sign-up page`);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('heading', { name: 'Sign in to join “Saturday potluck”' }).waitFor();
      await assertAccessible(page, `${device} ${scheme}: the invite's sign-in page`);

      const name = `${device[0]}${scheme[0]}guest`;
      await signUpQuietly(page, server.url, name);
      await page.goto(`${server.url}/r/${code}`);
      await messages(page, CONVERSATION[5][1]).waitFor();
      await page.locator('.member', { hasText: 'Mira' }).first().waitFor({ state: 'attached' });
      await page.locator('#composer').fill('Count me in! I will bring dessert');
      await page.locator('#composer').blur();
      await shoot(page, `${device}-${scheme}-room`);
      await assertFits(page, width);
      await assertAccessible(page, `${device} ${scheme}: a room with history`);

      // The composer is on screen, above the bottom edge.
      const composer = await page.locator('.composer-box').boundingBox();
      assert.ok(composer.y + composer.height <= options.viewport.height, 'composer on screen');

      if (device === 'phone') {
        // Touch targets: every visible control in the room is at least 44 px both ways (links
        // inside message text are exempt, as inline text).
        const small = await page.evaluate(() => [...document.querySelectorAll('.room button, .room a:not(.text a), .room textarea')]
          .filter((el) => el.offsetParent !== null && el.getClientRects().length)
          .map((el) => ({ el: el.getAttribute('aria-label') || el.textContent.trim() || el.className, r: el.getBoundingClientRect() }))
          .filter(({ r }) => r.width > 0 && (r.width < 43.5 || r.height < 43.5))
          .map(({ el, r }) => `${el} ${Math.round(r.width)}x${Math.round(r.height)}`));
        assert.deepEqual(small, []);

        // A tap on a message shows its reaction button, and the picker opens.
        const row = messageRow(page, CONVERSATION[4][1]);
        await row.locator('.text').tap();
        await row.getByRole('button', { name: 'Add a reaction' }).tap();
        await page.getByRole('menu', { name: 'Pick a reaction' }).waitFor();
        await shoot(page, `${device}-${scheme}-picker`);
        await page.keyboard.press('Escape');

        // Members in a drawer; the room list in another.
        await page.getByRole('button', { name: /^Members:/ }).tap();
        await page.locator('.members-open').waitFor();
        await shoot(page, `${device}-${scheme}-members`);
        await assertAccessible(page, `${device} ${scheme}: the members panel`);
        await page.getByRole('button', { name: 'Close members' }).tap();
        await page.getByRole('button', { name: 'Show rooms' }).tap();
        await page.locator('.sidebar-open').waitFor();
        await shoot(page, `${device}-${scheme}-sidebar`);
        await page.getByRole('button', { name: 'Hide rooms' }).tap();
      } else {
        await page.getByRole('link', { name: 'Hearth home' }).click();
        await page.getByRole('heading', { name: /Welcome/ }).waitFor();
        await shoot(page, `${device}-${scheme}-home`);
        await assertAccessible(page, `${device} ${scheme}: home`);
        // Signed out: the plain sign-in page.
        await page.getByRole('button', { name: 'Sign out' }).click();
        await page.getByRole('heading', { name: 'Welcome back' }).waitFor();
        await shoot(page, `${device}-${scheme}-signin`);
        await assertAccessible(page, `${device} ${scheme}: the sign-in page`);
      }
      await assertClean(page);
      await page.context().close();
    });
  }
}
