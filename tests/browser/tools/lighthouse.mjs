// Lighthouse scores of the sign-in page and of a room with 300 messages (mobile, Lighthouse's
// default form factor and throttling): performance, accessibility and best practices, each run
// `runs` times, the median printed. A benchmark, not a test: nothing is asserted, and CI does
// not run it. Lighthouse is not a dependency of the tests; install it anywhere (12.2.3: 13
// needs a newer Node) and say where:
//
//   npm install --prefix /tmp/lh lighthouse@12.2.3
//   cargo build --release && (cd tests/browser && HEARTH_BIN=/abs/path/target/release/hearth \
//     LIGHTHOUSE=/tmp/lh/node_modules/.bin/lighthouse node tools/lighthouse.mjs [runs])
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { startHearth, register, http, Client } from '../lib/hearth.js';
import { CHROMIUM } from '../lib/browser.js';

const run = promisify(execFile);
const runs = Number(process.argv[2] || 3);
const LIGHTHOUSE = process.env.LIGHTHOUSE;
if (!LIGHTHOUSE) throw new Error('set LIGHTHOUSE to the lighthouse command (see the top of this file)');

/** One Lighthouse run of `url`: its category scores, 0 to 100. */
async function audit(url, headers) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'hearth-lighthouse-'));
  const out = path.join(dir, 'report.json');
  try {
    await run(LIGHTHOUSE, [
      url, '--quiet', '--output=json', `--output-path=${out}`,
      '--only-categories=performance,accessibility,best-practices',
      `--chrome-path=${CHROMIUM}`, '--chrome-flags=--headless --no-sandbox --disable-gpu',
      ...(headers ? [`--extra-headers=${JSON.stringify(headers)}`] : []),
    ], { env: { ...process.env, CHROME_PATH: CHROMIUM }, maxBuffer: 64 << 20 });
    const report = JSON.parse(readFileSync(out, 'utf8'));
    const failed = Object.values(report.audits)
      .filter((a) => a.score !== null && a.score < 1 && a.scoreDisplayMode === 'binary')
      .map((a) => a.id);
    return {
      performance: Math.round(report.categories.performance.score * 100),
      accessibility: Math.round(report.categories.accessibility.score * 100),
      'best-practices': Math.round(report.categories['best-practices'].score * 100),
      failed,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

const server = await startHearth({ env: { HEARTH_WS__RATE_PER_SEC: '0' } });
try {
  const account = await register(server.url, 'seeder');
  const { code } = (await http(server.url, 'POST', '/api/rooms', { name: 'Three hundred messages' }, account.token)).room;
  const client = await Client.connect(server.url, account.token);
  await client.join(code);
  for (let i = 0; i < 300; i += 100) {
    await Promise.all(Array.from({ length: 100 }, (_, j) => client.send(code,
      `Message ${i + j + 1}: ${'lorem ipsum dolor sit amet '.repeat(1 + ((i + j) % 4))}https://example.org/${i + j}`)));
  }
  await client.close();
  // The session as the browser holds it: the HttpOnly cookie.
  const cookie = { Cookie: `hearth_session=${account.token}` };
  const pages = [['sign-in', `${server.url}/`, null], ['room, 300 messages', `${server.url}/r/${code}`, cookie]];
  for (const [name, url, headers] of pages) {
    const results = [];
    for (let i = 0; i < runs; i++) results.push(await audit(url, headers));
    const line = ['performance', 'accessibility', 'best-practices']
      .map((category) => `${category} ${median(results.map((r) => r[category]))} (${results.map((r) => r[category]).join(', ')})`);
    console.log(`${name}: ${line.join('; ')}`);
    const failed = [...new Set(results.flatMap((r) => r.failed))];
    if (failed.length) console.log(`  failed audits: ${failed.join(', ')}`);
  }
} finally {
  await server.dispose();
}
