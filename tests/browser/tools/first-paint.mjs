// Measures the first paint of the room view with 1,000 messages of history: a room is seeded
// with 1,000 messages, then a fresh browser context opens /r/CODE (signed in) and reads the
// Performance API, relative to navigation start: the Element Timing entry of the newest message
// (the browser's own paint time), the "hearth:room-painted" mark (after the frame that draws the
// messages) and first-contentful-paint; then opens the room again in the same context (files
// cached, revalidated). Prints the runs, the medians and the 90th percentiles. Each run is a
// fresh browser context (empty cache) of a member of the room.
// Not a test: timings are not asserted anywhere.
//
//   cargo build --release && (cd tests/browser && HEARTH_BIN=/abs/path/target/release/hearth node tools/first-paint.mjs [runs])
//
// tools/profile-paint.mjs shows where the time goes.
import { startHearth, register, http, Client } from '../lib/hearth.js';
import { launch, signUpQuietly } from '../lib/ui.js';

const runs = Number(process.argv[2] || 7);

/**
 * Waits for the "hearth:room-painted" mark without touching the page while it loads: the
 * first evaluate injects Playwright's helper script (about 10 ms of the page's main thread) and
 * waitForFunction polls every animation frame, both in the middle of what is measured. So the
 * page is left alone for a second, which covers every run seen so far, then asked.
 */
async function painted(page) {
  await new Promise((resolve) => setTimeout(resolve, 1000));
  await page.waitForFunction(() => performance.getEntriesByName('hearth:room-painted').length > 0, null, { polling: 100 });
}

const server = await startHearth({ env: { HEARTH_WS__RATE_PER_SEC: '0' } });
const browser = await launch();
try {
  const account = await register(server.url, 'seeder');
  const { code } = (await http(server.url, 'POST', '/api/rooms', { name: 'A thousand messages' }, account.token)).room;
  const client = await Client.connect(server.url, account.token);
  await client.join(code);
  for (let i = 0; i < 1000; i += 100) {
    await Promise.all(Array.from({ length: 100 }, (_, j) => client.send(code,
      `Message ${i + j + 1}: ${'lorem ipsum dolor sit amet '.repeat(1 + ((i + j) % 4))}https://example.org/${i + j}`)));
  }
  await client.close();

  const results = [];
  for (let run = 0; run < runs; run++) {
    // A member coming back to the room (a first visit also makes the membership durable first).
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    const reader = await signUpQuietly(page, server.url, `reader${run}`);
    const member = await Client.connect(server.url, reader.token);
    await member.join(code);
    await member.close();
    await page.goto(`${server.url}/r/${code}`);
    await painted(page);
    const timing = await page.evaluate(() => new Promise((resolve) => {
      // The browser's own paint time of the newest message (Element Timing), when it reports it.
      new PerformanceObserver((list, observer) => {
        observer.disconnect();
        const entry = list.getEntries().find((e) => e.identifier === 'hearth-room');
        resolve({
          element: entry ? entry.renderTime || entry.loadTime : null,
          painted: performance.getEntriesByName('hearth:room-painted')[0].startTime,
          fcp: (performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime,
          rows: document.querySelectorAll('.log [data-seq]').length,
        });
      }).observe({ type: 'element', buffered: true });
    }));
    timing.first = timing.element ?? timing.painted;
    // The same page opened again: the browser now has the files (revalidated by ETag, 304s).
    await page.goto(`${server.url}/r/${code}`);
    await painted(page);
    timing.warm = await page.evaluate(() => new Promise((resolve) => {
      new PerformanceObserver((list, observer) => {
        observer.disconnect();
        const entry = list.getEntries().find((e) => e.identifier === 'hearth-room');
        resolve(entry ? entry.renderTime || entry.loadTime : performance.getEntriesByName('hearth:room-painted')[0].startTime);
      }).observe({ type: 'element', buffered: true });
    }));
    results.push(timing);
    console.log(`run ${run + 1}: messages painted at ${timing.first.toFixed(1)} ms cold, ${timing.warm.toFixed(1)} ms warm `
      + `(cold: frame mark ${timing.painted.toFixed(1)}, first contentful paint ${timing.fcp?.toFixed(1)} ms; ${timing.rows} items in the page)`);
    await context.close();
  }
  // Nearest rank: the median of 15 runs is the 8th, the 90th percentile the 14th.
  const rank = (key, p) => {
    const sorted = results.map((r) => r[key]).filter((v) => typeof v === 'number').sort((a, b) => a - b);
    return sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)].toFixed(1);
  };
  console.log(`room first paint over ${runs} runs, 1,000 messages of history (median / p90): `
    + `${rank('first', 0.5)} / ${rank('first', 0.9)} ms with an empty cache, `
    + `${rank('warm', 0.5)} / ${rank('warm', 0.9)} ms opened again; `
    + `first contentful paint ${rank('fcp', 0.5)} / ${rank('fcp', 0.9)} ms`);
} finally {
  await browser.close();
  await server.dispose();
}
