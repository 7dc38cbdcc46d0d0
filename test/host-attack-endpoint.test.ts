import { spawn } from 'node:child_process';
import { closeSync, fsyncSync, mkdtempSync, openSync, readFileSync, renameSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Guest } from 'wasm-hotpatch';
import { PatchStore, serveEndpoint, type Endpoint } from 'wasm-hotpatch/runtime';
import { appliedIds, baselineBytes, fixPatch, rolePatch } from './host-fixtures.js';

const fresh = () => mkdtempSync(join(tmpdir(), 'endpoint-attack-'));

/** One raw HTTP exchange; resolves with the status (0 when the connection was closed without one). */
function call(address: string, method: string, path: string, headers: Record<string, string> = {}, body?: Uint8Array): Promise<{ status: number; json: any }> {
  const target = address.startsWith('unix:') ? { socketPath: address.slice(5), path } : { host: '127.0.0.1', port: Number(new URL(address).port), path };
  return new Promise((resolve) => {
    const req = request({ ...target, method, headers, agent: false }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode!, json: text ? JSON.parse(text) : undefined }));
    });
    req.on('error', () => resolve({ status: 0, json: undefined }));
    req.end(body);
  });
}

/** Nothing lost: the level the store would restore is exactly the guest's applied level. */
function agree(store: PatchStore, guest: Guest): void {
  expect((store.level(guest.manifest.id)?.applied ?? []).map((a) => a.id).sort()).toEqual(appliedIds(guest.status()).sort());
}

/** A file system that fails like a full disk (or no file descriptors) while `failing.code` is set. */
function failingFs(failing: { code?: string }) {
  const fail = () => {
    if (failing.code) throw Object.assign(new Error(`${failing.code}: simulated`), { code: failing.code });
  };
  return {
    openSync: ((...args: Parameters<typeof openSync>) => (failing.code === 'EMFILE' ? fail() : undefined, openSync(...args))) as typeof openSync,
    writeSync: (fd: number, data: Uint8Array) => (failing.code === 'ENOSPC' ? fail() : undefined, writeSync(fd, data)),
    fsyncSync,
    closeSync,
    renameSync,
  };
}

const auth = { authorization: 'Bearer sesame' };

describe('attacks on the control endpoint', () => {
  it('a full disk or no file descriptors while recording: the apply is undone and the answer says so; a cumulative one answers "applied, not recorded"', async () => {
    const failing: { code?: string } = {};
    const store = PatchStore.open(fresh(), { fs: failingFs(failing) });
    const guest = await Guest.instantiate(baselineBytes, {}, { policy: { requireSignature: false } });
    const server = await serveEndpoint(guest.async, { port: 0, token: 'sesame', store, log: () => {} });
    try {
      expect((await call(server.address, 'POST', '/patches', auth, fixPatch)).status).toBe(201);
      for (const code of ['ENOSPC', 'EMFILE']) {
        failing.code = code;
        const refused = await call(server.address, 'POST', '/patches/fix-name-overflow/apply', auth);
        expect(refused).toMatchObject({ status: 500, json: { error: { code: 'E_IO', message: expect.stringMatching(new RegExp(`nothing changed: .*${code}.*apply was undone`)) } } });
        expect(appliedIds(guest.status())).toEqual([]);
        agree(store, guest);
      }
      failing.code = undefined;
      expect((await call(server.address, 'POST', '/patches/fix-name-overflow/apply', auth)).json).toMatchObject({ state: 'applied', recorded: true });
      agree(store, guest);
      // Revert while the disk is full: undone too (the patch is applied again, as recorded).
      failing.code = 'ENOSPC';
      expect((await call(server.address, 'POST', '/patches/fix-name-overflow/revert', auth)).status).toBe(500);
      agree(store, guest);
      // A cumulative patch cannot be undone exactly (its revert does not bring back what it replaced): said plainly.
      failing.code = undefined;
      expect((await call(server.address, 'POST', '/patches', auth, await rolePatch('c5', 5, { cumulative: true }))).status).toBe(201);
      failing.code = 'ENOSPC';
      const partial = await call(server.address, 'POST', '/patches/c5/apply', auth);
      expect(partial).toMatchObject({ status: 200, json: { id: 'c5', state: 'applied', recorded: false, code: 'E_APPLIED_NOT_RECORDED', message: expect.stringMatching(/^applied, not recorded: .*ENOSPC/) } });
      // The next record that succeeds catches up: it is read from the guest.
      failing.code = undefined;
      await store.record(guest.async);
      agree(store, guest);
    } finally {
      await server.close();
      store.close();
    }
  });

  it('an unauthenticated flood spends no one\'s budget: the operator gets through, the log stays short and holds no token', async () => {
    const guest = await Guest.instantiate(baselineBytes, {}, { policy: { requireSignature: false } });
    const logged: string[] = [];
    const server = await serveEndpoint(guest.async, { port: 0, token: 'sesame', rate: 20, log: (l) => logged.push(l) });
    try {
      const flood = Array.from({ length: 300 }, (_, i) => call(server.address, 'GET', `/status?token=sesame${i}`, { authorization: `Bearer guess${i}` }));
      const operator = [];
      for (let i = 0; i < 10; i++) operator.push((await call(server.address, 'GET', '/status', auth)).status);
      const flooded = await Promise.all(flood);
      expect(operator).toEqual(Array(10).fill(200));
      expect(new Set(flooded.map((r) => r.status))).toEqual(new Set([401]));
      expect(logged.length).toBeLessThan(60);
      expect(logged.join('\n')).not.toMatch(/sesame|guess/);
      // An authenticated peer over its limit is refused (429); that is its own budget.
      const burst = await Promise.all(Array.from({ length: 40 }, () => call(server.address, 'GET', '/status', auth)));
      expect(burst.map((r) => r.status)).toContain(429);
    } finally {
      await server.close();
    }
  });

  it('silent, slow and surplus connections are capped (the oldest idle one makes room) and reaped; malformed input is a 400; the log escapes control characters', async () => {
    const guest = await Guest.instantiate(baselineBytes, {}, { policy: { requireSignature: false } });
    const logged: string[] = [];
    const server: Endpoint = await serveEndpoint(guest.async, { port: 0, token: 'sesame', maxConnections: 8, timeouts: { headers: 300, idle: 300 }, log: (l) => logged.push(l) });
    try {
      const port = Number(new URL(server.address).port);
      const sockets: Socket[] = [];
      const closed: Promise<unknown>[] = [];
      for (let i = 0; i < 20; i++) {
        const s = connect(port, '127.0.0.1');
        s.on('error', () => {});
        // Half of them start a request and never finish its headers (slowloris).
        if (i % 2) s.write('GET /status HTTP/1.1\r\nHost: x\r\n');
        closed.push(new Promise((r) => s.once('close', r)));
        sockets.push(s);
      }
      await Promise.all(sockets.map((s) => new Promise((r) => (s.connecting ? s.once('connect', r).once('close', r) : r(undefined)))));
      expect(server.connections).toBeLessThanOrEqual(8);
      // The operator gets in while they are held: the oldest idle one makes room.
      expect((await call(server.address, 'GET', '/status', auth)).status).toBe(200);
      // Every one of them is closed by the host (bounded by the test timeout).
      await Promise.all(closed);
      expect((await call(server.address, 'GET', '/status', auth)).status).toBe(200);
      expect((await call(server.address, 'POST', '/patches/%E0%A4%A/apply', auth)).json).toMatchObject({ error: { code: 'E_USAGE' } });
      expect((await call(server.address, 'POST', '/patches/%E0%A4%A/apply', auth)).status).toBe(400);
      // Control characters arrive %-escaped in a patch id, and come back in the guest's error message.
      expect((await call(server.address, 'POST', '/patches/x%1b%5b31mFAKE%0a%0dforged/apply', auth)).status).toBe(404);
      const line = logged.find((l) => l.includes('FAKE'))!;
      expect(logged.filter((l) => l.startsWith('forged'))).toEqual([]);
      expect(line).toContain('\\x1b');
      expect(line).not.toMatch(/[\u0000-\u001f]/);
    } finally {
      await server.close();
    }
  });

  it('a live socket is never taken over; a stale one is reused; a file that is not a socket is never deleted; the socket is owner-only', async () => {
    const dir = fresh();
    const socket = join(dir, 'host.sock');
    const guest = await Guest.instantiate(baselineBytes, {}, { policy: { requireSignature: false } });
    const first = await serveEndpoint(guest.async, { socket, log: () => {} });
    try {
      expect(statSync(socket).mode & 0o777).toBe(0o600);
      await expect(serveEndpoint(guest.async, { socket, log: () => {} })).rejects.toMatchObject({ code: 'E_ENDPOINT_IN_USE', message: expect.stringContaining('already listening') });
      expect((await call(first.address, 'GET', '/status')).status).toBe(200);
    } finally {
      await first.close();
    }
    // A socket left by a host that was killed: nothing listens, so it is reused.
    const stale = join(dir, 'stale.sock');
    const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(stale)}, () => console.log('up'))`]);
    await new Promise((r) => child.stdout.once('data', r));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    expect(statSync(stale).isSocket()).toBe(true);
    const second = await serveEndpoint(guest.async, { socket: stale, log: () => {} });
    expect((await call(second.address, 'GET', '/status')).status).toBe(200);
    await second.close();
    const file = join(dir, 'notes.txt');
    writeFileSync(file, 'keep me');
    await expect(serveEndpoint(guest.async, { socket: file, log: () => {} })).rejects.toMatchObject({ code: 'E_ENDPOINT_IN_USE', message: expect.stringContaining('not a socket') });
    expect(readFileSync(file, 'utf8')).toBe('keep me');
  });
});
