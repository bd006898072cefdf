// Unread and notifications, as two people live them: a read position shared by one person's
// devices, the "new" line and the jump to it, @ completion, counts in the sidebar, title and
// tab icon, the sound and the system notification for a mention in a hidden tab, and a room's
// level chosen in its notification settings.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startHearth, register, Client, PASSWORD } from './lib/hearth.js';
import {
  launch, openPage, assertClean, signUpQuietly, createRoom, send, messages, messageRow, username, snap,
} from './lib/ui.js';

let server;
let browser;

before(async () => {
  // Seeding a long history needs more than a person's rate of sending.
  server = await startHearth({ env: { HEARTH_WS__RATE_PER_SEC: '0' } });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await server?.dispose();
});

/** Counts the page's sound plays and system notifications (set before any script runs). */
function spyOnAlerts(page) {
  return page.addInitScript(() => {
    window.alerts = { plays: [], notes: [] };
    const play = HTMLMediaElement.prototype.play;
    HTMLMediaElement.prototype.play = function spiedPlay() {
      window.alerts.plays.push(this.getAttribute('src'));
      return play.call(this);
    };
    const Real = window.Notification;
    if (!Real) return;
    class Spied extends Real {
      constructor(title, options) {
        super(title, options);
        window.alerts.notes.push({ title, body: options && options.body });
      }
    }
    window.Notification = Spied;
  });
}

const setHidden = (page, hidden) => page.evaluate((h) => {
  Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => (h ? 'hidden' : 'visible') });
  document.dispatchEvent(new Event('visibilitychange'));
}, hidden);

const sidebarCount = (page, room) => page.locator('.room-link', { hasText: room }).locator('.unread');
const icon = (page) => page.locator('link[rel="icon"]').getAttribute('href');

test('a read position shared by devices, the new line, and the jump to the first unread', async () => {
  const [annName, benName] = [username('ann'), username('ben')];
  const ann = await openPage(browser);
  await signUpQuietly(ann, server.url, annName);
  await ann.goto(server.url);
  const code = await createRoom(ann, 'Porch');
  const ben = await register(server.url, benName);
  const writer = await Client.connect(server.url, ben.token);
  await writer.join(code);

  // Ann's laptop and phone: the same person on two devices.
  const phone = await openPage(browser, { viewport: { width: 390, height: 760 }, hasTouch: true });
  const signIn = await phone.context().request.post(`${server.url}/api/auth/login`, { data: { username: annName, password: PASSWORD } });
  assert.equal(signIn.status(), 200, await signIn.text());
  await phone.goto(server.url);
  await phone.locator('.room-link', { hasText: 'Porch' }).waitFor();

  // Away from the room on both, Ben writes three messages, one naming Ann: both sidebars count.
  await ann.getByRole('link', { name: 'Hearth home' }).click();
  await writer.send(code, 'first of three');
  await writer.send(code, `second, for @${annName}`);
  await writer.send(code, 'third of three');
  for (const page of [ann, phone]) await sidebarCount(page, 'Porch').filter({ hasText: '@1 · 3' }).waitFor();
  assert.equal(await ann.title(), '(3) Hearth');
  assert.equal(await icon(ann), '/icons/badge/3m.svg');

  // The phone opens the room: the line marks where the new ones start; the laptop hears that
  // they are read and stops counting.
  await phone.locator('.room-link', { hasText: 'Porch' }).click();
  await messages(phone, 'third of three').waitFor();
  const line = phone.locator('.log .unread-divider');
  await line.waitFor();
  assert.equal(await line.evaluate((el) => el.nextElementSibling.textContent.includes('first of three')), true,
    'the line comes right before the first unread message');
  await snap(phone, 'notify-new-line-phone');
  await sidebarCount(ann, 'Porch').waitFor({ state: 'detached' });
  await ann.waitForFunction(() => document.title === 'Hearth');
  assert.equal(await icon(ann), '/icons/icon.svg');

  // Read everywhere: opening the room on the laptop shows no line.
  await ann.locator('.room-link', { hasText: 'Porch' }).click();
  await messages(ann, 'third of three').waitFor();
  assert.equal(await ann.locator('.log .unread-divider').count(), 0);

  // Many messages while Ann is on neither device: the first unread is further back than the
  // page loads, and the jump brings it.
  await assertClean(phone);
  await phone.context().close();
  await ann.getByRole('link', { name: 'Hearth home' }).click();
  await writer.send(code, 'the first one you missed');
  for (let i = 0; i < 130; i += 1) await writer.send(code, `catching up ${i}`);
  // A fresh load knows only the newest page of the room, and the server's count.
  await ann.reload();
  await sidebarCount(ann, 'Porch').filter({ hasText: '99+' }).waitFor();
  await ann.locator('.room-link', { hasText: 'Porch' }).click();
  await messages(ann, 'catching up 129').waitFor();
  const jump = ann.getByRole('button', { name: 'Jump to first unread' });
  await jump.waitFor();
  await jump.click();
  const missed = messages(ann, 'the first one you missed');
  await missed.waitFor();
  await ann.locator('.log .unread-divider').waitFor();
  assert.ok(await missed.isVisible());
  await ann.waitForFunction(() => {
    const line = document.querySelector('.log .unread-divider');
    const box = document.querySelector('.scroller').getBoundingClientRect();
    const at = line.getBoundingClientRect();
    return at.top >= box.top - 1 && at.bottom <= box.bottom + 1;
  });
  await jump.waitFor({ state: 'hidden' });

  writer.close();
  await assertClean(ann);
  await ann.context().close();
});

test('a mention in a hidden tab: title, icon, sound and notification; @ completes names; levels per room', async () => {
  const [annName, benName] = [username('ann'), username('ben')];
  const ann = await openPage(browser);
  const ben = await openPage(browser, { permissions: ['notifications'] });
  await spyOnAlerts(ben);
  await signUpQuietly(ann, server.url, annName);
  await signUpQuietly(ben, server.url, benName);
  await ann.goto(server.url);
  const code = await createRoom(ann, 'Yard');
  await ben.goto(`${server.url}/r/${code}`);
  await ben.locator('.room-name', { hasText: 'Yard' }).waitFor();
  await send(ben, 'hello from ben');
  await messages(ann, 'hello from ben').waitFor();

  // Ann names Ben by completing "@be" from the list.
  const box = ann.locator('#composer');
  await box.fill('thanks @');
  await box.pressSequentially(benName.slice(0, 3));
  const hint = ann.getByRole('option', { name: new RegExp(benName) });
  await hint.waitFor();
  await snap(ann, 'notify-mention-completion');
  await box.press('Tab');
  assert.equal(await box.inputValue(), `thanks @${benName} `);
  await box.pressSequentially('see you');
  await box.press('Enter');
  await messageRow(ben, `thanks @${benName} see you`).and(ben.locator('.msg-mentions-me')).waitFor();
  // The name is marked in the text, on both sides.
  for (const page of [ann, ben]) {
    await messageRow(page, `thanks @${benName} see you`).locator('.mention', { hasText: `@${benName}` }).waitFor();
  }

  // Ben's tab goes to the background; a message that does not name him counts but stays quiet
  // (rooms notify of mentions), one that names him also sounds and notifies.
  await setHidden(ben, true);
  await send(ann, 'just chatting');
  await ben.waitForFunction(() => document.title === '(1) Yard · Hearth');
  assert.equal(await icon(ben), '/icons/badge/1.svg');
  await send(ann, `@${benName} are you there?`);
  await ben.waitForFunction(() => document.title === '(2) Yard · Hearth');
  assert.equal(await icon(ben), '/icons/badge/2m.svg');
  await ben.waitForFunction(() => window.alerts.notes.length === 1);
  const alerts = await ben.evaluate(() => window.alerts);
  assert.deepEqual(alerts.plays, ['/sounds/ping.wav'], 'one sound, for the mention');
  assert.equal(alerts.notes[0].body, `@${benName} are you there?`);
  assert.match(alerts.notes[0].title, /in Yard$/);
  await ben.waitForFunction(() => {
    const audio = document.querySelector('audio.ping');
    return audio && audio.played.length > 0;
  });
  const badge = await ben.context().request.get(`${server.url}/icons/badge/2m.svg`);
  assert.equal(badge.headers()['content-type'], 'image/svg+xml');
  assert.match(await badge.text(), />2<\/text>/);

  // Looking again: read, the count goes, and the new line stands before the first unseen one.
  await setHidden(ben, false);
  await ben.waitForFunction(() => document.title === 'Yard · Hearth');
  const line = ben.locator('.log .unread-divider');
  await line.waitFor();
  assert.equal(await line.evaluate((el) => el.nextElementSibling.textContent.includes('just chatting')), true);

  // Ben silences the room: later mentions are not counted in the title and make no sound.
  await ben.getByRole('button', { name: 'Notifications: mentions only' }).click();
  const dialog = ben.getByRole('dialog');
  await dialog.getByText('Nothing', { exact: true }).click();
  await snap(ben, 'notify-settings');
  await dialog.getByRole('button', { name: 'Save' }).click();
  await ben.getByRole('button', { name: 'Notifications: off' }).waitFor();
  await setHidden(ben, true);
  await send(ann, `@${benName} one more thing`);
  await messages(ben, `@${benName} one more thing`).waitFor();
  assert.equal(await ben.title(), 'Yard · Hearth');
  assert.equal((await ben.evaluate(() => window.alerts.plays)).length, 1);

  // Every message: one that names nobody notifies too, without a sound (sounds are for
  // mentions unless this device says otherwise).
  await setHidden(ben, false);
  await ben.getByRole('button', { name: 'Notifications: off' }).click();
  await ben.getByRole('dialog').getByText('Every message', { exact: true }).click();
  await ben.getByRole('dialog').getByRole('button', { name: 'Save' }).click();
  await ben.getByRole('button', { name: 'Notifications: every message' }).waitFor();
  await setHidden(ben, true);
  await send(ann, 'dinner is ready');
  await ben.waitForFunction(() => window.alerts.notes.length === 2);
  assert.equal((await ben.evaluate(() => window.alerts.plays)).length, 1);
  // The level is kept on the server.
  const rooms = await ben.context().request.get(`${server.url}/api/rooms`);
  assert.equal((await rooms.json()).rooms.find((r) => r.code === code).notify, 'all');

  await assertClean(ann);
  await assertClean(ben);
  await ann.context().close();
  await ben.context().close();
});
