// Changing what was said, seen from both sides: a reply quotes and jumps to its original, an
// edit (arrow up in an empty composer) and a delete (after asking) reach the other person live.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startHearth } from './lib/hearth.js';
import {
  launch, openPage, assertClean, signUpQuietly, createRoom, send, messages, messageRow, username, snap,
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

/** Shows a row's tools (a tap, as on a phone) and clicks the one named `name`. */
async function tool(row, name) {
  await row.locator('.text').click();
  await row.getByRole('button', { name, exact: true }).click();
}

test('replies jump to the original; edits and deletes are seen live', async () => {
  const [annName, benName] = [username('ann'), username('ben')];
  const ann = await openPage(browser);
  const ben = await openPage(browser, { viewport: { width: 390, height: 760 }, hasTouch: true });
  await signUpQuietly(ann, server.url, annName);
  await signUpQuietly(ben, server.url, benName);
  await ann.goto(server.url);
  const code = await createRoom(ann, 'Edits');
  await ben.goto(`${server.url}/r/${code}`);
  await ben.locator('.room-name', { hasText: 'Edits' }).waitFor();

  await send(ann, 'Lunch at noon?');
  for (let i = 0; i < 25; i += 1) await send(ann, `filler ${i}`);
  await messages(ben, 'filler 24').waitFor();

  // Ben answers the first message from its tools; the reply quotes it, on both pages.
  await tool(messageRow(ben, 'Lunch at noon?'), 'Reply');
  await ben.locator('.composer-mode', { hasText: 'Replying to' }).waitFor();
  await snap(ben, 'edits-reply-bar-phone');
  await send(ben, 'Yes, see you there');
  for (const page of [ann, ben]) {
    const reply = messageRow(page, 'Yes, see you there');
    await reply.locator('.quote', { hasText: 'Lunch at noon?' }).waitFor();
  }
  assert.ok(await ben.locator('.composer-mode').isHidden(), 'the reply bar goes once sent');

  // Ann clicks the quote: the original scrolls into view, marked.
  const original = messageRow(ann, 'Lunch at noon?');
  await messageRow(ann, 'Yes, see you there').locator('.quote').click();
  await original.and(ann.locator('.msg-flash')).waitFor();
  await ann.waitForFunction(() => {
    const row = document.querySelector('.msg.msg-flash');
    const box = row.getBoundingClientRect();
    const view = document.querySelector('.scroller').getBoundingClientRect();
    return box.top >= view.top && box.bottom <= view.bottom;
  });

  // Ann edits her last message with arrow up; Ben sees the new text marked as edited.
  await send(ann, 'Meet at the gate');
  await messages(ben, 'Meet at the gate').waitFor();
  const box = ann.locator('#composer');
  await box.focus();
  await box.press('ArrowUp');
  await ann.locator('.composer-mode', { hasText: 'Editing your message' }).waitFor();
  assert.equal(await box.inputValue(), 'Meet at the gate');
  await box.fill('Meet at the north gate');
  await snap(ann, 'edits-editing-desktop');
  await box.press('Enter');
  for (const page of [ann, ben]) {
    const row = page.locator('.log .msg', { hasText: 'Meet at the north gate' });
    await row.locator('.edited').waitFor();
  }
  assert.equal(await messages(ben, 'Meet at the gate').count(), 0);
  assert.equal(await box.inputValue(), '', 'the composer is empty after the edit');

  // Ben cannot edit Ann's message; he can delete only his own. He deletes his reply, after
  // confirming; Ann sees the tombstone in its place.
  const annsRow = ben.locator('.log .msg', { hasText: 'Meet at the north gate' });
  await annsRow.locator('.text').click();
  assert.equal(await annsRow.getByRole('button', { name: 'Edit', exact: true }).count(), 0);
  assert.equal(await annsRow.getByRole('button', { name: 'Delete', exact: true }).count(), 0);
  await tool(messageRow(ben, 'Yes, see you there'), 'Delete');
  const dialog = ben.getByRole('dialog');
  await dialog.getByText('Delete this message?').waitFor();
  await dialog.getByRole('button', { name: 'Delete', exact: true }).click();
  for (const page of [ann, ben]) {
    await page.locator('.msg-deleted', { hasText: 'This message was deleted.' }).waitFor();
    assert.equal(await messages(page, 'Yes, see you there').count(), 0);
  }

  await snap(ben, 'edits-tombstone-phone');

  // The host deletes others' messages too.
  const hostRow = messageRow(ann, 'filler 3');
  await tool(hostRow, 'Delete');
  await ann.getByRole('dialog').getByRole('button', { name: 'Delete', exact: true }).click();
  await ben.locator('.msg-deleted').nth(1).waitFor();
  assert.equal(await messages(ben, 'filler 3').count(), 0);

  await assertClean(ann);
  await assertClean(ben);
});
