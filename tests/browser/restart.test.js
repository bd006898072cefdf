// The server restarts mid-conversation. Both pages notice, reconnect by themselves and resume
// with `since`: a message posted while they were away (by a third client over the socket)
// shows exactly once, and so does a message typed on a page while it was offline. A page
// reloaded while the server is down is served by the service worker: the room as last seen,
// and a banner saying it is offline.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startHearth, register, Client } from './lib/hearth.js';
import {
  launch, openPage, assertClean, signUpQuietly, createRoom, send, messages, waitOpen, username, snap,
} from './lib/ui.js';
import { assertAccessible } from './lib/axe.js';

const cleanup = [];
after(async () => {
  for (const step of cleanup.reverse()) await step();
});

async function countAll(page) {
  return page.evaluate(() => {
    const seqs = [...document.querySelectorAll('.log [data-seq]')].map((el) => el.dataset.seq);
    return { rows: seqs.length, unique: new Set(seqs).size };
  });
}

test('both pages reconnect after a restart and miss nothing, twice nothing', async () => {
  let server = await startHearth();
  const { port, dataDir } = server;
  cleanup.push(() => server.dispose());
  const browser = await launch();
  cleanup.push(() => browser.close());

  const [aliceName, bobName, carolName] = [username('alice'), username('bob'), username('carol')];
  const alice = await openPage(browser);
  const bob = await openPage(browser);
  await signUpQuietly(alice, server.url, aliceName);
  await signUpQuietly(bob, server.url, bobName);
  const carol = await register(server.url, carolName);

  await alice.goto(server.url);
  const code = await createRoom(alice, 'Night shift');
  await bob.goto(`${server.url}/r/${code}`);
  await bob.locator('#composer').waitFor();
  await send(alice, 'before the restart');
  await send(bob, 'me too');
  for (const page of [alice, bob]) await messages(page, 'me too').waitFor();
  await waitOpen(alice);
  await waitOpen(bob);
  await alice.locator('.member.online', { hasText: bobName }).waitFor();
  // Bob's page has its worker, and has kept the room's newest messages.
  await bob.evaluate(() => navigator.serviceWorker.ready.then(() => null));
  await bob.waitForFunction(() => navigator.serviceWorker.controller !== null);
  const kept = () => bob.evaluate(async () => {
    const keys = (await (await caches.open('hearth-data')).keys()).map((r) => new URL(r.url).pathname);
    return ['/api/session', '/api/rooms'].every((k) => keys.includes(k)) && keys.some((k) => k.endsWith(location.pathname.slice(3)));
  });
  for (let tries = 0; !(await kept()); tries++) {
    assert.ok(tries < 100, 'the room is kept for offline use');
    await bob.waitForTimeout(100);
  }

  // The server goes down (SIGTERM: sockets close with 1001). Both pages say so.
  await server.stop();
  for (const page of [alice, bob]) {
    await page.waitForFunction(() => ['waiting', 'reconnecting'].includes(document.body.dataset.conn));
    await page.locator('.offline-banner').waitFor();
  }
  // With her own socket down, Alice's page no longer claims anyone is online.
  assert.equal(await alice.locator('.member.online').count(), 0, 'online dots while offline');

  // Bob reloads with the server down: the worker's copy of the page, the room as he last saw
  // it, and the offline banner.
  await bob.reload();
  await bob.locator('.room-name', { hasText: 'Night shift' }).waitFor();
  for (const text of ['before the restart', 'me too']) await messages(bob, text).waitFor();
  await bob.locator('.offline-banner', { hasText: 'Offline' }).waitFor();
  await snap(bob, 'desktop-light-offline-reload');
  await assertAccessible(bob, 'the room reloaded offline');
  // Alice writes while offline: the message waits on her page.
  await send(alice, 'typed while offline');
  await alice.locator('.pending', { hasText: 'typed while offline' }).waitFor();
  await snap(alice, 'desktop-light-offline');

  // While the pages cannot reach it (the database is served on another port for a moment),
  // Carol posts over the socket.
  const aside = await startHearth({ dataDir });
  const client = await Client.connect(aside.url, carol.token);
  await client.join(code);
  const ack = await client.send(code, 'posted during the outage');
  assert.equal(ack.type, 'ack');
  await client.close();
  await aside.stop();

  // The server comes back where the pages expect it; they reconnect by themselves.
  server = await startHearth({ port, dataDir });
  for (const page of [alice, bob]) {
    await waitOpen(page, 30000);
    for (const text of ['before the restart', 'me too', 'posted during the outage', 'typed while offline']) {
      await messages(page, text).first().waitFor();
    }
  }
  await alice.locator('.pending').waitFor({ state: 'detached' });

  // Live again in both directions.
  await send(bob, 'back online');
  await messages(alice, 'back online').waitFor();
  await alice.waitForTimeout(300);

  for (const page of [alice, bob]) {
    for (const text of ['before the restart', 'me too', 'posted during the outage', 'typed while offline', 'back online']) {
      assert.equal(await messages(page, text).count(), 1, `${text} once`);
    }
    const { rows, unique } = await countAll(page);
    assert.equal(rows, unique, 'no item is shown twice');
    await page.locator('.offline-banner').waitFor({ state: 'hidden' });
    await assertClean(page);
  }
  // Carol's join is there too, exactly once.
  assert.equal(await alice.locator('.system-join', { hasText: `${carolName} joined` }).count(), 1);
});
