import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { buildPatch } from 'wasm-hotpatch';
import { PatchStore, serveEndpoint, SupervisedGuest } from 'wasm-hotpatch/runtime';
import { appliedIds, baselineBytes, baselinePath, rolePatch } from './host-fixtures.js';

const run = promisify(execFile);
const cli = new URL('../dist/cli/main.js', import.meta.url).pathname;
const unsigned = { policy: { requireSignature: false } };
const fresh = () => mkdtempSync(join(tmpdir(), 'guest-attack-'));

function call(socketPath: string, method: string, path: string, body?: Uint8Array, timeout?: number): Promise<{ status: number; json: any }> {
  return new Promise((resolve) => {
    const req = request({ socketPath, path, method, agent: false, ...(timeout ? { timeout } : {}) }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode!, json: text ? JSON.parse(text) : undefined }));
    });
    req.on('error', () => resolve({ status: 0, json: undefined }));
    req.on('timeout', () => req.destroy());
    req.end(body);
  });
}

/** Whether the host's guest stopped answering: a status request queued behind the stuck one gets no answer within 300 ms (tried a bounded number of times). */
async function guestStuck(socket: string): Promise<boolean> {
  for (let attempt = 0; attempt < 20; attempt++) if ((await call(socket, 'GET', '/status', undefined, 300)).status === 0) return true;
  return false;
}

/** A patch of `set_name` (called by the running service) with the given body. */
async function setNamePatch(id: string, sequence: number, body: string): Promise<Uint8Array> {
  const { bytes } = await buildPatch({
    wat: `(module (func (export "set_name") (param i32 i32 i32) (result i32) ${body}))`,
    manifest: { id, sequence, targets: [{ function: 'set_name', export: 'set_name' }] },
    baseline: baselineBytes,
  });
  return bytes;
}

/** Nothing lost: the store's level is the guest's applied level. */
async function agree(store: PatchStore, guest: SupervisedGuest): Promise<void> {
  expect((store.level(guest.manifest.id)?.applied ?? []).map((a) => a.id).sort()).toEqual(appliedIds(await guest.status()).sort());
}

describe('whatever a signed patch does, the host keeps answering', () => {
  it('a pre-apply hook that loops (or grows memory and loops): the request times out with a typed error, status names the stuck guest, the guest comes back at its level', { timeout: 30_000 }, async () => {
    const dir = fresh();
    using store = PatchStore.open(join(dir, 'store'));
    const guest = await SupervisedGuest.start(baselineBytes, { ...unsigned, store, timeout: 1000 });
    const socket = join(dir, 'host.sock');
    const server = await serveEndpoint(guest, { socket, store, log: () => {} });
    try {
      expect((await call(socket, 'POST', '/patches', await rolePatch('good', 1))).status).toBe(201);
      expect((await call(socket, 'POST', '/patches/good/apply')).json).toMatchObject({ state: 'applied', recorded: true });
      for (const [id, hook] of [
        ['loops', '(loop $l (br $l)) (i32.const 0)'],
        ['grows', '(drop (memory.grow (i32.const 1024))) (loop $l (br $l)) (i32.const 0)'],
      ] as const) {
        expect((await call(socket, 'POST', '/patches', await rolePatch(id, 2, { preApply: hook }))).status).toBe(201);
        if (id === 'loops') {
          const answer = await call(socket, 'POST', `/patches/${id}/apply`);
          expect(answer).toMatchObject({ status: 504, json: { error: { code: 'E_TIMEOUT', message: expect.stringContaining(`apply of "${id}"`) } } });
        } else {
          // Straight to the guest, so the status below is asked before the restart can have finished (it waits on the worker's exit).
          await expect(guest.apply(id)).rejects.toMatchObject({ code: 'E_TIMEOUT' });
          await expect(guest.status()).rejects.toMatchObject({ code: 'E_GUEST_STUCK', message: expect.stringContaining(`stuck in apply of "${id}"`) });
        }
        await guest.settled();
        const status = await call(socket, 'GET', '/status');
        expect(status.json.host).toMatchObject({ restarts: id === 'loops' ? 1 : 2 });
        expect(appliedIds(status.json)).toEqual(['good']);
        await agree(store, guest);
      }
      // A hook that traps: refused with the reason, nothing changed.
      expect((await call(socket, 'POST', '/patches', await rolePatch('traps', 3, { preApply: '(unreachable)' }))).status).toBe(201);
      expect((await call(socket, 'POST', '/patches/traps/apply')).json).toMatchObject({ error: { code: 'E_HOOK_TRAPPED' } });
      await agree(store, guest);
    } finally {
      await server.close();
      await guest.close();
    }
  });

  it('a patched function that loops or traps in the running service: the endpoint answers, status says what the guest is doing', { timeout: 30_000 }, async () => {
    const dir = fresh();
    using store = PatchStore.open(join(dir, 'store'));
    const guest = await SupervisedGuest.start(baselineBytes, { ...unsigned, store, timeout: 2000, run: { export: 'run' } });
    const socket = join(dir, 'host.sock');
    const server = await serveEndpoint(guest, { socket, store, log: () => {} });
    try {
      expect((await call(socket, 'POST', '/patches', await setNamePatch('spin', 1, '(loop $l (br $l)) (i32.const 0)'))).status).toBe(201);
      expect((await call(socket, 'POST', '/patches/spin/apply')).json).toMatchObject({ state: 'applied', recorded: true });
      // The service now spins inside the patch: the host still reaches it (V8 interrupt checks at loop headers).
      for (let i = 0; i < 5; i++) expect((await call(socket, 'GET', '/status')).json.host).toMatchObject({ state: 'running', restarts: 0 });
      await agree(store, guest);
      expect((await call(socket, 'POST', '/patches', await setNamePatch('trap', 2, '(unreachable)'))).status).toBe(201);
      expect((await call(socket, 'POST', '/patches/spin/revert')).json).toMatchObject({ state: 'reverted', recorded: true });
      await agree(store, guest);
    } finally {
      await server.close();
      await guest.close();
    }
    // A patch that traps ends the service's export: reported as trapped, the endpoint keeps answering.
    const trapping = await SupervisedGuest.start(baselineBytes, { ...unsigned, timeout: 2000, run: { export: 'run' } });
    try {
      await trapping.load(await setNamePatch('trap', 2, '(unreachable)'));
      await trapping.apply('trap');
      await new Promise((r) => trapping.worker.addEventListener('trapped', r, { once: true }));
      expect((await trapping.status()).host.state).toBe('trapped');
    } finally {
      await trapping.close();
    }
  });

  it('SIGTERM stops a host whose guest is stuck in a hook', { timeout: 30_000 }, async () => {
    const dir = fresh();
    const socket = join(dir, 'host.sock');
    const host = spawn(process.execPath, [cli, 'serve', baselinePath, '--socket', socket, '--allow-unsigned', '--timeout', '60000', '--store', join(dir, 'store')]);
    let err = '';
    host.stderr.on('data', (d) => (err += d));
    await new Promise((r) => host.stdout.once('data', r));
    expect((await call(socket, 'POST', '/patches', await rolePatch('loops', 1, { preApply: '(loop $l (br $l)) (i32.const 0)' }))).status).toBe(201);
    const hanging = call(socket, 'POST', '/patches/loops/apply');
    const exited = new Promise<number | null>((r) => host.once('exit', r));
    expect(await guestStuck(socket)).toBe(true);
    const t0 = performance.now();
    host.kill('SIGTERM');
    expect(await exited).toBe(0);
    if (process.env.HOST_FIGURES) console.log(`SIGTERM to exit, guest stuck: ${(performance.now() - t0).toFixed(0)} ms`);
    expect((await hanging).status).toBe(0); // the connection was closed, not answered
    expect(existsSync(socket)).toBe(false);
    expect(existsSync(join(dir, 'store', 'lock'))).toBe(false);
    expect(err).not.toMatch(/Error/);
  });

  it('keygen refuses to overwrite keys without --force', async () => {
    const dir = fresh();
    const stem = join(dir, 'release');
    await run(process.execPath, [cli, 'keygen', '-o', stem]);
    const key = readFileSync(`${stem}.key`, 'utf8');
    const refused = await run(process.execPath, [cli, 'keygen', '-o', stem]).catch((e) => e);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/E_EXISTS.*already exist.*--force/);
    expect(readFileSync(`${stem}.key`, 'utf8')).toBe(key);
    writeFileSync(`${stem}.pub`, 'x');
    await run(process.execPath, [cli, 'keygen', '-o', stem, '--force']);
    expect(readFileSync(`${stem}.key`, 'utf8')).not.toBe(key);
  });
});
