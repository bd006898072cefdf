// The server restarts mid-conversation. Both pages notice, reconnect by themselves and resume
// with `since`: a message posted while they were away (by a third client over the socket)
// shows exactly once, and so does a message typed on a page while it was offline.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startHearth, register, Client } from './lib/hearth.js';
import {
  launch, openPage, assertClean, signUpQuietly, createRoom, send, messages, waitOpen, username, snap,
} from './lib/ui.js';

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

  // The server goes down (SIGTERM: sockets close with 1001). Both pages say so.
  await server.stop();
  for (const page of [alice, bob]) {
    await page.waitForFunction(() => ['waiting', 'reconnecting'].includes(document.body.dataset.conn));
    await page.locator('.offline-banner').waitFor();
  }
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
