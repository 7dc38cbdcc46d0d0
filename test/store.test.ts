import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Guest, generateKeys, signPatch, trustKey } from 'wasm-hotpatch';
import { PatchStore, WorkerGuest } from 'wasm-hotpatch/runtime';

const examples = new URL('../patches/account-service/', import.meta.url);
const baselineBytes = new Uint8Array(readFileSync(new URL('service.baseline.wasm', examples)));
const KILLS = 200;

describe('a patch level that survives restart', () => {
  it('records, and a restarted host comes back to the same level, signatures verified again', async () => {
    const keys = generateKeys();
    const dir = mkdtempSync(join(tmpdir(), 'store-'));
    const store = PatchStore.open(dir);
    const signed = (await signPatch(new Uint8Array(readFileSync(new URL('fix-name-overflow.patch.wasm', examples))), keys.privateKey)).bytes;
    const policy = { trustedKeys: [await trustKey(keys.publicKey)] };
    const guest = await Guest.instantiate(baselineBytes, {}, { policy });
    const p = guest.apply(await guest.load(signed));
    store.record(guest.manifest.id, [{ id: p.id, bytes: signed }]);
    // "Restart": a new guest from the same baseline, brought back to its level.
    const restarted = await Guest.instantiate(baselineBytes, {}, { policy });
    const level = await PatchStore.open(dir).restore(restarted.async);
    expect(level).toMatchObject({ generation: 1, applied: [{ id: 'fix-name-overflow' }] });
    expect(restarted.status().functions).toEqual([expect.objectContaining({ function: 'set_name', patch: 'fix-name-overflow' })]);
    // The same level, restored into a guest running in a worker (its policy is checked in the host).
    await using worker = await WorkerGuest.start(baselineBytes, { policy });
    await PatchStore.open(dir).restore(worker);
    expect((await worker.status()).functions).toEqual([expect.objectContaining({ function: 'set_name', patch: 'fix-name-overflow' })]);
    // A tampered stored patch is refused again on restart.
    const stored = join(dir, 'patches', `${level!.applied[0]!.sha256}.wasm`);
    const bytes = readFileSync(stored);
    bytes[40]! ^= 1;
    writeFileSync(stored, bytes);
    await expect(PatchStore.open(dir).restore((await Guest.instantiate(baselineBytes, {}, { policy })).async)).rejects.toMatchObject({ code: 'E_STORE_CORRUPT' });
  });

  it(`every restart after ${KILLS} kills of the writer at random moments finds a consistent, verifiable level`, { timeout: 240_000 }, async () => {
    const keys = generateKeys();
    const dir = mkdtempSync(join(tmpdir(), 'store-kill-'));
    const files: string[] = [];
    const policy = { trustedKeys: [await trustKey(keys.publicKey)] };
    for (const [id, name] of [['fix-name-overflow', 'fix-name-overflow.patch.wasm'], ['fix-name-overflow-c', 'fix-name-overflow-c.patch.wasm']] as const) {
      const file = join(dir, name);
      writeFileSync(file, (await signPatch(new Uint8Array(readFileSync(new URL(name, examples))), keys.privateKey)).bytes);
      files.push(`${id}|${file}`);
    }
    const storeDir = join(dir, 'store');
    const baselineId = (await Guest.instantiate(baselineBytes)).manifest.id;
    let committed = 0;
    for (let kill = 0; kill < KILLS; kill++) {
      const child = spawn(process.execPath, [new URL('./fixtures/store-writer.mjs', import.meta.url).pathname, storeDir, baselineId, ...files], { env: { ...process.env, SEED: String(kill + 1) } });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      // Let it start and write for a random while, then kill it without warning.
      await new Promise((resolve) => {
        let started = false;
        child.stdout.once('data', () => {
          started = true;
          setTimeout(resolve, Math.random() * 15);
        });
        setTimeout(() => !started && resolve(undefined), 3000);
      });
      child.kill('SIGKILL');
      await new Promise((resolve) => child.once('exit', resolve));
      const printed = out.trim().split('\n').filter(Boolean).map(Number);
      const last = printed.at(-1) ?? committed;
      const store = PatchStore.open(storeDir);
      const level = store.level(baselineId);
      // What a restart finds is the last level the writer reported, or the one it was writing.
      expect(level, `kill ${kill}`).toBeDefined();
      expect([last, last + 1], `kill ${kill}: generation`).toContain(level!.generation);
      committed = level!.generation;
      for (const entry of level!.applied) expect(store.patch(entry.sha256).length).toBeGreaterThan(0);
      if (kill % 20 === 0) {
        const guest = await Guest.instantiate(baselineBytes, {}, { policy });
        await store.restore(guest.async);
        expect(guest.status().patches.map((p) => p.id)).toEqual(level!.applied.map((a) => a.id));
      }
    }
    expect(committed).toBeGreaterThan(KILLS); // the writer made progress through the kills
  });
});
