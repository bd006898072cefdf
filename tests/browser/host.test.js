// The host's powers, seen from both sides: remove (and the removed person cannot come back),
// let back in, hand over the crown.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startHearth } from './lib/hearth.js';
import {
  launch, openPage, assertClean, signUpQuietly, createRoom, send, messages, username, snap,
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

/** The row of `user` in the members panel. */
function member(page, user) {
  return page.locator('.members .member-list:not(.banned-list) .member', { hasText: user });
}

async function confirm(page, button) {
  const dialog = page.getByRole('dialog');
  await dialog.waitFor();
  await dialog.getByRole('button', { name: button, exact: true }).click();
  await dialog.waitFor({ state: 'detached' });
}

test('the host removes a member, who cannot rejoin until let back in; the crown moves', async () => {
  const [hostName, bobName, carolName] = [username('host'), username('bob'), username('carol')];
  const host = await openPage(browser);
  const bob = await openPage(browser);
  const carol = await openPage(browser);
  await signUpQuietly(host, server.url, hostName);
  await signUpQuietly(bob, server.url, bobName);
  await signUpQuietly(carol, server.url, carolName);

  await host.goto(server.url);
  const code = await createRoom(host, 'Garden club');
  // Bob joins by typing the code in the sidebar; Carol opens the link.
  await bob.goto(server.url);
  await bob.getByLabel('Room code or link').fill(code.toLowerCase());
  await bob.getByRole('form', { name: 'Join a room' }).getByRole('button', { name: 'Join' }).click();
  await bob.locator('.room-name', { hasText: 'Garden club' }).waitFor();
  await carol.goto(`${server.url}/r/${code}`);
  await carol.locator('.room-name', { hasText: 'Garden club' }).waitFor();
  await member(host, bobName).and(host.locator('.online')).waitFor();
  await member(host, carolName).and(host.locator('.online')).waitFor();
  // The crown is on the host; only the host has a menu for others.
  for (const page of [host, bob, carol]) await member(page, hostName).locator('.crown').waitFor();
  assert.equal(await bob.getByRole('button', { name: /^Actions for/ }).count(), 0);

  await send(bob, 'I brought seeds');
  await messages(host, 'I brought seeds').waitFor();

  // The host removes Bob, after confirming.
  await host.getByRole('button', { name: `Actions for ${bobName}` }).click();
  await host.getByRole('button', { name: 'Remove from room' }).click();
  await host.getByRole('dialog').waitFor();
  await snap(host, 'desktop-light-confirm-remove');
  await confirm(host, 'Remove');
  await host.locator('.system-kick', { hasText: `${hostName} removed ${bobName}` }).waitFor();
  await carol.locator('.system-kick', { hasText: `${hostName} removed ${bobName}` }).waitFor();
  await member(host, bobName).waitFor({ state: 'detached' });

  // Bob sees why the room closed, and cannot write any more.
  await bob.locator('.banner', { hasText: `You were removed from this room by ${hostName}` }).waitFor();
  assert.equal(await bob.locator('#composer').isVisible(), false);
  await bob.locator('.room-link.room-kicked', { hasText: 'Garden club' }).waitFor();
  await snap(bob, 'desktop-light-removed');

  // Coming back by the link does not let him in.
  await bob.goto(`${server.url}/r/${code}`);
  await bob.locator('.banner', { hasText: /removed you|removed from this room/ }).waitFor();
  assert.equal(await bob.locator('#composer').isVisible(), false);
  assert.equal(await bob.locator('.room-link', { hasText: 'Garden club' }).count(), 0);
  // Nor by typing the code.
  await bob.getByRole('link', { name: 'Hearth home' }).click();
  await bob.getByLabel('Room code or link').fill(code);
  await bob.getByLabel('Room code or link').press('Enter');
  await bob.locator('.banner', { hasText: /removed you|removed from this room/ }).waitFor();

  // The host lets him back in; now he can join.
  const removed = host.locator('.banned-list .member', { hasText: bobName });
  await removed.getByRole('button', { name: `Let ${bobName} back in` }).click();
  await confirm(host, 'Let back in');
  await host.locator('.system-unban', { hasText: `${hostName} let ${bobName} back in` }).waitFor();
  await bob.goto(`${server.url}/r/${code}`);
  await bob.locator('#composer').waitFor();
  await member(host, bobName).waitFor();

  // The host makes Carol host: the crown moves on every page, and so do the host's menus.
  await host.getByRole('button', { name: `Actions for ${carolName}` }).click();
  await host.getByRole('button', { name: 'Make host' }).click();
  await confirm(host, 'Make host');
  for (const page of [host, bob, carol]) {
    await page.locator('.system-host_transfer', { hasText: `${hostName} made ${carolName} the host` }).waitFor();
    await member(page, carolName).locator('.crown').waitFor();
    await member(page, hostName).locator('.crown').waitFor({ state: 'detached' });
  }
  assert.equal(await host.getByRole('button', { name: /^Actions for/ }).count(), 0);
  await carol.getByRole('button', { name: `Actions for ${hostName}` }).waitFor();

  for (const page of [host, bob, carol]) {
    await assertClean(page);
    await page.context().close();
  }
});
