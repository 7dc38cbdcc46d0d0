import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { generateKeys, Guest, signPatch } from 'wasm-hotpatch';
import { serveEndpoint } from 'wasm-hotpatch/runtime';
import { rolePatch } from './host-fixtures.js';

const run = promisify(execFile);
const cli = new URL('../dist/cli/main.js', import.meta.url).pathname;
const examples = new URL('../patches/account-service/', import.meta.url);
const baselinePath = new URL('service.baseline.wasm', examples).pathname;
const patchBytes = new Uint8Array(readFileSync(new URL('fix-name-overflow.patch.wasm', examples)));

describe('a control endpoint for running hosts', () => {
  it('serve + apply / status / revert --to from another process, over an owner-only socket; the level survives restart', { timeout: 60_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'serve-'));
    const keys = generateKeys();
    writeFileSync(join(dir, 'release.pub'), keys.publicKey);
    const signed = join(dir, 'fix.patch.wasm');
    writeFileSync(signed, (await signPatch(patchBytes, keys.privateKey)).bytes);
    const socket = join(dir, 'host.sock');
    const start = () => {
      const host = spawn(process.execPath, [cli, 'serve', baselinePath, '--socket', socket, '--trust', join(dir, 'release.pub'), '--store', join(dir, 'level')]);
      return new Promise<{ host: typeof host; line: string }>((resolve) => host.stdout.once('data', (d) => resolve({ host, line: String(d) })));
    };
    const first = await start();
    try {
      expect(first.line).toContain(`unix:${socket}`);
      expect(statSync(socket).mode & 0o777).toBe(0o600);
      const applied = JSON.parse((await run(process.execPath, [cli, 'apply', signed, '--to', `unix:${socket}`, '--json'])).stdout);
      expect(applied).toMatchObject({ id: 'fix-name-overflow', state: 'applied' });
      const status = JSON.parse((await run(process.execPath, [cli, 'status', '--to', socket, '--json'])).stdout);
      expect(status.functions).toEqual([expect.objectContaining({ function: 'set_name', patch: 'fix-name-overflow' })]);
      // Unsigned: refused by the host's policy, with the reason, and a non-zero exit.
      const unsigned = join(dir, 'unsigned.wasm');
      writeFileSync(unsigned, patchBytes);
      const refused = await run(process.execPath, [cli, 'apply', unsigned, '--to', socket]).catch((e) => e);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toMatch(/E_PATCH_REJECTED.*not signed/);
    } finally {
      first.host.kill('SIGTERM');
      await new Promise((r) => first.host.once('exit', r));
    }
    // Restart: the host comes back at the same patch level, and a second fix is recorded next to the restored one.
    const second = await start();
    const roleFix = join(dir, 'role.patch.wasm');
    writeFileSync(roleFix, (await signPatch(await rolePatch('role-fix', 2), keys.privateKey)).bytes);
    try {
      expect(second.line).toContain('restored generation 1: fix-name-overflow');
      const status = JSON.parse((await run(process.execPath, [cli, 'status', '--to', socket, '--json'])).stdout);
      expect(status.patches).toEqual([expect.objectContaining({ id: 'fix-name-overflow', state: 'applied' })]);
      await run(process.execPath, [cli, 'apply', roleFix, '--to', socket]);
    } finally {
      second.host.kill('SIGTERM');
      await new Promise((r) => second.host.once('exit', r));
    }
    // Fix A, restart, fix B, restart: both come back.
    const third = await start();
    try {
      expect(third.line).toContain('restored generation 2: fix-name-overflow, role-fix');
      await run(process.execPath, [cli, 'revert', 'fix-name-overflow', '--to', socket]);
    } finally {
      third.host.kill('SIGTERM');
      await new Promise((r) => third.host.once('exit', r));
    }
  });

  it('refuses and logs unauthenticated, oversized, malformed and too frequent requests over loopback TCP', async () => {
    const guest = await Guest.instantiate(readFileSync(baselinePath), {}, { policy: { requireSignature: false } });
    const logged: string[] = [];
    const server = await serveEndpoint(guest.async, { port: 0, token: 'sesame', maxBody: 64 * 1024, rate: 20, log: (l) => logged.push(l) });
    const call = (method: string, path: string, headers: Record<string, string> = {}, body?: Uint8Array) =>
      new Promise<number>((resolve, reject) => {
        const req = request(new URL(path, server.address), { method, headers }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode!));
        });
        req.on('error', reject);
        req.end(body);
      });
    const auth = { authorization: 'Bearer sesame' };
    try {
      expect(server.address).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(await call('GET', '/status')).toBe(401);
      expect(await call('GET', '/status', { authorization: 'Bearer nope' })).toBe(401);
      expect(await call('GET', '/status', auth)).toBe(200);
      expect(await call('POST', '/patches', { ...auth, 'content-length': String(1 << 20) }, new Uint8Array(1 << 20))).toBe(413);
      expect(await call('POST', '/patches', auth, new TextEncoder().encode('not wasm'))).toBe(422);
      expect(await call('POST', '/patches/none/apply', auth)).toBe(404);
      expect(await call('DELETE', '/everything', auth)).toBe(404);
      const burst = await Promise.all(Array.from({ length: 40 }, () => call('GET', '/status', auth)));
      expect(burst).toContain(429);
      expect(logged.filter((l) => l.startsWith('refused')).length).toBeGreaterThanOrEqual(6);
      expect(guest.status().patches).toEqual([]);
    } finally {
      await server.close();
    }
  });

  it('serve --shadow offers shadow state to patches (patches/rust-shadow); without it the same patch is refused at load', { timeout: 60_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'serve-shadow-'));
    const shadowExample = new URL('../patches/rust-shadow/', import.meta.url);
    const patch = new URL('lock-after-3-rust.patch.wasm', shadowExample).pathname;
    const serve = async (...extra: string[]) => {
      const socket = join(dir, `host${extra.length}.sock`);
      const host = spawn(process.execPath, [cli, 'serve', new URL('accounts.baseline.wasm', shadowExample).pathname, '--socket', socket, '--allow-unsigned', ...extra]);
      await new Promise((resolve) => host.stdout.once('data', resolve));
      try {
        return await run(process.execPath, [cli, 'apply', patch, '--to', socket, '--json']).then(
          (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
          (e: { code: number; stdout: string; stderr: string }) => e,
        );
      } finally {
        host.kill('SIGTERM');
        await new Promise((r) => host.once('exit', r));
      }
    };
    const offered = await serve('--shadow', 'shadow_malloc,shadow_free');
    expect(JSON.parse(offered.stdout)).toMatchObject({ id: 'lock-after-3-rust', state: 'applied' });
    const without = await serve();
    expect(without.code).toBe(2);
    expect(without.stdout).toMatch(/E_PATCH_REJECTED.*hotpatch\.shadow/s); // --json: the error is on stdout
    const typo = await run(process.execPath, [cli, 'serve', 'x.wasm', '--allow-unsigned', '--shadow', 'a,b,c']).catch((e) => e);
    expect([typo.code, typo.stderr]).toEqual([1, expect.stringContaining('E_USAGE: --shadow names')]);
  });
});
