// The offline shell. With the server out of reach, a reload still opens the UI: the page and
// its files come from the cache this worker keeps, and so do who is signed in and the rooms
// (the last answers seen); the page itself keeps the last messages of the rooms it showed
// (core.js). Online, everything goes to the network first, so a new release shows at once
// and the cache only ever holds the latest copy.
const SHELL = 'hearth-shell';
const DATA = 'hearth-data';
const FILES = [
  '/', '/app.css', '/manifest.webmanifest', '/icons/icon.svg', '/icons/icon-192.png',
  '/js/early.js', '/js/main.js', '/js/core.js', '/js/room.js', '/js/markdown.js', '/js/dom.js', '/js/auth.js',
  '/js/notify.js', '/sounds/ping.wav',
];
// Answers kept for an offline start: GETs only, and never /api/me (a failing /api/me is how the
// page learns that the server is away or the session over).
const KEPT = new Set(['/api/session', '/api/rooms']);

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(SHELL).then((cache) => cache.addAll(FILES)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil(self.clients.claim());
});

self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (request.method !== 'GET') return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.mode === 'navigate') {
    // Every route of the UI is the same page.
    event.respondWith(networkFirst(request, SHELL, '/'));
  } else if (FILES.includes(url.pathname)) {
    event.respondWith(networkFirst(request, SHELL, url.pathname));
  } else if (KEPT.has(url.pathname)) {
    event.respondWith(networkFirst(request, DATA, url.pathname));
  }
  // Anything else is the browser's business, as if there were no worker.
});

/** The network's answer (kept if it is a good one), else the last one kept under `key`. */
async function networkFirst(request, cacheName, key) {
  try {
    const response = await fetch(request);
    if (response.ok) {
      const copy = response.clone();
      caches.open(cacheName).then((cache) => cache.put(key, copy)).catch(() => {});
    }
    return response;
  } catch (error) {
    const kept = await caches.match(key, { cacheName, ignoreVary: true });
    if (kept) return kept;
    throw error;
  }
}
