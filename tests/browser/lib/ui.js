// Page helpers: what a person does, in Playwright's words.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { launchOptions } from './browser.js';
import { PASSWORD } from './hearth.js';

export async function launch() {
  return chromium.launch(launchOptions());
}

/**
 * A fresh browser context (its own cookies and storage) and page, watched for page errors,
 * dialogs (an alert() would mean injected script ran) and CSP violations.
 */
export async function openPage(browser, options = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, ...options });
  context.setDefaultTimeout(10000);
  const page = await context.newPage();
  page.problems = [];
  page.dialogs = [];
  page.on('pageerror', (error) => page.problems.push(`pageerror: ${error.message}`));
  page.on('dialog', (dialog) => {
    page.dialogs.push(dialog.message());
    dialog.dismiss().catch(() => {});
  });
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    const text = msg.text();
    // The signed-out check and a restarting server are expected to fail loudly in the console.
    if (/401 \(Unauthorized\)|ERR_CONNECTION_REFUSED|WebSocket connection to .* failed|net::ERR_/.test(text)) return;
    page.problems.push(`console: ${text}`);
  });
  await context.addInitScript(() => {
    window.__cspViolations = [];
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`);
    });
  });
  return page;
}

/** Asserts the page saw no script error, no dialog and no CSP violation. */
export async function assertClean(page) {
  const csp = await page.evaluate(() => window.__cspViolations || []);
  assert.deepEqual([...page.problems, ...page.dialogs.map((d) => `dialog: ${d}`), ...csp.map((v) => `csp: ${v}`)], []);
}

/** Signs up with the form: the sign-in page switched to sign-up, or an invite's sign-up page as is. */
export async function signUpWithForm(page, username) {
  await page.locator('.auth-form').waitFor();
  const toSignUp = page.getByRole('button', { name: 'Create an account' });
  if (await toSignUp.count()) await toSignUp.click();
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Create account' }).click();
}

/** Registers through the API inside the page's context, so the page gets the cookie. */
export async function signUpQuietly(page, base, username) {
  const response = await page.context().request.post(`${base}/api/auth/register`, {
    data: { username, password: PASSWORD },
  });
  assert.equal(response.status(), 201, await response.text());
  return response.json();
}

/**
 * Creates a room with the sidebar's button; returns its code from the share dialog, after
 * `inDialog(dialog)` if given.
 */
export async function createRoom(page, name, inDialog) {
  await page.getByRole('button', { name: 'New room' }).click();
  await page.getByLabel('Name', { exact: true }).fill(name);
  await page.getByRole('button', { name: 'Create room' }).click();
  const code = (await page.locator('.share-code').textContent()).trim();
  assert.match(code, /^[A-HJ-NP-Z2-9]{6}$/);
  if (inDialog) await inDialog(page.getByRole('dialog'));
  await page.getByRole('button', { name: 'Done' }).click();
  await page.locator('.room-name', { hasText: name }).waitFor();
  return code;
}

export async function send(page, text) {
  const box = page.locator('#composer');
  await box.fill(text);
  await box.press('Enter');
}

/** The texts of messages that read exactly `text`. */
export function messages(page, text) {
  return page.locator('.log .msg .text').filter({ hasText: new RegExp(`^${escapeRe(text)}$`) });
}

/** The message rows (text, reactions, tools) whose text is exactly `text`. */
export function messageRow(page, text) {
  return page.locator('.log .msg').filter({
    has: page.locator('.text').filter({ hasText: new RegExp(`^${escapeRe(text)}$`) }),
  });
}

export async function waitOpen(page, timeout = 20000) {
  await page.waitForFunction(() => document.body.dataset.conn === 'open', null, { timeout });
}

export function escapeRe(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Every console message and failed or refused request of a page from now on (openPage lets
 * the expected ones through; this sees all).
 */
export function watchNoise(page) {
  const noise = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error' || msg.type() === 'warning') noise.push(`console ${msg.type()}: ${msg.text()}`);
  });
  page.on('response', (response) => {
    if (response.status() >= 400) noise.push(`${response.status()} ${response.url()}`);
  });
  page.on('requestfailed', (request) => noise.push(`failed ${request.url()}: ${request.failure()?.errorText}`));
  return noise;
}

/** The tools bubble of a message row is shown (opacity) or not. */
export async function toolsShown(row) {
  return row.locator('.msg-tools').evaluate((el) => getComputedStyle(el).opacity === '1');
}

/** Whether two elements' boxes overlap on screen. */
export async function overlap(a, b) {
  const [x, y] = [await a.boundingBox(), await b.boundingBox()];
  return x.x < y.x + y.width && y.x < x.x + x.width && x.y < y.y + y.height && y.y < x.y + x.height;
}

/** A distinct username for this run. */
export function username(prefix) {
  return `${prefix}${Math.random().toString(36).slice(2, 7)}`;
}

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
/** Where screenshots go: target/screenshots/ (not committed; CI keeps target/ as artifacts). */
export const SCREENSHOTS = path.join(
  process.env.CARGO_TARGET_DIR ? path.resolve(repo, process.env.CARGO_TARGET_DIR) : path.join(repo, 'target'), 'screenshots');

/** Saves a screenshot of the page as target/screenshots/NAME.png for people to look at. */
export async function snap(page, name) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.waitForTimeout(200);
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`) });
}
