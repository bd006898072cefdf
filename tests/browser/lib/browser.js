// Launching Debian's Chromium (never a downloaded browser build).
import { existsSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const CHROMIUM = process.env.HEARTH_CHROMIUM || '/usr/bin/chromium';

export function launchOptions() {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`no browser at ${CHROMIUM}: run scripts/setup (apt-get install chromium)`);
  }
  return {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--disable-dev-shm-usage',
    ],
  };
}

/** A fresh, empty profile directory (Playwright also starts each browser on a new one). */
export function freshProfile() {
  return mkdtempSync(path.join(os.tmpdir(), 'hearth-chromium-'));
}
