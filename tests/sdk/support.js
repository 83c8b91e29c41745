// support.js — start a promptd of our own for the SDK test: a temp directory,
// a free port (the server picks it: --listen 127.0.0.1:0, and prints it), an
// admin API key we choose, rate limits off (the test makes many calls), and
// a second organization's key for the "another organization's ids" checks.
//
// Models: the built-in echo model is the default. An "openai" provider is
// configured too, pointing at a local socket that accepts and never answers:
// a run on "openai/<anything>" stays in flight until cancelled (what the
// cancel test needs), and nothing leaves this machine.
//
// PROMPTD_BIN names the binary (`make test` sets it; default: the build in
// this checkout). Under `make test SAN=1` the binary is built with sanitizers
// and ASAN_OPTIONS etc. come from the environment, which we pass on.

import { spawn, execFileSync } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';

const here = dirname(fileURLToPath(import.meta.url));
export const PROMPTD_BIN = process.env.PROMPTD_BIN || resolve(here, '../../build/promptd');

function key() {
  return 'sdk_' + randomBytes(24).toString('hex');
}

// A TCP server that takes connections and says nothing (closed by stop()).
async function silentUpstream() {
  const sockets = new Set();
  const srv = createServer((sock) => {
    sockets.add(sock);
    sock.on('error', () => {});
    sock.on('close', () => sockets.delete(sock));
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${srv.address().port}/v1`,
    close() {
      for (const s of sockets) s.destroy();
      srv.close();
    },
  };
}

export async function startPromptd() {
  const silent = await silentUpstream();
  try {
    return await launch(silent);
  } catch (err) {
    silent.close(); // nothing else may keep the test process alive
    throw err;
  }
}

async function launch(silent) {
  const dir = mkdtempSync(join(tmpdir(), 'promptd-sdk-'));
  const db = join(dir, 'promptd.db');
  const adminKey = key();
  const env = {
    ...process.env,
    PROMPTD_ADMIN_KEY: adminKey,
    PROMPTD_RATE_LIMIT_PER_MINUTE: '0',
    PROMPTD_RATE_LIMIT_PER_DAY: '0',
  };
  // no real provider from the caller's shell: echo answers, "openai" never does
  for (const name of Object.keys(env)) {
    if (name.startsWith('OPENAI_') || name.startsWith('ANTHROPIC_') || name === 'PROMPTD_CONFIG') delete env[name];
  }
  env.PROMPTD_DEFAULT_MODEL = 'echo';
  env.OPENAI_API_KEY = 'sk-silent-local';
  env.OPENAI_BASE_URL = silent.url;
  const child = spawn(PROMPTD_BIN, ['serve', '--listen', '127.0.0.1:0', '--db', db], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  const port = await new Promise((resolvePort, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`promptd did not start in 60 s:\n${log}`));
    }, 60000);
    const onData = (chunk) => {
      log += chunk.toString();
      const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(log);
      if (m) {
        clearTimeout(timer);
        resolvePort(Number(m[1]));
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`promptd exited (${code ?? signal}) before listening:\n${log}`));
    });
  });
  child.removeAllListeners('exit');
  child.stdout.on('data', (c) => (log += c.toString()));
  child.stderr.on('data', (c) => (log += c.toString()));
  const exited = new Promise((r) => child.on('exit', (code, signal) => r({ code, signal })));

  let otherKey;
  try {
    otherKey = execFileSync(PROMPTD_BIN, ['keys', 'create', '--org', 'sdk-other-org', '--db', db], { env })
      .toString()
      .trim()
      .split(/\s+/)[0];
  } catch (err) {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }

  return {
    baseUrl: `http://127.0.0.1:${port}`,
    adminKey,
    otherKey,
    dir,
    log: () => log,
    async stop() {
      child.kill('SIGTERM');
      const { code, signal } = await exited;
      silent.close();
      rmSync(dir, { recursive: true, force: true });
      // a clean shutdown exits 0; 86 is a sanitizer report (make test SAN=1)
      if (code !== 0) throw new Error(`promptd exited with ${code ?? signal}:\n${log}`);
    },
  };
}

// A plain request (for what the SDK does not cover: finding the admin user's id).
export async function raw(server, key, method, path, body) {
  const res = await fetch(server.baseUrl + path, {
    method,
    headers: { AppId: key, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}
