// The real hearth binary (built by cargo) on 127.0.0.1, a temporary data directory, and a
// WebSocket client for the parts a browser does not play (a third user, seeding history).
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const BIN = process.env.HEARTH_BIN
  || path.join(process.env.CARGO_TARGET_DIR ? path.resolve(repo, process.env.CARGO_TARGET_DIR) : path.join(repo, 'target'), 'debug', 'hearth');
export const PASSWORD = 'correct horse battery';

/**
 * Starts hearth on `port` (0: any free one) with `dataDir` (default: a new temporary one) and
 * resolves once its "hearth is serving on URL" line is out.
 */
export async function startHearth({ port = 0, dataDir, env = {} } = {}) {
  if (!existsSync(BIN)) throw new Error(`${BIN} is missing: run cargo build first`);
  const dir = dataDir || mkdtempSync(path.join(os.tmpdir(), 'hearth-browser-'));
  const cwd = mkdtempSync(path.join(os.tmpdir(), 'hearth-cwd-'));
  const childEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('HEARTH_')));
  const child = spawn(BIN, ['serve', '--bind', `127.0.0.1:${port}`, '--data-dir', path.join(dir, 'data')], {
    cwd, env: { ...childEnv, NO_COLOR: '1', HEARTH_LOG: 'warn,hearth::app=info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs = [];
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`hearth did not start:\n${logs.join('\n')}`)), 20000);
    const onLine = (line) => {
      logs.push(line);
      const match = line.match(/hearth is serving on (\S+)/);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    };
    readline.createInterface({ input: child.stdout }).on('line', onLine);
    readline.createInterface({ input: child.stderr }).on('line', onLine);
    exited.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`hearth exited with ${code} before serving:\n${logs.join('\n')}`));
    });
  });
  const server = {
    url,
    port: Number(new URL(url).port),
    dataDir: dir,
    logs,
    /** SIGTERM, and wait for the clean exit (status 0). */
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      child.kill('SIGTERM');
      const result = await exited;
      if (result.code !== 0) throw new Error(`hearth exited with ${JSON.stringify(result)}:\n${logs.join('\n')}`);
      return result;
    },
    /** Stops and removes the data directory. */
    async dispose() {
      try {
        await server.stop();
      } finally {
        rmSync(dir, { recursive: true, force: true });
        rmSync(cwd, { recursive: true, force: true });
      }
    },
  };
  return server;
}

/** POST/GET JSON with an optional bearer token. */
export async function http(base, method, pathname, body, token) {
  const headers = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(base + pathname, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) throw new Error(`${method} ${pathname}: ${response.status} ${text}`);
  return data;
}

export async function register(base, username) {
  return http(base, 'POST', '/api/auth/register', { username, password: PASSWORD });
}

/** A socket client speaking the protocol with a bearer token. */
export class Client {
  static async connect(base, token) {
    const client = new Client();
    client.ws = new WebSocket(`${base.replace(/^http/, 'ws')}/ws`, { headers: { authorization: `Bearer ${token}` } });
    client.frames = [];
    client.waiting = new Map();
    client.seq = 0;
    client.ws.on('message', (data) => {
      const frame = JSON.parse(String(data));
      client.frames.push(frame);
      const pending = frame.ref && client.waiting.get(frame.ref);
      if (pending) {
        client.waiting.delete(frame.ref);
        if (frame.type === 'error') pending.reject(new Error(`${frame.code}: ${frame.message}`));
        else pending.resolve(frame);
      }
    });
    await new Promise((resolve, reject) => {
      client.ws.once('open', resolve);
      client.ws.once('error', reject);
    });
    return client;
  }

  request(frame) {
    const ref = `n${++this.seq}`;
    return new Promise((resolve, reject) => {
      this.waiting.set(ref, { resolve, reject });
      this.ws.send(JSON.stringify({ ...frame, ref }));
    });
  }

  join(room) {
    return this.request({ type: 'join', room });
  }

  send(room, text) {
    return this.request({ type: 'send', room, text });
  }

  close() {
    this.ws.close();
    return new Promise((resolve) => this.ws.once('close', resolve));
  }
}
