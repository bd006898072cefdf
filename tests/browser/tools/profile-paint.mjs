// Where the cold first paint of the room view goes: the same room as first-paint.mjs (1,000
// messages), opened with an empty cache while the DevTools protocol records the network (every
// request in DevTools' phases, the socket's handshake and frames). Prints one timeline per run,
// relative to navigation start, then the median of each step. Not a test.
//
//   --trace  also records a trace (written to /tmp/hearth-paint-trace-RUN.json, for
//            chrome://tracing or Perfetto) and prints the page's main-thread time by kind and
//            its tasks over 3 ms; TRACE_CATS=a,b,c picks the categories
//   --cpu    also samples the page's JavaScript and prints the self time of each function
//   SETTLE_MS=N waits N ms between the member's join and opening the page
//
// The tracing and the sampling slow the page down: compare runs made the same way.
//
//   cargo build --release && (cd tests/browser && HEARTH_BIN=/abs/path/target/release/hearth node tools/profile-paint.mjs [runs] [--trace] [--cpu])
import { writeFileSync } from 'node:fs';
import { startHearth, register, http, Client } from '../lib/hearth.js';
import { launch, signUpQuietly } from '../lib/ui.js';

const runs = Number(process.argv[2] || 5);
const withTrace = process.argv.includes('--trace');
const withCpu = process.argv.includes('--cpu');
const server = await startHearth({ env: { HEARTH_WS__RATE_PER_SEC: '0' } });
const browser = await launch();
const rows = [];
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

  for (let run = 0; run < runs; run++) {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    const reader = await signUpQuietly(page, server.url, `reader${run}`);
    const member = await Client.connect(server.url, reader.token);
    await member.join(code);
    await member.close();
    if (process.env.SETTLE_MS) await new Promise((r) => setTimeout(r, Number(process.env.SETTLE_MS)));

    const cdp = await context.newCDPSession(page);
    await cdp.send('Network.enable');
    const net = [];
    let origin = null;
    const requests = new Map();
    cdp.on('Network.requestWillBeSent', (e) => {
      if (origin === null && e.type === 'Document') origin = e.timestamp;
      requests.set(e.requestId, { url: e.request.url.replace(server.url, ''), sent: e.timestamp });
    });
    cdp.on('Network.responseReceived', (e) => {
      const r = requests.get(e.requestId);
      if (r) {
        r.response = e.timestamp;
        r.timing = e.response.timing;
      }
    });
    cdp.on('Network.loadingFinished', (e) => {
      const r = requests.get(e.requestId);
      if (r) r.done = e.timestamp;
    });
    cdp.on('Network.webSocketWillSendHandshakeRequest', (e) => net.push({ what: 'ws handshake sent', t: e.timestamp }));
    cdp.on('Network.webSocketHandshakeResponseReceived', (e) => net.push({ what: 'ws handshake answered', t: e.timestamp }));
    cdp.on('Network.webSocketFrameSent', (e) => net.push({ what: `ws sent ${e.response.payloadData.slice(0, 40)}`, t: e.timestamp }));
    cdp.on('Network.webSocketFrameReceived', (e) => {
      const data = e.response.payloadData;
      net.push({ what: `ws got ${data.slice(0, 24)}… (${data.length} bytes)`, t: e.timestamp });
    });

    if (withTrace) {
      await browser.startTracing(page, {
        categories: (process.env.TRACE_CATS || 'devtools.timeline,v8.execute,blink.user_timing,loading,disabled-by-default-devtools.timeline').split(','),
      });
    }
    if (withCpu) {
      await cdp.send('Profiler.enable');
      await cdp.send('Profiler.setSamplingInterval', { interval: 100 });
      await cdp.send('Profiler.start');
    }
    await page.goto(`${server.url}/r/${code}`);
    // Left alone while it loads (see first-paint.mjs), then asked.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await page.waitForFunction(() => performance.getEntriesByName('hearth:room-painted').length > 0, null, { polling: 100 });
    const timing = await page.evaluate(() => new Promise((resolve) => {
      new PerformanceObserver((list, observer) => {
        observer.disconnect();
        const entry = list.getEntries().find((e) => e.identifier === 'hearth-room');
        const nav = performance.getEntriesByType('navigation')[0];
        resolve({
          element: entry ? entry.renderTime || entry.loadTime : null,
          marks: performance.getEntriesByType('mark').map((m) => [m.name, m.startTime]),
          fcp: (performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime,
          nav: { responseStart: nav.responseStart, responseEnd: nav.responseEnd, domInteractive: nav.domInteractive,
            domContentLoaded: nav.domContentLoadedEventEnd, load: nav.loadEventEnd },
          resources: performance.getEntriesByType('resource').map((r) => ({
            name: r.name.replace(location.origin, ''), start: r.startTime, responseStart: r.responseStart, end: r.responseEnd,
          })),
        });
      }).observe({ type: 'element', buffered: true });
    }));
    if (withCpu) {
      // Self time by function of the page's own scripts (and the engine's buckets), whole load.
      const { profile } = await cdp.send('Profiler.stop');
      const byId = new Map(profile.nodes.map((n) => [n.id, n]));
      const self = {};
      profile.samples.forEach((id, i) => {
        const { callFrame: f } = byId.get(id);
        const key = f.url ? `${f.functionName || '(anonymous)'} ${f.url.replace(server.url, '')}:${f.lineNumber + 1}` : f.functionName;
        self[key] = (self[key] || 0) + (profile.timeDeltas[i] || 0) / 1000;
      });
      console.log('  self time (ms):');
      for (const [k, ms] of Object.entries(self).sort((a, b) => b[1] - a[1]).slice(0, 30)) console.log(`    ${ms.toFixed(1).padStart(7)}  ${k}`);
    }
    let trace = null;
    if (withTrace) {
      const buffer = await browser.stopTracing();
      trace = JSON.parse(buffer.toString());
      writeFileSync(`/tmp/hearth-paint-trace-${run + 1}.json`, buffer);
    }
    await context.close();

    const at = (t) => (t - origin) * 1000;
    const events = [];
    for (const [name, t] of timing.marks) events.push([t, `mark ${name}`]);
    events.push([timing.fcp, 'first contentful paint']);
    events.push([timing.element, 'NEWEST MESSAGE PAINTED (element timing)']);
    events.push([timing.nav.responseEnd, 'html received']);
    events.push([timing.nav.domInteractive, 'dom interactive']);
    events.push([timing.nav.domContentLoaded, 'DOMContentLoaded done']);
    for (const r of timing.resources) events.push([r.start, `req ${r.name} start (${(r.end - r.start).toFixed(1)} ms, ttfb ${(r.responseStart - r.start).toFixed(1)})`]);
    for (const n of net) events.push([at(n.t), n.what]);
    for (const r of requests.values()) {
      const t = r.timing;
      if (!t) continue;
      // DevTools' phases: queued in the browser, connecting, waiting for the server, receiving.
      events.push([at(r.sent), `  net ${r.url}: queued ${(at(t.requestTime) - at(r.sent) + t.sendStart - (t.connectEnd > 0 ? t.connectEnd - t.connectStart : 0)).toFixed(1)}`
        + `, connect ${(t.connectEnd > 0 ? t.connectEnd - t.connectStart : 0).toFixed(1)}, server ${(t.receiveHeadersEnd - t.sendEnd).toFixed(1)}`
        + `, body ${r.done ? ((r.done - t.requestTime) * 1000 - t.receiveHeadersEnd).toFixed(1) : '?'}`]);
    }
    events.sort((a, b) => a[0] - b[0]);
    console.log(`\n== run ${run + 1}`);
    for (const [t, what] of events) console.log(`${t.toFixed(1).padStart(8)}  ${what}`);

    const row = { painted: timing.element, fcp: timing.fcp, html: timing.nav.responseEnd, dcl: timing.nav.domContentLoaded };
    for (const [name, t] of timing.marks) row[name] = t;
    const wsSent = net.find((n) => n.what === 'ws handshake sent');
    const wsOpen = net.find((n) => n.what === 'ws handshake answered');
    const joined = net.find((n) => n.what.startsWith('ws got {"type":"joined"'));
    if (wsSent) row['ws handshake sent'] = at(wsSent.t);
    if (wsOpen) row['ws open'] = at(wsOpen.t);
    if (joined) row['joined received'] = at(joined.t);
    row['modules done'] = Math.max(...timing.resources.filter((r) => r.name.endsWith('.js')).map((r) => r.end));
    row['css done'] = Math.max(...timing.resources.filter((r) => r.name.endsWith('.css')).map((r) => r.end));

    if (trace) {
      // Main-thread time of the renderer by kind, from navigation start to the paint.
      const list = trace.traceEvents;
      const nav = list.find((e) => e.name === 'navigationStart' && e.args?.data?.isLoadingMainFrame);
      const main = nav ? { pid: nav.pid, tid: nav.tid } : null;
      if (main) {
        const t0 = nav.ts;
        const end = t0 + timing.element * 1000;
        const sums = {};
        for (const e of list) {
          if (e.pid !== main.pid || e.tid !== main.tid || e.ph !== 'X' || e.ts < t0 || e.ts > end) continue;
          sums[e.name] = (sums[e.name] || 0) + e.dur / 1000;
        }
        const top = Object.entries(sums).sort((a, b) => b[1] - a[1]).slice(0, 25);
        console.log('  main thread, nav start to paint (ms, nested events counted in their parents too):');
        for (const [name, ms] of top) console.log(`    ${ms.toFixed(1).padStart(7)}  ${name}`);
        // Long slices with their start time, to see what runs when.
        const slices = list.filter((e) => e.pid === main.pid && e.tid === main.tid && e.ph === 'X' && e.ts >= t0 && e.ts <= end
          && e.dur > 3000 && ['RunTask', 'ThreadControllerImpl::RunTask'].includes(e.name));
        console.log('  tasks over 3 ms:');
        for (const s of slices) {
          const inner = list.filter((e) => e.pid === main.pid && e.tid === main.tid && e.ph === 'X' && e.ts >= s.ts
            && e.ts + e.dur <= s.ts + s.dur && e !== s && e.dur > 1000 && !/RunTask/.test(e.name))
            .map((e) => `${e.name}${e.args?.data?.url ? `(${e.args.data.url.replace(server.url, '')})` : ''} ${(e.dur / 1000).toFixed(1)}`)
            .slice(0, 8);
          console.log(`    ${((s.ts - t0) / 1000).toFixed(1).padStart(7)} +${(s.dur / 1000).toFixed(1)}  ${inner.join(', ')}`);
        }
      }
    }
    rows.push(row);
  }
  const keys = Object.keys(rows[0]);
  console.log(`\nmedians over ${runs} runs (ms after navigation start):`);
  const med = (k) => {
    const v = rows.map((r) => r[k]).filter((x) => typeof x === 'number').sort((a, b) => a - b);
    return v.length ? v[Math.floor(v.length / 2)] : NaN;
  };
  for (const k of keys.sort((a, b) => med(a) - med(b))) console.log(`${med(k).toFixed(1).padStart(8)}  ${k}`);
} finally {
  await browser.close();
  await server.dispose();
}
