// Renders assets/icons/icon.svg to the PNG icons the web app manifest names, with the same
// headless Chromium the tests use, and writes them as small palette PNGs (the UI has a size
// budget). Run after changing the SVG: node tools/render-icons.mjs
import { chromium } from 'playwright-core';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import zlib from 'node:zlib';
import { launchOptions } from '../lib/browser.js';

const icons = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../assets/icons');
const svg = readFileSync(path.join(icons, 'icon.svg'), 'utf8');
// The maskable variant fills the square and keeps the flame inside the central safe zone.
const maskable = svg
  .replace('viewBox="0 0 64 64"', 'viewBox="-10 -10 84 84"')
  .replace('<rect x="2" y="2" width="60" height="60" rx="14"', '<rect x="-10" y="-10" width="84" height="84"');

const browser = await chromium.launch(launchOptions());
const page = await browser.newPage();
for (const [name, size, source] of [
  ['icon-192.png', 192, svg],
  ['icon-512.png', 512, svg],
  ['maskable-512.png', 512, maskable],
]) {
  const url = `data:image/svg+xml;base64,${Buffer.from(source).toString('base64')}`;
  const rgba = await page.evaluate(async ({ url, size }) => {
    const img = new Image(size, size);
    img.src = url;
    await img.decode();
    const canvas = new OffscreenCanvas(size, size);
    const ctx = canvas.getContext('2d');
    ctx.drawImage(img, 0, 0, size, size);
    return Array.from(ctx.getImageData(0, 0, size, size).data);
  }, { url, size });
  writeFileSync(path.join(icons, name), palettePng(size, Uint8Array.from(rgba)));
}
await browser.close();

/** An indexed-colour PNG: the 256 most common colours, every pixel mapped to the nearest. */
function palettePng(size, rgba) {
  const counts = new Map();
  for (let i = 0; i < rgba.length; i += 4) {
    const key = ((rgba[i] >> 2) << 18) | ((rgba[i + 1] >> 2) << 12) | ((rgba[i + 2] >> 2) << 6) | (rgba[i + 3] >> 2);
    counts.set(key, (counts.get(key) || 0) + 1);
  }
  const palette = [...counts.entries()].sort((a, b) => b[1] - a[1]).slice(0, 256).map(([key]) => [
    ((key >> 18) & 63) << 2, ((key >> 12) & 63) << 2, ((key >> 6) & 63) << 2, (key & 63) << 2,
  ].map((v) => v | (v >> 6)));
  const cache = new Map();
  const nearest = (r, g, b, a) => {
    const key = (r << 24 | g << 16 | b << 8 | a) >>> 0;
    if (cache.has(key)) return cache.get(key);
    let best = 0;
    let bestD = Infinity;
    palette.forEach(([pr, pg, pb, pa], i) => {
      const d = (pr - r) ** 2 + (pg - g) ** 2 + (pb - b) ** 2 + 2 * (pa - a) ** 2;
      if (d < bestD) { bestD = d; best = i; }
    });
    cache.set(key, best);
    return best;
  };
  const raw = Buffer.alloc((size + 1) * size);
  for (let y = 0; y < size; y++) {
    raw[y * (size + 1)] = 0;
    for (let x = 0; x < size; x++) {
      const i = (y * size + x) * 4;
      raw[y * (size + 1) + 1 + x] = nearest(rgba[i], rgba[i + 1], rgba[i + 2], rgba[i + 3]);
    }
  }
  const chunk = (type, data) => {
    const head = Buffer.alloc(8);
    head.writeUInt32BE(data.length, 0);
    head.write(type, 4, 'ascii');
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(zlib.crc32(Buffer.concat([head.subarray(4), data])) >>> 0, 0);
    return Buffer.concat([head, data, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0);
  ihdr.writeUInt32BE(size, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 3; // indexed colour
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('PLTE', Buffer.from(palette.flatMap(([r, g, b]) => [r, g, b]))),
    chunk('tRNS', Buffer.from(palette.map(([, , , a]) => a))),
    chunk('IDAT', zlib.deflateSync(raw, { level: 9 })),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}
